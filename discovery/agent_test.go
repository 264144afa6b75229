package discovery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClusterConverges(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t, n)
			agents := c.startAll(n)
			q := QuorumSize(n)
			for _, a := range agents {
				eventually(t, a.cfg.NodeName+" reports quorum", func() error {
					if got := a.Quorum(); !got.Has || got.Alive != n || got.FailureTolerance != n-q {
						return fmt.Errorf("quorum %+v", got)
					}
					if err := a.Ready(); err != nil {
						return err
					}
					if v := a.gauge(a.metrics.viewDisagreement); v != 0 {
						return fmt.Errorf("view disagreement %v", v)
					}
					if v := a.gauge(a.metrics.peersResolved); v != float64(n-1) {
						return fmt.Errorf("peers resolved %v, want %d", v, n-1)
					}
					return nil
				})
				if got := a.gauge(a.metrics.hasQuorum); got != 1 {
					t.Errorf("%s: peeragent_has_quorum = %v, want 1", a.cfg.NodeName, got)
				}
				if got := a.gauge(a.metrics.members.WithLabelValues("alive")); got != float64(n) {
					t.Errorf("%s: peeragent_members{state=alive} = %v, want %d", a.cfg.NodeName, got, n)
				}
			}
		})
	}
}

func TestGracefulLeaveAndCrash(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 5)
	agents := c.startAll(5)
	rest := agents[:3]

	agents[4].stop()
	want := allAlive("web-0", "web-1", "web-2", "web-3")
	want["web-4"] = StateLeft
	eventually(t, "web-4 seen as left", wantStates(want, agents[:4]...))

	// A crash is seen as suspect (no longer counted alive) before
	// memberlist declares it dead.
	agents[3].kill()
	sawSuspect := false
	eventually(t, "web-3 seen as dead", func() error {
		if rest[0].member("web-3").State == StateSuspect {
			sawSuspect = true
		}
		want["web-3"] = StateDead
		return wantStates(want, rest...)()
	})
	if !sawSuspect && rest[0].gauge(rest[0].metrics.changes.WithLabelValues("suspect")) == 0 {
		t.Error("web-3 was never suspect before it was declared dead")
	}
	for _, a := range rest {
		q := a.Quorum()
		if !q.Has || q.Alive != 3 || q.FailureTolerance != 0 {
			t.Errorf("%s: quorum %+v, want 3 alive of 5, tolerance 0", a.cfg.NodeName, q)
		}
		if got := a.gauge(a.metrics.changes.WithLabelValues("leave")); got != 1 {
			t.Errorf("%s: leave events = %v, want 1", a.cfg.NodeName, got)
		}
		if got := a.gauge(a.metrics.changes.WithLabelValues("fail")); got != 1 {
			t.Errorf("%s: fail events = %v, want 1", a.cfg.NodeName, got)
		}
	}

	// /members shows the same, by name and ordinal.
	rec := httptest.NewRecorder()
	rest[0].MembersHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/members", nil))
	var members []struct {
		Name    string    `json:"name"`
		Ordinal int       `json:"ordinal"`
		Address string    `json:"address"`
		State   string    `json:"state"`
		Since   time.Time `json:"since"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &members); err != nil {
		t.Fatalf("/members: %v\n%s", err, rec.Body)
	}
	wantJSON := []string{"alive", "alive", "alive", "dead", "left"}
	if len(members) != 5 {
		t.Fatalf("/members lists %d members, want 5:\n%s", len(members), rec.Body)
	}
	for i, m := range members {
		if m.Name != fmt.Sprintf("web-%d", i) || m.Ordinal != i || m.State != wantJSON[i] || m.Address == "" || m.Since.IsZero() {
			t.Errorf("/members[%d] = %+v, want web-%d, ordinal %d, state %s, an address and a time", i, m, i, i, wantJSON[i])
		}
	}
}

// With N=4 the quorum is 3: three alive members hold it, two (exactly half)
// do not.
func TestQuorumFlipsAtMajority(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 4)
	agents := c.startAll(4)
	observer := agents[0]
	check := func(alive int) {
		t.Helper()
		want := ComputeQuorum(4, alive)
		want.Voter = true
		eventually(t, fmt.Sprintf("%d alive", alive), func() error {
			if got := observer.Quorum(); got != want {
				return fmt.Errorf("quorum %+v, want %+v", got, want)
			}
			if got := observer.gauge(observer.metrics.hasQuorum); got != b2f(want.Has) {
				return fmt.Errorf("peeragent_has_quorum = %v", got)
			}
			if got := observer.gauge(observer.metrics.failureTolerance); got != float64(want.FailureTolerance) {
				return fmt.Errorf("peeragent_failure_tolerance = %v", got)
			}
			return nil
		})
	}
	check(4)
	agents[3].kill()
	check(3)
	if got := observer.gauge(observer.metrics.quorumTransitions); got != 1 {
		t.Errorf("quorum transitions = %v after losing 1 of 4, want 1 (the initial gain)", got)
	}
	agents[2].kill()
	check(2)
	if observer.Quorum().Has {
		t.Fatal("2 of 4 alive must not be a quorum")
	}
	if got := observer.gauge(observer.metrics.quorumTransitions); got != 2 {
		t.Errorf("quorum transitions = %v, want 2", got)
	}
	c.start("web-2") // comes back on a new port
	check(3)
	if got := observer.gauge(observer.metrics.quorumTransitions); got != 3 {
		t.Errorf("quorum transitions = %v, want 3", got)
	}
}

// A restarted pod keeps its name and gets a new address; it is admitted
// without an operator, after a graceful leave and after a crash.
func TestSameNameNewAddress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool
		gone  MemberState
	}{
		{name: "after leaving", gone: StateLeft},
		{name: "after crashing", crash: true, gone: StateDead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t, 3)
			agents := c.startAll(3)
			old := addrOf(agents[2])
			if tc.crash {
				agents[2].kill()
			} else {
				agents[2].stop()
			}
			want := allAlive("web-0", "web-1")
			want["web-2"] = tc.gone
			eventually(t, "web-2 gone", wantStates(want, agents[:2]...))

			back := c.start("web-2")
			if addrOf(back) == old {
				t.Fatalf("restarted web-2 got the same address %s", old)
			}
			all := allAlive("web-0", "web-1", "web-2")
			eventually(t, "web-2 admitted", wantStates(all, agents[0], agents[1], back))
			for _, a := range agents[:2] {
				if got := a.member("web-2").Address; got != addrOf(back) {
					t.Errorf("%s has web-2 at %s, want %s", a.cfg.NodeName, got, addrOf(back))
				}
			}
		})
	}
}

func TestPerOrdinalNames(t *testing.T) {
	t.Parallel()
	// Each member on its own loopback address, all on one port, as pods are.
	c := newTestCluster(t, 3)
	c.configure = func(cfg *Config) {
		cfg.PeersSRV = ""
		cfg.PeersDomain = testDomain
	}
	first := runAgent(t, withBind(c.config("web-0"), "127.0.0.2:0"))
	port := first.Addr().Port()
	agents := []*testAgent{first}
	for i, ip := range []string{"127.0.0.3", "127.0.0.4"} {
		agents = append(agents, runAgent(t, withBind(c.config(fmt.Sprintf("web-%d", i+1)), fmt.Sprintf("%s:%d", ip, port))))
	}
	for i, a := range agents {
		c.dns.setHost(fmt.Sprintf("web-%d.%s", i, testDomain), a.Addr().Addr())
	}
	eventually(t, "converge by per-ordinal names", wantStates(allAlive(webNames(3)...), agents...))

	obs := agents[0]
	eventually(t, "both peers resolved", func() error {
		if got := obs.gauge(obs.metrics.peersResolved); got != 2 {
			return fmt.Errorf("peers resolved = %v, want 2", got)
		}
		return nil
	})

	// A failing DNS server keeps the last good answer.
	c.dns.servfail.Store(true)
	errs := obs.gauge(obs.metrics.lookups.WithLabelValues("A", "error"))
	eventually(t, "lookups fail", func() error {
		if obs.gauge(obs.metrics.lookups.WithLabelValues("A", "error")) == errs {
			return fmt.Errorf("no failed lookup yet")
		}
		return nil
	})
	if got := obs.gauge(obs.metrics.peersResolved); got != 2 {
		t.Errorf("after SERVFAIL peers resolved = %v, want 2 (the last answer kept)", got)
	}
	c.dns.servfail.Store(false)

	// NXDOMAIN means the peer is not there.
	c.dns.deleteHost("web-2." + testDomain)
	eventually(t, "NXDOMAIN drops the peer", func() error {
		if got := obs.gauge(obs.metrics.peersResolved); got != 1 {
			return fmt.Errorf("peers resolved = %v, want 1", got)
		}
		return nil
	})
}

func withBind(cfg Config, addr string) Config {
	cfg.BindAddr = addr
	return cfg
}

func TestReadyWaitsForJoin(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	c.configure = func(cfg *Config) { cfg.RequireQuorumForReady = true }
	a := c.start("web-0")
	if err := a.Ready(); err == nil {
		t.Fatal("ready before any other member was seen")
	}
	b := c.start("web-1")
	eventually(t, "ready with 2 of 3", func() error { return a.Ready() })
	b.kill()
	eventually(t, "unready without quorum", func() error {
		if a.Ready() == nil {
			return fmt.Errorf("still ready with 1 of 3 alive")
		}
		return nil
	})
	if got := a.gauge(a.metrics.ready); got != 0 {
		t.Errorf("peeragent_ready = %v, want 0", got)
	}
}
