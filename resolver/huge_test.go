package resolver

import (
	"runtime"
	"testing"

	"github.com/miekg/dns"
)

// TestHugeAnswersStopAtTheMessageLimit: a 10,000-endpoint service's SRV
// answer would be about 760 KB, more than a DNS message can hold (65,535
// octets). Over TCP the response holds what fits, with TC (as CoreDNS, which
// truncates with miekg/dns, answers); and the server keeps no more than
// that in its cache.
func TestHugeAnswersStopAtTheMessageLimit(t *testing.T) {
	h := newTestHandler(t, true, hugeService(0, 10000))
	const svc = "huge.default.svc.cluster.local."
	for _, tc := range []struct {
		name  string
		qtype uint16
	}{
		{"_http._tcp." + svc, dns.TypeSRV},
		{svc, dns.TypeSRV},
		{svc, dns.TypeA},
		{"_http._tcp.huge.default.peers.cluster.local.", dns.TypeSRV},
	} {
		t.Run(dns.TypeToString[tc.qtype]+" "+tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, tc.qtype)
			q, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			b := h.Answer(nil, q, TCP)
			if len(b) > dns.MaxMsgSize {
				t.Fatalf("response of %d octets", len(b))
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatal(err)
			}
			if !r.Truncated || r.Rcode != dns.RcodeSuccess || len(r.Answer) < 1000 {
				t.Errorf("rcode %s, TC %v, %d answers: want NOERROR, TC, the records that fit", dns.RcodeToString[r.Rcode], r.Truncated, len(r.Answer))
			}
			t.Logf("%d octets: %d answer, %d additional records", len(b), len(r.Answer), len(r.Extra))
			if srv, ok := r.Answer[0].(*dns.SRV); ok && srv.Weight != 1 {
				t.Errorf("weight %d, want 1 (100/10000, at least 1)", srv.Weight)
			}
		})
	}
}

// TestHugeAnswersAreNotKeptWhole: what the server keeps for a 10,000-endpoint
// service, its cached SRV answers included: each answer at most a message
// and its cut offsets, not the whole 760 KB (which made about 8 MB of these
// four answers and the view).
func TestHugeAnswersAreNotKeptWhole(t *testing.T) {
	const svc = "huge.default.svc.cluster.local."
	before := heapAlloc()
	h := newTestHandler(t, true, hugeService(0, 10000))
	for _, name := range []string{"_http._tcp." + svc, svc, "_http._tcp.huge.default.peers.cluster.local.", "huge.default.peers.cluster.local."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		exchange(t, h, m, TCP)
	}
	grown := int64(heapAlloc()) - int64(before)
	runtime.KeepAlive(h)
	if limit := int64(4 << 20); grown > limit {
		t.Errorf("a 10,000-endpoint service and 4 SRV answers grew the heap by %d KB, want at most %d KB", grown>>10, limit>>10)
	}
}
