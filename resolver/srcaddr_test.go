package resolver

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peerdns/peerdns/internal/testtools"
)

// udpExchangeFrom sends a query to dst from an unconnected socket and
// returns the address the answer came from: a connected client (the Go
// resolver, glibc, dig) drops an answer from any other address.
func udpExchangeFrom(t *testing.T, dst netip.AddrPort) netip.AddrPort {
	t.Helper()
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := packQuery(t, "web-1.nginx.default.svc.cluster.local.", dns.TypeA, 0)
	if _, err := c.WriteToUDPAddrPort(q, dst); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("query to %v: %v", dst, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || len(r.Answer) != 1 {
		t.Fatalf("query to %v: answer %v, %v", dst, r, err)
	}
	return netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

// TestWildcardBindAnswersFromTheQueriedAddress: on a host with several
// addresses (here 127.0.0.2 besides 127.0.0.1: Linux answers all of
// 127.0.0.0/8 on lo), a server bound to the wildcard address answers from
// the address each query was sent to, not the one the route to the client
// prefers.
func TestWildcardBindAnswersFromTheQueriedAddress(t *testing.T) {
	for _, bc := range []struct {
		name string
		bind string
		to   []string
	}{
		{name: "dual-stack", bind: ":0", to: []string{"127.0.0.1", "127.0.0.2", "::1"}},
		{name: "IPv4", bind: "0.0.0.0:0", to: []string{"127.0.0.1", "127.0.0.2"}},
		{name: "IPv6", bind: "[::]:0", to: []string{"::1"}},
	} {
		t.Run(bc.name, func(t *testing.T) {
			s := startServer(t, ServerConfig{Addr: bc.bind, UDPSockets: 2})
			for _, to := range bc.to {
				dst := netip.AddrPortFrom(netip.MustParseAddr(to), s.Addr().Port())
				if strings.Contains(to, ":") && !hasIPv6Loopback() {
					t.Logf("no ::1 on this host: %v not tried", dst)
					continue
				}
				for range 4 { // both sockets, most likely
					if from := udpExchangeFrom(t, dst); from != dst {
						t.Errorf("query to %v answered from %v", dst, from)
					}
				}
			}
		})
	}
}

// TestDigAtASecondAddress is the report as a user sees it: dig at the
// second loopback address of a server bound to the wildcard address.
func TestDigAtASecondAddress(t *testing.T) {
	s := startServer(t, ServerConfig{Addr: ":0"})
	out := digAt(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), s.Addr().Port()), "A", "web-1.nginx.default.svc.cluster.local")
	if strings.Contains(out, "unexpected source") || !strings.Contains(out, "status: NOERROR") {
		t.Errorf("dig @127.0.0.2:\n%s", out)
	}
}

func hasIPv6Loopback() bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestUDPReceiveDropsAreCounted: queries the kernel drops while the worker
// is busy and the socket's buffer is full show in
// peerdns_dns_udp_receive_drops_total.
func TestUDPReceiveDropsAreCounted(t *testing.T) {
	if !dstAddrSupported {
		t.Skip("SO_RXQ_OVFL is Linux only")
	}
	var armed atomic.Bool
	stalled, release := make(chan struct{}), make(chan struct{})
	s := startServerPrepared(t, ServerConfig{UDPSockets: 1, UDPWorkers: 1, UDPReceiveBuffer: 4096}, func(s *Server) {
		s.testHookUDPRead = func() {
			if armed.CompareAndSwap(true, false) {
				close(stalled)
				<-release
			}
		}
	})
	if got := s.receiveBuffer(); got <= 0 {
		t.Errorf("receive buffer %v", got)
	}
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstall) // before the server stops, even on failure
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := packQuery(t, "web-1.nginx.default.svc.cluster.local.", dns.TypeA, 0)
	// The worker stalls before its next read, whether it is reading now
	// (it answers this query first) or about to.
	armed.Store(true)
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not stall")
	}
	for range 200 {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
	}
	unstall()
	// The kernel reports the drops with the next packet it queues.
	testtools.Eventually(t, "drops counted", 5*time.Second, func() error {
		if _, err := c.Write(q); err != nil {
			return err
		}
		if n := testutil.ToFloat64(s.udpDropped); n == 0 {
			return errors.New("no drop counted")
		}
		return nil
	})
	t.Logf("%v of 200 queries dropped with a 4 KiB buffer", testutil.ToFloat64(s.udpDropped))
}
