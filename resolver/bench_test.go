package resolver

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

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

// BenchmarkMixedEDNSSizes alternates the sizes clients commonly advertise
// (512 without EDNS, 1232 from forwarders, 4096 from dig) for one large
// SRV answer: each size is cut from the same cached bytes, so the cost per
// query stays that of a client of one size.
func BenchmarkMixedEDNSSizes(b *testing.B) {
	st := NewStore()
	st.Upsert(numbered("web", 200))
	st.SetSynced()
	h, err := NewHandler(st, Config{MaxUDPSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	const name = "_http._tcp.web.default.svc.cluster.local."
	for _, bc := range []struct {
		name  string
		sizes []uint16 // 0: no OPT
	}{
		{name: "SRV/200/edns-1232", sizes: []uint16{1232}},
		{name: "SRV/200/edns-512-1232-4096", sizes: []uint16{0, 1232, 4096}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var qs [][]byte
			for _, size := range bc.sizes {
				qs = append(qs, packQuery(b, name, dns.TypeSRV, size))
			}
			out := make([]byte, 0, dns.MaxMsgSize)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if h.Answer(out, qs[i%len(qs)], UDP) == nil {
					b.Fatal("no answer")
				}
				i++
			}
		})
	}
}

// BenchmarkServeUDP measures a query through the server's UDP sockets over
// loopback, client included, with the allocations of both sides: a wildcard
// bind reads each query's destination address and answers from it.
func BenchmarkServeUDP(b *testing.B) {
	for _, bc := range []struct{ name, bind, to string }{
		{name: "bound-address", bind: "127.0.0.1:0", to: "127.0.0.1"},
		{name: "wildcard/second-address", bind: ":0", to: "127.0.0.2"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := startServer(b, ServerConfig{Addr: bc.bind, UDPSockets: 1, UDPWorkers: 1})
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			dst := netip.AddrPortFrom(netip.MustParseAddr(bc.to), s.Addr().Port())
			q := packQuery(b, "web-1.nginx.default.svc.cluster.local.", dns.TypeA, 0)
			buf := make([]byte, 512)
			if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
			// One answer first: the worker has made its buffers.
			if _, err := c.WriteToUDPAddrPort(q, dst); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.WriteToUDPAddrPort(q, dst); err != nil {
					b.Fatal(err)
				}
				if _, from, err := c.ReadFromUDPAddrPort(buf); err != nil || from.Addr().Unmap() != dst.Addr() {
					b.Fatalf("answer from %v: %v", from, err)
				}
			}
		})
	}
}

// BenchmarkServeUDPWindow measures queries over loopback from one client
// that keeps a window of queries in flight, client included: it sends
// depth queries, then reads their answers (each op is one query). With
// depth 1 it is BenchmarkServeUDP's bound address; deeper windows queue
// several queries on the socket at once, as a busy server sees them.
func BenchmarkServeUDPWindow(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run(fmt.Sprintf("depth-%d", depth), func(b *testing.B) {
			s := startServer(b, ServerConfig{Addr: "127.0.0.1:0", UDPSockets: 1, UDPWorkers: 1})
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			dst := s.Addr()
			q := packQuery(b, "web-1.nginx.default.svc.cluster.local.", dns.TypeA, 0)
			buf := make([]byte, 512)
			if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
			// One answer first: the worker has made its buffers.
			if _, err := c.WriteToUDPAddrPort(q, dst); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				for range depth {
					if _, err := c.WriteToUDPAddrPort(q, dst); err != nil {
						b.Fatal(err)
					}
				}
				for range depth {
					if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkServeTCP measures queries over one TCP connection over
// loopback, client included: one at a time, and pipelined ten at a time
// (each op is one query).
func BenchmarkServeTCP(b *testing.B) {
	for _, depth := range []int{1, 10} {
		b.Run(fmt.Sprintf("pipelined-%d", depth), func(b *testing.B) {
			s := startServer(b, ServerConfig{})
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			q := packQuery(b, "web-1.nginx.default.svc.cluster.local.", dns.TypeA, 0)
			var batch []byte
			for range depth {
				batch = append(batch, byte(len(q)>>8), byte(len(q)))
				batch = append(batch, q...)
			}
			if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			want := depth * (2 + len(packAnswerProbe(b, s, q)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				if _, err := c.Write(batch); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < want; {
					n, err := c.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}

// packAnswerProbe is the answer s gives to q, to know how many bytes to
// read back.
func packAnswerProbe(b *testing.B, s *Server, q []byte) []byte {
	return s.cfg.Handler.Answer(make([]byte, 0, 512), q, TCP)
}
