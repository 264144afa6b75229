package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary packets to the request path: it must never
// panic, and whatever it sends back must be a well-formed response to the
// packet's ID that fits the transport.
func FuzzAnswer(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"nginx.default.svc.cluster.local.", dns.TypeA, false},
		{"_web._tcp.nginx.default.svc.cluster.local.", dns.TypeSRV, true},
		{"big.default.svc.cluster.local.", dns.TypeSRV, true},
		{"1.0.1.10.in-addr.arpa.", dns.TypePTR, false},
		{"web-2.nginx.default.peers.cluster.local.", dns.TypeANY, true},
		{"example.com.", dns.TypeA, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(1232, true)
		}
		b, _ := m.Pack()
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, m := range []*dns.Msg{
		queryWith("web-1.nginx.default.svc.cluster.local.", dns.TypeA, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}),
		func() *dns.Msg {
			m := queryWith("id.server.", dns.TypeTXT)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}(),
	} {
		b, _ := m.Pack()
		f.Add(b, true)
	}
	// NSID, keepalive and a stale store: every EDNS option a response can
	// carry.
	var sync syncedAt
	h := newSignalHandler(f, true, func(c *Config) { c.Sync = &sync })
	f.Fuzz(func(t *testing.T, q []byte, tcp bool) {
		tr := UDP
		if tcp {
			tr = TCP
		}
		b := h.answerConn(nil, q, via{t: tr, keepalive: 300})
		if b == nil {
			return
		}
		if tr == UDP && len(b) > h.cfg.MaxUDPSize {
			t.Fatalf("UDP response of %d bytes", len(b))
		}
		if len(b) < headerSize || b[0] != q[0] || b[1] != q[1] || b[2]&0x80 == 0 {
			t.Fatalf("response %x is not a response to %x", b, q)
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatalf("response %x to %x does not parse: %v", b, q, err)
		}
		req := new(dns.Msg)
		if req.Unpack(q) != nil {
			return
		}
		if len(r.Question) == 1 && (len(req.Question) == 0 || r.Question[0] != req.Question[0]) {
			t.Fatalf("response question %v, query %v", r.Question, req.Question)
		}
		if req.IsEdns0() != nil && r.IsEdns0() == nil && r.Rcode != dns.RcodeFormatError {
			t.Fatalf("response to an EDNS query without OPT:\n%v\n%v", req, r)
		}
		if r.Truncated && r.Rcode == dns.RcodeSuccess && tr == TCP {
			t.Fatalf("TC over TCP:\n%v", r)
		}
	})
}
