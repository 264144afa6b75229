package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peerdns/peerdns/internal/testtools"
)

// testTiming is fast enough for a test suite and slow enough for -race on a
// busy machine (a member counts only once it answered a probe within the
// probe timeout): a crashed member is suspect within about 1.5s and dead
// within about 4s.
func testTiming() Timing {
	return Timing{
		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 2,
		GossipInterval:          50 * time.Millisecond,
		GossipNodes:             3,
		PushPullInterval:        2 * time.Second,
		TCPTimeout:              time.Second,
		GossipToTheDeadTime:     5 * time.Second,
		DeadNodeReclaimTime:     200 * time.Millisecond,
		SuspectTimeout:          1500 * time.Millisecond,
		ViewInterval:            time.Second,
	}
}

const (
	testSRV    = "_gossip._tcp.web.test"
	testDomain = "web.test"
	waitFor    = 20 * time.Second
)

// testCluster runs agents of one StatefulSet "web" in this process, found
// through a test DNS server.
type testCluster struct {
	t        *testing.T
	dns      *testDNS
	expected int
	// configure adjusts every agent's config before it starts.
	configure func(*Config)
}

func newTestCluster(t *testing.T, expected int) *testCluster {
	return &testCluster{t: t, dns: startDNS(t), expected: expected}
}

type testAgent struct {
	*Agent
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func (c *testCluster) config(name string) Config {
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.Expected = c.expected
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Timing = testTiming()
	cfg.PeersSRV = testSRV
	cfg.DNSServer = c.dns.addr
	cfg.RefreshInterval = time.Second
	cfg.RefreshMinInterval = 50 * time.Millisecond
	cfg.LookupTimeout = time.Second
	cfg.SettleTime = testTiming().SuspectTimeout
	cfg.LeaveTimeout = 2 * time.Second
	cfg.KeyringReloadInterval = 50 * time.Millisecond
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", name)
	}
	if c.configure != nil {
		c.configure(&cfg)
	}
	return cfg
}

// start runs an agent named name and publishes it in DNS (SRV target and A
// record) once it listens, as the cluster DNS would for a new pod.
func (c *testCluster) start(name string, mutate ...func(*Config)) *testAgent {
	c.t.Helper()
	cfg := c.config(name)
	for _, m := range mutate {
		m(&cfg)
	}
	ta := runAgent(c.t, cfg)
	target := name + "." + testDomain
	c.dns.setHost(target, ta.Addr().Addr())
	c.dns.setTarget(testSRV, target, ta.Addr().Port())
	return ta
}

// runAgent starts an agent and stops it (gracefully) when the test ends.
func runAgent(t *testing.T, cfg Config) *testAgent {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.NodeName, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(ctx) }()
	select {
	case <-a.Started():
	case err := <-ta.done:
		cancel()
		t.Fatalf("Run(%s): %v", cfg.NodeName, err)
	case <-time.After(waitFor):
		cancel()
		t.Fatalf("%s did not start", cfg.NodeName)
	}
	t.Cleanup(ta.stop)
	return ta
}

// stop shuts the agent down gracefully (leave) and waits for Run to return.
func (ta *testAgent) stop() {
	ta.cancel()
	select {
	case <-ta.done:
		ta.done <- nil // later stops return at once
	case <-time.After(waitFor):
		panic(ta.cfg.NodeName + ": Run did not return")
	}
}

// kill stops the agent like a crash: no leave, the others must detect it.
func (ta *testAgent) kill() {
	ta.abort.Store(true)
	ta.stop()
}

func (ta *testAgent) states() map[string]MemberState {
	out := map[string]MemberState{}
	for _, m := range ta.Members() {
		if m.State != StateUnknown {
			out[m.Name] = m.State
		}
	}
	return out
}

func (ta *testAgent) member(name string) Member {
	for _, m := range ta.Members() {
		if m.Name == name {
			return m
		}
	}
	return Member{}
}

func (ta *testAgent) gauge(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// wantStates checks that every agent sees exactly the given member states.
func wantStates(want map[string]MemberState, agents ...*testAgent) func() error {
	return func() error {
		for _, a := range agents {
			if got := a.states(); !equalStates(got, want) {
				return fmt.Errorf("%s sees %s, want %s", a.cfg.NodeName, fmtStates(got), fmtStates(want))
			}
		}
		return nil
	}
}

func equalStates(a, b map[string]MemberState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func fmtStates(s map[string]MemberState) string {
	var parts []string
	for k, v := range s {
		parts = append(parts, k+"="+v.String())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

func allAlive(names ...string) map[string]MemberState {
	m := map[string]MemberState{}
	for _, n := range names {
		m[n] = StateAlive
	}
	return m
}

func webNames(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("web-%d", i))
	}
	return out
}

// startAll starts web-0 … web-(n-1) and waits until they all see each
// other alive.
func (c *testCluster) startAll(n int) []*testAgent {
	c.t.Helper()
	var agents []*testAgent
	for _, name := range webNames(n) {
		agents = append(agents, c.start(name))
	}
	eventually(c.t, "cluster converges", wantStates(allAlive(webNames(n)...), agents...))
	return agents
}

func addrOf(ta *testAgent) string { return ta.Addr().String() }

// eventually polls check until it returns nil or waitFor passes.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testtools.Eventually(t, what, waitFor, check)
}
