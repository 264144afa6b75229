package resolver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/testtools"
)

// startServer serves seed() on a free loopback port until the test ends.
func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Handler == nil {
		cfg.Handler = newTestHandler(t, true, seed()...)
	}
	cfg.Addr = "127.0.0.1:0"
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
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
			if dnsErr, ok := err.(*net.DNSError); !ok || !dnsErr.IsNotFound {
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
	path := testtools.Path(t, "dig")
	args = append([]string{"@" + s.Addr().Addr().String(), "-p", fmt.Sprint(s.Addr().Port()), "+time=5", "+tries=1"}, args...)
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

func TestTCPConnectionCap(t *testing.T) {
	s := startServer(t, ServerConfig{MaxTCPConnections: 1})
	hold, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	// The first connection holds the only slot once the server accepted
	// it: prove that with a query on it.
	c := &dns.Conn{Conn: hold}
	m := new(dns.Msg)
	m.SetQuestion("cluster.local.", dns.TypeSOA)
	if err := c.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	tcp := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if _, _, err := tcp.Exchange(m, s.Addr().String()); err == nil {
		t.Error("a second connection over the cap was answered")
	}
	// UDP is unaffected.
	udp := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if _, _, err := udp.Exchange(m, s.Addr().String()); err != nil {
		t.Errorf("UDP while TCP is full: %v", err)
	}
}

func TestTCPIdleConnectionsAreClosed(t *testing.T) {
	s := startServer(t, ServerConfig{TCPReadTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("read on a silent connection: %v, want the server to close it", err)
	}
}
