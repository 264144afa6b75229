package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/testtools"
)

// startServer serves seed() on a free loopback port (cfg.Addr when set)
// until the test ends.
func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	return startServerPrepared(t, cfg, nil)
}

// startServerPrepared is startServer calling prepare (to set test hooks)
// before it serves.
func startServerPrepared(t testing.TB, cfg ServerConfig, prepare func(*Server)) *Server {
	t.Helper()
	if cfg.Handler == nil {
		cfg.Handler = newTestHandler(t, true, seed()...)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func TestServerUDPAndTCP(t *testing.T) {
	s := startServer(t, ServerConfig{})
	for _, net := range []string{"udp", "tcp"} {
		t.Run(net, func(t *testing.T) {
			c := &dns.Client{Net: net, Timeout: 5 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("web-1.nginx.default.svc.cluster.local.", dns.TypeA)
			r, _, err := c.Exchange(m, s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.1.0.2" {
				t.Errorf("got %v, want web-1's address", r.Answer)
			}
		})
	}
}

func TestServerTruncatesThenTCPAnswers(t *testing.T) {
	s := startServer(t, ServerConfig{})
	m := new(dns.Msg)
	m.SetQuestion("big.default.svc.cluster.local.", dns.TypeSRV)
	udp := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	r, _, err := udp.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Fatalf("UDP answer of %d records not truncated", len(r.Answer))
	}
	tcp := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	if r, _, err = tcp.Exchange(m, s.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("TCP: TC %v and %d answers, want all 60", r.Truncated, len(r.Answer))
	}
}

func TestGoResolver(t *testing.T) {
	s := startServer(t, ServerConfig{})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, s.Addr().String())
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cname, srvs, err := r.LookupSRV(ctx, "web", "tcp", "nginx.default.svc.cluster.local.")
			if err != nil {
				t.Fatal(err)
			}
			var targets []string
			for _, srv := range srvs {
				targets = append(targets, fmt.Sprintf("%s:%d", srv.Target, srv.Port))
			}
			slices.Sort(targets)
			want := []string{"web-0.nginx.default.svc.cluster.local.:80", "web-1.nginx.default.svc.cluster.local.:80"}
			if cname != "_web._tcp.nginx.default.svc.cluster.local." || !slices.Equal(targets, want) {
				t.Errorf("LookupSRV: %q %v, want %v", cname, targets, want)
			}
			hosts, err := r.LookupHost(ctx, "pg-0.pg.db.svc.cluster.local.")
			slices.Sort(hosts)
			if err != nil || !slices.Equal(hosts, []string{"10.2.0.1", "fd00::1"}) {
				t.Errorf("LookupHost: %v %v, want both families", hosts, err)
			}
			_, err = r.LookupHost(ctx, "nope.default.svc.cluster.local.")
			if dnsErr := (*net.DNSError)(nil); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				t.Errorf("LookupHost of a missing name: %v, want not found", err)
			}
			names, err := r.LookupAddr(ctx, "10.1.0.1")
			if err != nil || !slices.Equal(names, []string{"web-0.nginx.default.svc.cluster.local."}) {
				t.Errorf("LookupAddr: %v %v", names, err)
			}
		})
	}
}

// dig runs Debian's dig against s. It is required when the test tools are
// (make test); otherwise its absence skips the test, saying how to get it.
func dig(t *testing.T, s *Server, args ...string) string {
	t.Helper()
	return digAt(t, s.Addr(), args...)
}

