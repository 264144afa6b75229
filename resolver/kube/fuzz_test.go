package kube

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/peerdns/peerdns/resolver"
)

// fuzzReader turns fuzz input into choices; past its end every choice is 0.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// pick returns one of pool, or with the last choice a raw string of the
// input's bytes.
func (r *fuzzReader) pick(pool []string) string {
	i := int(r.byte())
	if i < len(pool) {
		return pool[i]
	}
	if i%4 != 0 {
		return pool[i%len(pool)]
	}
	n := int(r.byte()) % 70
	s := make([]byte, 0, n)
	for range n {
		s = append(s, r.byte())
	}
	return string(s)
}

var (
	fuzzHostnames = []string{"", "web-0", "web-1", "WEB-0", "web-10", "a.b", "_tcp", "-", "web-0 ", "ü",
		strings.Repeat("h", 63), strings.Repeat("h", 64), "10-0-0-1"}
	fuzzAddrs = []string{"10.0.0.1", "10.0.0.2", "::ffff:10.0.0.1", "fd00::1", "FD00:0:0::1", "fd00::", "fe80::1%eth0",
		"::", "::1", "0.0.0.0", "255.255.255.255", "1.2.3", "010.0.0.1", "", "2001:db8::ffff:ffff:ffff:ffff"}
	fuzzPortNames = []string{"http", "HTTP", "", "metrics", "abcdefghijklmno", "abcdefghijklmnop", "a.b", "_x", "dns"}
	fuzzProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, "", "xyz"}
	fuzzPorts     = []int32{80, 8080, 9090, 0, -1, 65535, 65536, 53}
)

// fuzzSlices builds up to 4 slices of one service from the input: odd
// hostnames, IPv4 and IPv6 in every form, duplicate endpoints, conflicting
// port numbers for one port name, and now and then a slice of up to 300
// generated endpoints.
func fuzzSlices(data []byte) []*discoveryv1.EndpointSlice {
	r := &fuzzReader{data}
	var out []*discoveryv1.EndpointSlice
	for si := range int(r.byte())%4 + 1 {
		s := sliceSpec{namespace: "ns", service: "svc", name: fmt.Sprintf("svc-%d", si)}
		switch r.byte() % 8 {
		case 1:
			s.addressType = discoveryv1.AddressTypeIPv6
		case 2:
			s.addressType = discoveryv1.AddressTypeFQDN
		}
		for range int(r.byte()) % 4 {
			p := discoveryv1.EndpointPort{Protocol: &fuzzProtocols[int(r.byte())%len(fuzzProtocols)]}
			if name := r.pick(fuzzPortNames); name != "" || r.byte()%2 == 0 {
				p.Name = &name
			}
			if c := r.byte(); c%8 != 7 {
				p.Port = &fuzzPorts[int(c)%len(fuzzPorts)]
			}
			s.ports = append(s.ports, p)
		}
		for range int(r.byte()) % 8 {
			e := endpointSpec{hostname: r.pick(fuzzHostnames)}
			for range int(r.byte()) % 3 {
				e.addrs = append(e.addrs, r.pick(fuzzAddrs))
			}
			switch c := r.byte(); c % 4 {
			case 1:
				e.ready = ptr(c&4 != 0)
			case 2:
				e.terminating = ptr(c&4 != 0)
			case 3:
				e.ready, e.terminating = ptr(c&4 != 0), ptr(c&8 != 0)
			}
			s.endpoints = append(s.endpoints, e.build())
		}
		if c := r.byte(); c >= 250 {
			// A huge slice: generated endpoints, a few sharing a hostname.
			for i := range int(c-249) * 50 {
				s.endpoints = append(s.endpoints, readyEP(fmt.Sprintf("big-%d", i%997), fmt.Sprintf("10.%d.%d.%d", si, i/250, i%250+1)))
			}
		}
		slice := s.build()
		lean, _ := leanSlice(slice)
		out = append(out, lean.(*discoveryv1.EndpointSlice))
	}
	return out
}

