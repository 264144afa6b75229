package resolver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestPortsBelongToEndpoints: the endpointslice controller puts endpoints
// whose named targetPort resolves to different numbers into different slices
// (slice A http/TCP 8080 with rp-0, slice B http/TCP 9090 with rp-1). Each
// SRV record pairs a host with the port of its own slice(s); an endpoint in
// both slices (being moved) has both, each (port, host) pair once.
func TestPortsBelongToEndpoints(t *testing.T) {
	http := func(n uint16) []Port { return []Port{{Name: "http", Protocol: "tcp", Port: n}} }
	svc := Service{Namespace: "default", Name: "rp", Endpoints: []Endpoint{
		{Hostname: "rp-0", Addrs: addrs("10.5.0.1"), Ready: true, Ports: http(8080)},
		{Hostname: "rp-1", Addrs: addrs("10.5.0.2"), Ready: true, Ports: http(9090)},
		// rp-2 is listed by both slices, once from each.
		{Hostname: "rp-2", Addrs: addrs("10.5.0.3"), Ready: true, Ports: http(8080)},
		{Hostname: "rp-2", Addrs: addrs("10.5.0.3"), Ready: true, Ports: http(9090)},
		// rp-3's slice has no http port at all.
		{Hostname: "rp-3", Addrs: addrs("10.5.0.4"), Ready: true, Ports: []Port{{Name: "metrics", Protocol: "tcp", Port: 9100}}},
	}}
	h := newTestHandler(t, true, svc)
	const s = "rp.default.svc.cluster.local."
	httpSRV := []string{
		"_http._tcp." + s + " 5 IN SRV 0 25 8080 rp-0." + s,
		"_http._tcp." + s + " 5 IN SRV 0 25 9090 rp-1." + s,
		"_http._tcp." + s + " 5 IN SRV 0 25 8080 rp-2." + s,
		"_http._tcp." + s + " 5 IN SRV 0 25 9090 rp-2." + s,
	}
	httpExtra := []string{"rp-0." + s + " 5 IN A 10.5.0.1", "rp-1." + s + " 5 IN A 10.5.0.2", "rp-2." + s + " 5 IN A 10.5.0.3"}
	for _, tc := range []struct {
		name, qname   string
		answer, extra []string
	}{
		{name: "port name", qname: "_http._tcp." + s, answer: httpSRV, extra: httpExtra},
		{name: "other port name", qname: "_metrics._tcp." + s,
			answer: []string{"_metrics._tcp." + s + " 5 IN SRV 0 100 9100 rp-3." + s},
			extra:  []string{"rp-3." + s + " 5 IN A 10.5.0.4"}},
		{name: "bare service name", qname: s,
			answer: []string{
				s + " 5 IN SRV 0 25 8080 rp-0." + s,
				s + " 5 IN SRV 0 25 9090 rp-1." + s,
				s + " 5 IN SRV 0 25 8080 rp-2." + s,
				s + " 5 IN SRV 0 25 9090 rp-2." + s,
				s + " 5 IN SRV 0 100 9100 rp-3." + s,
			},
			extra: append(httpExtra, "rp-3."+s+" 5 IN A 10.5.0.4")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, dns.TypeSRV)
			r := exchange(t, h, m, TCP)
			if diff := cmp.Diff(parseZone(t, tc.answer...), zoneText(r.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(parseZone(t, tc.extra...), zoneText(r.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
		})
	}
}