// digAt runs dig against the server at addr.
func digAt(t *testing.T, addr netip.AddrPort, args ...string) string {
	t.Helper()
	path := testtools.Path(t, "dig")
	args = append([]string{"@" + addr.Addr().String(), "-p", fmt.Sprint(addr.Port()), "+time=5", "+tries=1"}, args...)
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDig(t *testing.T) {
	s := startServer(t, ServerConfig{})
	t.Run("SRV with additional records", func(t *testing.T) {
		out := dig(t, s, "SRV", "nginx.default.svc.cluster.local")
		for _, want := range []string{
			"status: NOERROR", "flags: qr aa rd;",
			"0 50 80 web-0.nginx.default.svc.cluster.local.",
			"0 50 80 web-1.nginx.default.svc.cluster.local.",
			"web-0.nginx.default.svc.cluster.local. 5 IN A\t10.1.0.1",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("dig output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("large SRV retries over TCP", func(t *testing.T) {
		out := dig(t, s, "+bufsize=1232", "SRV", "big.default.svc.cluster.local")
		if !strings.Contains(out, "Truncated, retrying in TCP mode") || !strings.Contains(out, "ANSWER: 60") {
			t.Errorf("want a TCP retry with all 60 answers:\n%s", out)
		}
	})
	t.Run("NXDOMAIN with SOA", func(t *testing.T) {
		out := dig(t, s, "A", "nope.default.svc.cluster.local")
		if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "SOA\tns.dns.cluster.local. hostmaster.cluster.local.") {
			t.Errorf("want NXDOMAIN with the SOA:\n%s", out)
		}
	})
	t.Run("PTR", func(t *testing.T) {
		out := dig(t, s, "-x", "10.1.0.2")
		if !strings.Contains(out, "PTR\tweb-1.nginx.default.svc.cluster.local.") {
			t.Errorf("want web-1's name:\n%s", out)
		}
	})
}

// countPrefixes makes s count the query length prefixes its connections
// read.
func countPrefixes(n *atomic.Int64) func(*Server) {
	return func(s *Server) { s.testHookPrefix = func() { n.Add(1) } }
}

// dialFrom opens a TCP connection to s from a loopback address of its own
// (127.0.0.0/8 is all loopback on Linux), as a distinct client.
func dialFrom(t *testing.T, s *Server, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// queryOn sends a query on c and returns the error of reading its answer.
func queryOn(c net.Conn) error {
	m := new(dns.Msg)
	m.SetQuestion("cluster.local.", dns.TypeSOA)
	dc := &dns.Conn{Conn: c}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if err := dc.WriteMsg(m); err != nil {
		return err
	}
	_, err := dc.ReadMsg()
	return err
}

// waitClosed fails unless the server closes c.
func waitClosed(t *testing.T, c net.Conn, why string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("%s: %v", why, err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("%s: read %v, want the server to close the connection", why, err)
	}
}

func TestTCPConnectionCap(t *testing.T) {
	var prefixes atomic.Int64
	s := startServerPrepared(t, ServerConfig{MaxTCPConnections: 1, TCPReadTimeout: time.Minute}, countPrefixes(&prefixes))
	// The first connection holds the only slot, busy: it answered a query
	// and is in the middle of the next one.
	hold := dialFrom(t, s, "127.0.0.2")
	if err := queryOn(hold); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Write([]byte{0, 40}); err != nil {
		t.Fatal(err)
	}
	testtools.Eventually(t, "server reads the second length prefix", 5*time.Second, func() error {
		if n := prefixes.Load(); n < 2 {
			return fmt.Errorf("%d prefixes read", n)
		}
		return nil
	})
	if err := queryOn(dialFrom(t, s, "127.0.0.3")); err == nil {
		t.Error("a connection over the cap was answered while every connection was busy")
	}
	// UDP is unaffected.
	m := new(dns.Msg)
	m.SetQuestion("cluster.local.", dns.TypeSOA)
	udp := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if _, _, err := udp.Exchange(m, s.Addr().String()); err != nil {
		t.Errorf("UDP while TCP is full: %v", err)
	}
}

// TestTCPOldestIdleMakesRoom: when every slot is taken, a new client is
// answered and the connection idle longest is closed.
func TestTCPOldestIdleMakesRoom(t *testing.T) {
	// The client reads its answer before the server marks the connection
	// idle again, so each step waits for the server's side too.
	var idled atomic.Int64
	s := startServerPrepared(t, ServerConfig{MaxTCPConnections: 2}, func(s *Server) { s.testHookIdle = func() { idled.Add(1) } })
	waitIdle := func(n int64) {
		t.Helper()
		testtools.Eventually(t, "server marks answered connections idle", 5*time.Second, func() error {
			if got := idled.Load(); got < n {
				return fmt.Errorf("%d of %d idle", got, n)
			}
			return nil
		})
	}
	oldest := dialFrom(t, s, "127.0.0.2")
	if err := queryOn(oldest); err != nil {
		t.Fatal(err)
	}
	waitIdle(1)
	newer := dialFrom(t, s, "127.0.0.3")
	if err := queryOn(newer); err != nil {
		t.Fatal(err)
	}
	waitIdle(2)
	if err := queryOn(dialFrom(t, s, "127.0.0.4")); err != nil {
		t.Errorf("new client while all slots are idle: %v", err)
	}
	waitClosed(t, oldest, "the longest-idle connection")
	if err := queryOn(newer); err != nil {
		t.Errorf("the newer idle connection: %v", err)
	}
}

// TestTCPPerClientCap: one client address that opens connections and keeps
// them busy holds its own cap, not the server's, and other clients are
// still answered over TCP.
func TestTCPPerClientCap(t *testing.T) {
	var prefixes atomic.Int64
	s := startServerPrepared(t, ServerConfig{MaxTCPConnections: 4, MaxTCPConnectionsPerClient: 2, TCPReadTimeout: time.Minute}, countPrefixes(&prefixes))
	busy := func() net.Conn {
		c := dialFrom(t, s, "127.0.0.2")
		if _, err := c.Write([]byte{0, 40}); err != nil { // a length prefix, then nothing
			t.Fatal(err)
		}
		return c
	}
	busy()
	busy()
	testtools.Eventually(t, "server reads both length prefixes", 5*time.Second, func() error {
		if n := prefixes.Load(); n < 2 {
			return fmt.Errorf("%d prefixes read", n)
		}
		return nil
	})
	waitClosed(t, busy(), "a third connection of a client with 2 busy ones")
	waitClosed(t, busy(), "a fourth connection of a client with 2 busy ones")
	if err := queryOn(dialFrom(t, s, "127.0.0.3")); err != nil {
		t.Errorf("another client: %v", err)
	}
}

// TestTCPMemoryOfSilentConnections: connections that send a length prefix
// announcing the largest query and then nothing make the server hold no
// buffer. The bound checked: heap growth under 8 KiB per connection, both
// ends' socket state included (two 64 KiB buffers per connection before).
func TestTCPMemoryOfSilentConnections(t *testing.T) {
	const conns = 300
	var prefixes atomic.Int64
	s := startServerPrepared(t, ServerConfig{MaxTCPConnectionsPerClient: conns, TCPReadTimeout: time.Minute}, countPrefixes(&prefixes))
	before := heapAlloc()
	for range conns {
		c := dialFrom(t, s, "127.0.0.2")
		if _, err := c.Write([]byte{0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
	}
	testtools.Eventually(t, "server reads every length prefix", 10*time.Second, func() error {
		if n := prefixes.Load(); n < conns {
			return fmt.Errorf("%d of %d prefixes read", n, conns)
		}
		return nil
	})
	grown := int64(heapAlloc()) - int64(before)
	t.Logf("heap grew %d bytes per silent connection, both ends", grown/conns)
	if perConn := grown / conns; perConn > 8<<10 {
		t.Errorf("heap grew %d KiB for %d silent connections, %d bytes each; want under 8 KiB each", grown>>10, conns, perConn)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestServeReturnsWithAConnectionAcceptedDuringShutdown: a connection the
// listener accepted just before Serve closed every connection is not
// served, so Serve returns instead of waiting for that client.
func TestServeReturnsWithAConnectionAcceptedDuringShutdown(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	s, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Handler: h, TCPReadTimeout: time.Hour, TCPIdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	accepted, closed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.testHookAccepted = func() {
		once.Do(func() { close(accepted) })
		<-closed // admitted only after Serve closed every connection
	}
	s.testHookClosed = func() { close(closed) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve has not returned 10s after shutdown: it serves a connection accepted during shutdown")
	}
}

func TestTCPIdleConnectionsAreClosed(t *testing.T) {
	s := startServer(t, ServerConfig{TCPReadTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("read on a silent connection: %v, want the server to close it", err)
	}
}
