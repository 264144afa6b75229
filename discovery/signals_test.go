package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A member memberlist learns from another member's gossip does not count
// until it answers this agent's own probe.
func TestMembersCountOnlyAfterTheirFirstAck(t *testing.T) {
	set := ExpectedSet{Set: "web", N: 5}
	m := newMetrics(prometheus.NewRegistry(), set, Identity{Set: "web", Ordinal: 0})
	ms := newMembership("web-0", "", ExpectedSet{Set: set.Set, N: 64}, Voting{Current: VotingConfig{Voters: set.Ordinals()}}, set.Ordinals(), testTiming(), m)
	ms.now = newFakeClock().now
	for _, n := range set.Names() {
		ms.join(n, n+":7946", nodeMeta{})
	}
	if q := ms.currentQuorum(); q.Alive != 1 || q.Has {
		t.Fatalf("after joins learned second-hand: quorum %+v, want 1 alive (this agent), no quorum", q)
	}
	if got := ms.state("web-3"); got != "suspect" {
		t.Errorf("a member never acked is %s, want suspect", got)
	}
	if got := testutil.ToFloat64(m.hasQuorum); got != 0 {
		t.Errorf("peeragent_has_quorum = %v, want 0", got)
	}
	if ms.joined() {
		t.Error("joined before any other member answered")
	}
	ms.ack("web-1", "web-1:7946", time.Millisecond)
	ms.ack("web-2", "web-2:7946", time.Millisecond)
	if q := ms.currentQuorum(); q.Alive != 3 || !q.Has {
		t.Fatalf("after two acks: quorum %+v, want 3 alive and quorum", q)
	}
	if !ms.joined() {
		t.Error("not joined after another member answered")
	}
	if got := testutil.ToFloat64(m.changes.WithLabelValues("recover")); got != 0 {
		t.Errorf("first acks counted as %v recoveries, want 0", got)
	}
}

func TestSettleTimeNotShorterThanSuspectTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Expected, cfg.PeersSRV = "web-0", 3, testSRV
	if got, want := cfg.settleTime(), cfg.Timing.SuspectTimeout; got != want {
		t.Errorf("default settle time %s, want the suspect timeout %s", got, want)
	}
	cfg.SettleTime = cfg.Timing.SuspectTimeout - time.Millisecond
	if err := cfg.validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("settle time shorter than the suspect timeout accepted: %v", err)
	}
}

// Members that turn suspect (a crash memberlist has not declared dead yet)
// leave the hooks' member list as it was, but take quorum with them: the
// hook runs again and is told.
func TestHookRerunsWhenQuorumChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath := dir + "/hook.log"
	c := newTestCluster(t, 3)
	c.configure = func(cfg *Config) {
		// memberlist takes 20s or more to declare a crashed member dead.
		cfg.Timing.SuspicionMult = 100
	}
	watcher := c.start("web-0", func(cfg *Config) {
		cfg.OnChange = hookScript(t, fmt.Sprintf(`{ cat; echo "quorum=$PEERAGENT_HAS_QUORUM"; echo ---; } >> %q`, logPath))
	})
	others := []*testAgent{c.start("web-1"), c.start("web-2")}
	all := dnsNames("web-0", "web-1", "web-2")
	waitHook(t, logPath, all, true)
	for _, o := range others {
		o.kill()
	}
	waitHook(t, logPath, all, false)
	if q := watcher.Quorum(); q.Has {
		t.Errorf("quorum %+v after two of three crashed", q)
	}
}

func waitHook(t *testing.T, logPath string, list []string, quorum bool) {
	t.Helper()
	want := strings.Join(append(append([]string{}, list...), fmt.Sprintf("quorum=%v", quorum)), "\n")
	eventually(t, "hook sees "+want, func() error {
		blocks := hookLog(t, logPath)
		if len(blocks) == 0 {
			return fmt.Errorf("hook never ran")
		}
		if last := strings.Join(blocks[len(blocks)-1], "\n"); last != want {
			return fmt.Errorf("last hook input %q", last)
		}
		return nil
	})
}

