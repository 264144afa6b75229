package resolver

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestCompareLabelIsAStrictWeakOrder checks, on many labels built from the
// characters that make ordinals ambiguous, that compareLabel is a total
// order: antisymmetric, zero only for equal labels, transitive. Sorting with
// anything less makes the order of records depend on the order of the
// EndpointSlices they came from.
func TestCompareLabelIsAStrictWeakOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "wb-0129a"
	labels := []string{"web-2", "web-02", "web-1a", "web-10", "web-", "-1", "web-1-2", "web-0", "web-00", "web-9999999999999999999999"}
	for range 300 {
		var b strings.Builder
		for range 1 + r.IntN(7) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		labels = append(labels, b.String())
	}
	sign := func(c int) int { return min(max(c, -1), 1) }
	for _, a := range labels {
		for _, b := range labels {
			ab, ba := sign(compareLabel(a, b)), sign(compareLabel(b, a))
			if ab != -ba {
				t.Fatalf("compareLabel(%q, %q) = %d but compareLabel(%q, %q) = %d", a, b, ab, b, a, ba)
			}
			if (ab == 0) != (a == b) {
				t.Fatalf("compareLabel(%q, %q) = %d", a, b, ab)
			}
		}
	}
	for _, a := range labels {
		for _, b := range labels {
			if compareLabel(a, b) >= 0 {
				continue
			}
			for _, c := range labels {
				if compareLabel(b, c) < 0 && compareLabel(a, c) >= 0 {
					t.Fatalf("%q < %q < %q but compareLabel(%q, %q) = %d", a, b, c, a, c, compareLabel(a, c))
				}
			}
		}
	}
}

// TestOrdinalOrder: a StatefulSet's pods are listed by ordinal, as a number.
func TestOrdinalOrder(t *testing.T) {
	want := []string{"web-0", "web-1", "web-2", "web-9", "web-10", "web-11", "web-100"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, compareLabel)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestRecordOrderIgnoresSliceOrder: the SRV answer of a service lists its
// endpoints in one order, whatever order its slices gave them in, even with
// hostnames that only look like ordinals.
func TestRecordOrderIgnoresSliceOrder(t *testing.T) {
	hosts := []string{"web-2", "web-10", "web-1a", "web-02", "web-1"}
	var first []string
	perm := slices.Clone(hosts)
	for i := range 40 {
		rand.New(rand.NewPCG(uint64(i), 7)).Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		svc := Service{Namespace: "default", Name: "web", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
		for j, hn := range perm {
			svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: hn, Addrs: addrs("10.0.0." + string(rune('1'+j))), Ready: true})
		}
		h := newTestHandler(t, true, svc)
		m := new(dns.Msg)
		m.SetQuestion("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV)
		var got []string
		for _, rr := range exchange(t, h, m, TCP).Answer {
			got = append(got, strings.SplitN(rr.(*dns.SRV).Target, ".", 2)[0])
		}
		if first == nil {
			first = got
			continue
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Fatalf("slices in order %v: SRV targets (-first +now):\n%s", perm, diff)
		}
	}
}