// fuzzQueries are the questions to ask about svc: every name it publishes
// (service, hosts, ports, in both trees; PTR of every address), every type.
func fuzzQueries(svc resolver.Service) []dns.Question {
	var names []string
	base := "svc.ns."
	for _, tree := range []string{"svc", "peers"} {
		names = append(names, base+tree+".cluster.local.", "_tcp."+base+tree+".cluster.local.")
		// The first 64 endpoints: a huge slice's generated ones are alike,
		// and every one costs a query per type and transport.
		for _, ep := range svc.Endpoints[:min(64, len(svc.Endpoints))] {
			for _, a := range ep.Addrs {
				label := ep.Hostname
				if label == "" {
					label = strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
				}
				if _, ok := dns.IsDomainName(label + "." + base + tree + ".cluster.local."); ok {
					names = append(names, label+"."+base+tree+".cluster.local.")
				}
			}
			for _, p := range ep.Ports {
				n := "_" + p.Name + "._" + p.Protocol + "." + base + tree + ".cluster.local."
				if _, ok := dns.IsDomainName(n); ok && p.Name != "" {
					names = append(names, n)
				}
			}
		}
	}
	var qs []dns.Question
	for _, n := range names {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY} {
			qs = append(qs, dns.Question{Name: n, Qtype: t, Qclass: dns.ClassINET})
		}
	}
	for _, ep := range svc.Endpoints[:min(64, len(svc.Endpoints))] {
		for _, a := range ep.Addrs {
			rev, _ := dns.ReverseAddr(a.String())
			qs = append(qs, dns.Question{Name: rev, Qtype: dns.TypePTR, Qclass: dns.ClassINET})
			if p, err := a.Prefix(a.BitLen() - 8); err == nil {
				rev, _ = dns.ReverseAddr(p.Addr().String())
				if i := strings.IndexByte(rev, '.'); i >= 0 {
					qs = append(qs, dns.Question{Name: rev[i+1:], Qtype: dns.TypePTR, Qclass: dns.ClassINET})
				}
			}
		}
	}
	return qs
}

// fuzzAnswers serves svc and returns the wire answers to qs over UDP
// (EDNS 1232) and TCP, checking that each unpacks and packs again.
func fuzzAnswers(t *testing.T, svc resolver.Service, qs []dns.Question) [][]byte {
	st := resolver.NewStore()
	st.Upsert(svc)
	st.SetSynced()
	cfg := resolver.DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}
	h, err := resolver.NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i, q := range qs {
		for _, tr := range []resolver.Transport{resolver.UDP, resolver.TCP} {
			m := new(dns.Msg)
			m.Id = uint16(i)
			m.Question = []dns.Question{q}
			m.SetEdns0(1232, false)
			qb, err := m.Pack()
			if err != nil {
				t.Fatalf("pack query %v: %v", q, err)
			}
			b := h.Answer(nil, qb, tr)
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("answer to %v over %v does not unpack: %v\n%x", q, tr, err, b)
			}
			if r.Rcode == dns.RcodeServerFailure {
				t.Fatalf("answer to %v over %v: SERVFAIL", q, tr)
			}
			if _, err := r.Pack(); err != nil {
				t.Fatalf("answer to %v over %v does not pack again: %v", q, tr, err)
			}
			out = append(out, b)
		}
	}
	return out
}

// FuzzSliceRecords feeds EndpointSlices built from arbitrary input through
// the whole data path: lean transform, merge, store, answers. Invariants: no
// panic; the merge does not depend on the order of the slices; every answer
// to every name the service publishes unpacks and packs with miekg/dns, and
// is never SERVFAIL; answers are the same bytes whatever the slice order.
func FuzzSliceRecords(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 1, 1, 2, 1, 0, 0})
	f.Add([]byte{2, 0, 1, 0, 1, 2, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 2, 2, 1, 2, 3, 0})
	f.Add([]byte{1, 1, 2, 0, 0, 2, 0, 1, 2, 7, 2, 3, 4, 2, 5, 1, 255})
	f.Add([]byte{3, 0, 3, 0, 5, 1, 2, 5, 0, 6, 4, 10, 1, 0, 11, 1, 1, 12, 2, 3, 6, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		objs := fuzzSlices(data)
		svc := mergeService(serviceKey{"ns", "svc"}, objs)
		rev := slices.Clone(objs)
		slices.Reverse(rev)
		svc2 := mergeService(serviceKey{"ns", "svc"}, rev)
		if diff := cmp.Diff(svc, svc2, addrComparer); diff != "" {
			t.Fatalf("merge depends on slice order (-forward +reversed):\n%s", diff)
		}
		for _, ep := range svc.Endpoints {
			for _, a := range ep.Addrs {
				if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
					t.Fatalf("address %v in %+v", a, ep)
				}
			}
		}
		qs := fuzzQueries(svc)
		a1 := fuzzAnswers(t, svc, qs)
		a2 := fuzzAnswers(t, svc2, qs)
		for i := range a1 {
			// The SOA serial of a negative answer is the time of the last
			// change, which differs between the two stores.
			if bytes.Equal(a1[i], a2[i]) {
				continue
			}
			if b1, b2 := withoutSerial(t, a1[i]), withoutSerial(t, a2[i]); !bytes.Equal(b1, b2) {
				t.Fatalf("answer %d to %v differs between runs:\n%x\n%x", i, qs[i/2], b1, b2)
			}
		}
	})
}

// withoutSerial returns answer b packed again with every SOA serial 0.
func withoutSerial(t *testing.T, b []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	for _, rr := range slices.Concat(m.Answer, m.Ns) {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = 0
		}
	}
	out, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
