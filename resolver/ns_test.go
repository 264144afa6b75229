package resolver

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestNSTargetResolves: the apex NS of every zone, reverse zones included,
// names a host that has the server's own addresses; with none configured the
// target exists without addresses (NODATA, not NXDOMAIN).
func TestNSTargetResolves(t *testing.T) {
	newHandler := func(t *testing.T, ns ...string) *Handler {
		st := NewStore()
		st.SetSynced()
		cfg := DefaultConfig()
		cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa.", "0.0.d.f.ip6.arpa."}
		for _, a := range ns {
			cfg.NSAddresses = append(cfg.NSAddresses, netip.MustParseAddr(a))
		}
		h, err := NewHandler(st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	const target = "ns.dns.cluster.local."
	for _, tc := range []struct {
		name   string
		ns     []string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{name: "forward NS", ns: []string{"10.9.9.9"}, qname: "cluster.local.", qtype: dns.TypeNS,
			answer: []string{"cluster.local. 5 IN NS " + target}},
		{name: "reverse NS names the forward target", ns: []string{"10.9.9.9"}, qname: "10.in-addr.arpa.", qtype: dns.TypeNS,
			answer: []string{"10.in-addr.arpa. 5 IN NS " + target}},
		{name: "ip6 reverse NS", ns: []string{"10.9.9.9"}, qname: "0.0.d.f.ip6.arpa.", qtype: dns.TypeNS,
			answer: []string{"0.0.d.f.ip6.arpa. 5 IN NS " + target}},
		{name: "target A", ns: []string{"10.9.9.9", "fd00::53", "10.9.9.8"}, qname: target, qtype: dns.TypeA,
			answer: []string{target + " 5 IN A 10.9.9.9", target + " 5 IN A 10.9.9.8"}},
		{name: "target AAAA", ns: []string{"10.9.9.9", "fd00::53"}, qname: "NS.dns.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"NS.dns.cluster.local. 5 IN AAAA fd00::53"}}, // the query's case is kept
		{name: "target without v6", ns: []string{"10.9.9.9"}, qname: target, qtype: dns.TypeAAAA},
		{name: "no address known", qname: target, qtype: dns.TypeA},
		{name: "target SRV", ns: []string{"10.9.9.9"}, qname: target, qtype: dns.TypeSRV},
		{name: "dns ENT", ns: []string{"10.9.9.9"}, qname: "dns.cluster.local.", qtype: dns.TypeA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, tc.ns...)
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			r := exchange(t, h, m, UDP)
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if diff := cmp.Diff(parseZone(t, tc.answer...), zoneText(r.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if len(tc.answer) == 0 && len(r.Ns) != 1 {
				t.Errorf("NODATA without the SOA: %v", r.Ns)
			}
		})
	}
	t.Run("SOA MNAME of a reverse zone", func(t *testing.T) {
		h := newHandler(t, "10.9.9.9")
		m := new(dns.Msg)
		m.SetQuestion("10.in-addr.arpa.", dns.TypeSOA)
		r := exchange(t, h, m, UDP)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Ns != target {
			t.Errorf("SOA %v, want MNAME %s", r.Answer, target)
		}
	})
}
