package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// Without transfers configured, AXFR and IXFR are REFUSED, as the README
// says, whatever the transport. An IXFR query carries the client's SOA in
// its authority section (RFC 1995 §3), which is no format error.
func TestTransfersRefusedWhenNotConfigured(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	ixfr := new(dns.Msg)
	ixfr.SetIxfr("cluster.local.", 1, "ns.dns.cluster.local.", "hostmaster.cluster.local.")
	axfr := new(dns.Msg)
	axfr.SetAxfr("cluster.local.")
	for _, tr := range []Transport{UDP, TCP} {
		for _, m := range []*dns.Msg{ixfr, axfr} {
			t.Run(tr.String()+"/"+dns.TypeToString[m.Question[0].Qtype], func(t *testing.T) {
				r := exchange(t, h, m, tr)
				if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
					t.Errorf("rcode %s, %d answers; want REFUSED and none", dns.RcodeToString[r.Rcode], len(r.Answer))
				}
			})
		}
	}
}
