package discovery

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// An agent that leaves gracefully reports its own leave as a leave, not a
// failure, in what it shows after Run returns (its last scrape).
func TestOwnLeaveIsNotAFailure(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	agents := c.startAll(2)
	agents[1].stop()
	if got := agents[1].gauge(agents[1].metrics.changes.WithLabelValues("fail")); got != 0 {
		t.Errorf("the leaving agent counted %v fail events, want 0", got)
	}
	if got := agents[1].gauge(agents[1].metrics.members.WithLabelValues("dead")); got != 0 {
		t.Errorf("the leaving agent reports %v dead members, want 0", got)
	}
	if got := agents[1].member("web-1").State; got == StateDead {
		t.Errorf("the leaving agent sees itself %s", got)
	}
}

// A join hanging on a peer that accepts the connection and never answers
// does not hold the shutdown for the TCP timeout: Run returns within the
// leave timeout plus one probe timeout (a probe in flight), with some
// scheduling slack.
func TestShutdownWaitsNoLongerThanTheLeaveTimeout(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 2)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			accepted <- conn // held open, never answered
		}
	}()
	defer func() {
		for {
			select {
			case conn := <-accepted:
				conn.Close()
			default:
				return
			}
		}
	}()
	ap := netip.MustParseAddrPort(silent.Addr().String())
	c.dns.setHost("web-1."+testDomain, ap.Addr())
	c.dns.setTarget(testSRV, "web-1."+testDomain, ap.Port())

	a := c.start("web-0", func(cfg *Config) {
		cfg.Timing.TCPTimeout = 12 * time.Second
		cfg.LeaveTimeout = time.Second
	})
	var held net.Conn
	select {
	case held = <-accepted:
	case <-time.After(waitFor):
		t.Fatal("the agent never tried to join the silent peer")
	}
	defer held.Close()

	start := time.Now()
	a.stop()
	bound := a.cfg.LeaveTimeout + a.cfg.Timing.ProbeTimeout + 2*time.Second
	if took := time.Since(start); took > bound {
		t.Errorf("shutdown took %v with a join hanging, want at most %v (the TCP timeout is %v)", took.Round(time.Millisecond), bound, a.cfg.Timing.TCPTimeout)
	}
}
