package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestUDPQueriesQueuedTogetherAreEachAnswered: queries from several
// clients, to several addresses of a wildcard bind, that wait in the
// socket's queue together (on Linux read and answered as one batch) each
// get the answer a lone query gets, sent from the address it was sent to;
// packets that are not queries get none.
func TestUDPQueriesQueuedTogetherAreEachAnswered(t *testing.T) {
	stalled, release := make(chan struct{}), make(chan struct{})
	var armed sync.Once
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	s := startServerPrepared(t, ServerConfig{Addr: ":0", UDPSockets: 1, UDPWorkers: 1}, func(s *Server) {
		s.testHookUDPRead = func() {
			armed.Do(func() {
				close(stalled)
				<-release
			})
		}
	})
	t.Cleanup(unstall)
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not stall")
	}
	type client struct {
		name string
		c    *net.UDPConn
		to   netip.AddrPort
	}
	port := s.Addr().Port()
	targets := []struct{ name, network, to string }{
		{name: "ipv4", network: "udp4", to: "127.0.0.1"},
		{name: "ipv4-second-address", network: "udp4", to: "127.0.0.2"},
	}
	if dstAddrSupported && hasIPv6Loopback() {
		targets = append(targets, struct{ name, network, to string }{name: "ipv6", network: "udp6", to: "::1"})
	}
	var clients []client
	for _, tg := range targets {
		c, err := net.ListenUDP(tg.network, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, client{name: tg.name, c: c, to: netip.AddrPortFrom(netip.MustParseAddr(tg.to), port)})
	}
	queries := [][]byte{
		packQuery(t, "web-1.nginx.default.svc.cluster.local.", dns.TypeA, 0),
		packQuery(t, "_web._tcp.nginx.default.svc.cluster.local.", dns.TypeSRV, 1232),
		packQuery(t, "nope.default.svc.cluster.local.", dns.TypeA, 0),
		packQuery(t, "example.com.", dns.TypeA, 0),
		packQuery(t, "Web-1.NGINX.default.svc.cluster.local.", dns.TypeAAAA, 4096),
	}
	// want[client][id] is the answer a lone query with that ID gets.
	want := make([]map[uint16][]byte, len(clients))
	id := uint16(1)
	for range 3 {
		for ci, cl := range clients {
			if want[ci] == nil {
				want[ci] = map[uint16][]byte{}
			}
			for _, q := range queries {
				q = append([]byte(nil), q...)
				binary.BigEndian.PutUint16(q, id)
				want[ci][id] = s.cfg.Handler.Answer(nil, q, UDP)
				id++
				if _, err := cl.c.WriteToUDPAddrPort(q, cl.to); err != nil {
					t.Fatal(err)
				}
			}
			// Neither a header nor a query: no answer.
			for _, p := range [][]byte{{1, 2, 3}, append([]byte{0, 0, 0x80, 0}, make([]byte, 8)...)} {
				if _, err := cl.c.WriteToUDPAddrPort(p, cl.to); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	unstall()
	buf := make([]byte, dns.MaxMsgSize)
	for ci, cl := range clients {
		got := map[uint16][]byte{}
		if err := cl.c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for len(got) < len(want[ci]) {
			n, from, err := cl.c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%s: %d of %d answers: %v", cl.name, len(got), len(want[ci]), err)
			}
			if from := netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != cl.to {
				t.Errorf("%s: answer from %v, want %v", cl.name, from, cl.to)
			}
			if n < 2 {
				t.Fatalf("%s: %d-byte answer", cl.name, n)
			}
			got[binary.BigEndian.Uint16(buf)] = append([]byte(nil), buf[:n]...)
		}
		if diff := cmp.Diff(want[ci], got); diff != "" {
			t.Errorf("%s: answers (-lone +queued):\n%s", cl.name, diff)
		}
	}
}
