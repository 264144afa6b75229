package resolver

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the request path a server runs per query,
// from packet in to packet out, with allocations per query.
func BenchmarkServeDNS(b *testing.B) {
	svc := Service{Namespace: "default", Name: "web", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	for i := range 100 {
		svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("web-%d", i), Addrs: addrs(fmt.Sprintf("10.8.%d.%d", i/250, i%250+1)), Ready: true})
	}
	h := newTestHandler(b, true, append(seed(), svc)...)
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
		edns  uint16
		tr    Transport
	}{
		{name: "A/ordinal", qname: "web-1.nginx.default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "A/ordinal/mixed-case", qname: "Web-1.NGINX.default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "SRV/3", qname: "_web._tcp.nginx.default.svc.cluster.local.", qtype: dns.TypeSRV, edns: 1232},
		{name: "SRV/100/udp-1232-truncated", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, edns: 1232},
		{name: "SRV/100/tcp", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, tr: TCP},
		{name: "NXDOMAIN", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "PTR", qname: "1.0.1.10.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "REFUSED", qname: "example.com.", qtype: dns.TypeA},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := new(dns.Msg)
			m.SetQuestion(bc.qname, bc.qtype)
			if bc.edns != 0 {
				m.SetEdns0(bc.edns, false)
			}
			q, err := m.Pack()
			if err != nil {
				b.Fatal(err)
			}
			out := make([]byte, 0, dns.MaxMsgSize)
			b.ReportAllocs()
			for b.Loop() {
				if h.Answer(out, q, bc.tr) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