// cutTransport drops what this agent sends to the blocked addresses and
// refuses to dial them: with both sides cut, two members cannot reach each
// other, while both still reach the rest.
type cutTransport struct {
	memberlist.NodeAwareTransport
	mu      sync.Mutex
	blocked map[string]bool
}

func (c *cutTransport) wrap(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	c.NodeAwareTransport = t
	return c
}

func (c *cutTransport) set(addr string, blocked bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blocked == nil {
		c.blocked = map[string]bool{}
	}
	c.blocked[addr] = blocked
}

func (c *cutTransport) cut(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked[addr]
}

var errCut = errors.New("cut by the test")

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut(addr) {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteTo(b, addr)
}

func (c *cutTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if c.cut(addr.Addr) {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteToAddress(b, addr)
}

func (c *cutTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	if c.cut(addr) {
		return nil, errCut
	}
	return c.NodeAwareTransport.DialTimeout(addr, d)
}

func (c *cutTransport) DialAddressTimeout(addr memberlist.Address, d time.Duration) (net.Conn, error) {
	if c.cut(addr.Addr) {
		return nil, errCut
	}
	return c.NodeAwareTransport.DialAddressTimeout(addr, d)
}

// web-0 cannot reach web-2, both reach web-1. No local view can stop web-0
// and web-2 from both holding quorum; view_disagreement must say so, on
// every member, and clear when the link heals.
func TestNonTransitivePartition(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	cuts := map[string]*cutTransport{}
	var agents []*testAgent
	for _, name := range webNames(3) {
		cut := &cutTransport{}
		cuts[name] = cut
		agents = append(agents, c.start(name, func(cfg *Config) { cfg.wrapTransport = cut.wrap }))
	}
	web0, web1, web2 := agents[0], agents[1], agents[2]
	eventually(t, "converge", wantStates(allAlive(webNames(3)...), agents...))
	disagreement := func(want float64) func() error {
		return func() error {
			for _, a := range agents {
				if got := a.gauge(a.metrics.viewDisagreement); got != want {
					return fmt.Errorf("%s: peeragent_view_disagreement = %v, want %v", a.cfg.NodeName, got, want)
				}
			}
			return nil
		}
	}
	eventually(t, "no disagreement while every link works", disagreement(0))

	cuts["web-0"].set(addrOf(web2), true)
	cuts["web-2"].set(addrOf(web0), true)
	eventually(t, "web-0 and web-2 each count the other out", func() error {
		if got := web0.member("web-2").State; got != StateSuspect {
			return fmt.Errorf("web-0 sees web-2 %s, want suspect", got)
		}
		if got := web2.member("web-0").State; got != StateSuspect {
			return fmt.Errorf("web-2 sees web-0 %s, want suspect", got)
		}
		return wantStates(allAlive(webNames(3)...), web1)()
	})
	for _, a := range []*testAgent{web0, web2} {
		if q := a.Quorum(); !q.Has || q.Alive != 2 {
			t.Errorf("%s: quorum %+v; want 2 of 3 alive, quorum (a local view cannot do better)", a.cfg.NodeName, q)
		}
	}
	eventually(t, "every member reports the disagreement", disagreement(1))

	cuts["web-0"].set(addrOf(web2), false)
	cuts["web-2"].set(addrOf(web0), false)
	eventually(t, "healed", wantStates(allAlive(webNames(3)...), agents...))
	eventually(t, "no disagreement once healed", disagreement(0))
}

// Two live processes claim web-1. Both report the name duplicated, no
// quorum and not ready; the others count web-1 once; when the second is
// gone the first recovers by itself. The second ends gracefully, as a pod
// on SIGTERM: the others never stop counting the first, nor does their
// memberlist drop it (its leave would name web-1, not the second's
// address).
func TestDuplicateName(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	agents := c.startAll(3)
	first := agents[1]
	eventually(t, "quorum", func() error { return first.Ready() })
	second := runAgent(t, c.config("web-1")) // not in DNS: it finds the others, they do not look for it
	duplicated := func(a *testAgent, want bool) error {
		if got := a.gauge(a.metrics.nameDuplicated); got != b2f(want) {
			return fmt.Errorf("%s at %s: peeragent_name_duplicated = %v", a.cfg.NodeName, addrOf(a), got)
		}
		if got := a.gauge(a.metrics.hasQuorum); got != b2f(!want) {
			return fmt.Errorf("%s at %s: peeragent_has_quorum = %v", a.cfg.NodeName, addrOf(a), got)
		}
		if err := a.Ready(); (err != nil) != want {
			return fmt.Errorf("%s at %s: Ready() = %w", a.cfg.NodeName, addrOf(a), err)
		}
		return nil
	}
	eventually(t, "both claimants see the duplicate", func() error {
		return errors.Join(duplicated(first, true), duplicated(second, true))
	})
	for _, a := range []*testAgent{agents[0], agents[2]} {
		if q := a.Quorum(); q.Alive != 3 || !q.Has {
			t.Errorf("%s: quorum %+v, want web-1 counted once: 3 alive", a.cfg.NodeName, q)
		}
		if got := a.gauge(a.metrics.members.WithLabelValues("alive")); got != 3 {
			t.Errorf("%s: peeragent_members{state=alive} = %v, want 3", a.cfg.NodeName, got)
		}
	}
	counted := watchAlways(t, 5*time.Millisecond, func() error {
		for _, a := range []*testAgent{agents[0], agents[2]} {
			if m := a.member("web-1"); m.State != StateAlive || m.Address != addrOf(first) {
				return fmt.Errorf("%s sees web-1 %s at %s, want alive at %s", a.cfg.NodeName, m.State, m.Address, addrOf(first))
			}
			if q := a.Quorum(); q.Alive != 3 {
				return fmt.Errorf("%s: quorum %+v, want 3 alive", a.cfg.NodeName, q)
			}
			held := false
			for _, n := range a.ml.Members() {
				held = held || n.Name == "web-1" && nodeAddr(n) == addrOf(first)
			}
			if !held {
				return fmt.Errorf("%s: memberlist does not hold web-1 at %s", a.cfg.NodeName, addrOf(first))
			}
		}
		return nil
	})
	second.stop()
	eventually(t, "the first claimant recovers", func() error { return duplicated(first, false) })
	if err := counted(); err != nil {
		t.Errorf("after the second web-1 left gracefully: %v", err)
	}
}

// watchAlways polls check every interval until the returned function is
// called, which reports the first failure seen (nil if none).
func watchAlways(t *testing.T, interval time.Duration, check func() error) func() error {
	t.Helper()
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var first error
		for {
			if err := check(); err != nil && first == nil {
				first = fmt.Errorf("at %s: %w", time.Now().Format("15:04:05.000"), err)
			}
			select {
			case <-stop:
				done <- first
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var err error
	end := func() error {
		once.Do(func() { close(stop); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = end() })
	return end
}

// A leave announcement naming another member, or coming from an address
// the member does not have, is ignored: the member's later crash is a
// failure, not a leave.
func TestForgedLeaveIsIgnored(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	agents := c.startAll(3)
	forger, victim, observer := agents[0], agents[1], agents[2]
	var to *memberlist.Node
	for _, n := range forger.ml.Members() {
		if n.Name == "web-2" {
			to = n
		}
	}
	forged, _ := json.Marshal(leaveMsg{Name: "web-1", Addr: addrOf(forger)})
	for _, msg := range [][]byte{
		append([]byte{'l'}, "web-1"...),     // the first format: a bare name
		append([]byte{msgLeave}, forged...), // the forger's own address
	} {
		if err := forger.ml.SendReliable(to, msg); err != nil {
			t.Fatal(err)
		}
	}
	// SendReliable returns once the stream is written; the observer reads
	// it long before memberlist declares the victim dead.
	victim.kill()
	want := allAlive("web-0", "web-2")
	want["web-1"] = StateDead
	eventually(t, "web-1 seen as failed", wantStates(want, observer))
}

// Each member gossips its version and zone: /members shows them with the
// last direct contact and its round-trip time, and
// peeragent_members_by_version counts the alive members per version, as
// during a partitioned rolling update.
func TestNodeMetadata(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	meta := map[string][2]string{"web-0": {"1.0", "zone-a"}, "web-1": {"1.0", "zone-b"}, "web-2": {"1.1", ""}}
	var agents []*testAgent
	for _, name := range webNames(3) {
		agents = append(agents, c.start(name, func(cfg *Config) { cfg.Version, cfg.Zone = meta[name][0], meta[name][1] }))
	}
	eventually(t, "converge", wantStates(allAlive(webNames(3)...), agents...))
	obs := agents[0]
	byVersion := func(v string) float64 { return obs.gauge(obs.metrics.membersByVersion.WithLabelValues(v)) }
	if a, b := byVersion("1.0"), byVersion("1.1"); a != 2 || b != 1 {
		t.Errorf("peeragent_members_by_version: 1.0=%v 1.1=%v, want 2 and 1", a, b)
	}

	rec := httptest.NewRecorder()
	obs.MembersHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/members", nil))
	var members []struct {
		Name        string    `json:"name"`
		Version     string    `json:"version"`
		Zone        string    `json:"zone"`
		LastContact time.Time `json:"last_contact"`
		RTT         float64   `json:"rtt_seconds"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &members); err != nil {
		t.Fatalf("/members: %v\n%s", err, rec.Body)
	}
	for _, m := range members {
		if m.Version != meta[m.Name][0] || m.Zone != meta[m.Name][1] {
			t.Errorf("/members: %s version %q zone %q, want %q", m.Name, m.Version, m.Zone, meta[m.Name])
		}
		self := m.Name == "web-0"
		if m.LastContact.IsZero() != self || (m.RTT > 0) == self {
			t.Errorf("/members: %s last contact %v rtt %v; want both set for a peer, neither for this agent", m.Name, m.LastContact, m.RTT)
		}
	}

	agents[2].stop() // the canary goes away
	eventually(t, "version 1.1 no longer counted", func() error {
		if got := byVersion("1.1"); got != 0 {
			return fmt.Errorf("peeragent_members_by_version{version=1.1} = %v", got)
		}
		return nil
	})
}

// /startupz fails until another member answered this agent's own probe,
// then stays ok; /readyz follows it.
func TestStartupWaitsForTheFirstAck(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	a := c.start("web-0")
	status := func() int {
		rec := httptest.NewRecorder()
		a.StartupHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/startupz", nil))
		return rec.Code
	}
	if got := status(); got != http.StatusServiceUnavailable {
		t.Fatalf("/startupz = %d alone, want 503", got)
	}
	if a.Ready() == nil {
		t.Fatal("ready alone")
	}
	b := c.start("web-1")
	eventually(t, "started", func() error {
		if got := status(); got != http.StatusOK {
			return fmt.Errorf("/startupz = %d", got)
		}
		return a.Ready()
	})
	b.kill()
	eventually(t, "web-1 gone", func() error {
		if s := a.member("web-1").State; s != StateDead {
			return fmt.Errorf("web-1 %s", s)
		}
		return nil
	})
	if got := status(); got != http.StatusOK {
		t.Errorf("/startupz = %d after the peer went, want 200 (it latches)", got)
	}
}

// Gossip without a keyring works, with a warning at start.
func TestWarnsWithoutAKey(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	logs := &syncBuffer{}
	c.start("web-0", func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	c.start("web-1", func(cfg *Config) {
		cfg.KeyringDir = newSecretDir(t, map[string][]byte{"primary": key(1)}).dir
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil)).With("keyed", true)
	})
	var warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "not encrypted") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || strings.Contains(warnings[0], "keyed") {
		t.Errorf("want one warning about unencrypted gossip, from the agent without a key; got %q", warnings)
	}
}
