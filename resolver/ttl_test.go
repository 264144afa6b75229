package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// TestZeroTTLIsKept: --dns.ttl 0 and --dns.negative-ttl 0 are legal (CoreDNS
// allows ttl 0) and must reach the wire as 0, not become the defaults.
func TestZeroTTLIsKept(t *testing.T) {
	st := NewStore()
	st.Upsert(Service{Namespace: "default", Name: "nginx", Endpoints: []Endpoint{{Hostname: "web-0", Addrs: addrs("10.1.0.1"), Ready: true}}})
	st.SetSynced()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local."}
	cfg.TTL, cfg.NegativeTTL = 0, 0
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{name: "positive", qname: "web-0.nginx.default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "nxdomain", qname: "web-9.nginx.default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "nodata", qname: "web-0.nginx.default.svc.cluster.local.", qtype: dns.TypeTXT},
		{name: "apex NS", qname: "cluster.local.", qtype: dns.TypeNS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			r := exchange(t, h, m, UDP)
			rrs := append(append([]dns.RR{}, r.Answer...), r.Ns...)
			if len(rrs) == 0 {
				t.Fatalf("no records in %v", r)
			}
			for _, rr := range rrs {
				if rr.Header().Ttl != 0 {
					t.Errorf("%v: TTL %d, want 0", rr, rr.Header().Ttl)
				}
				if soa, ok := rr.(*dns.SOA); ok && soa.Minttl != 0 {
					t.Errorf("SOA minimum %d, want 0", soa.Minttl)
				}
			}
		})
	}
}
