package discovery

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is advanced by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) add(d time.Duration)     { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func (ms *membership) state(n string) string { s, _ := ms.stateOf(n); return s.String() }

func newTestMembership(t *testing.T) (*membership, *fakeClock) {
	t.Helper()
	set := ExpectedSet{Set: "web", N: 3}
	m := newMetrics(prometheus.NewRegistry(), set, Identity{Set: "web", Ordinal: 0})
	clock := newFakeClock()
	ms := newMembership("web-0", "", ExpectedSet{Set: set.Set, N: 64}, Voting{Current: VotingConfig{Voters: set.Ordinals()}}, set.Ordinals(), testTiming(), m)
	ms.now = clock.now
	for _, n := range set.Names() {
		ms.join(n, n+":7946", nodeMeta{})
		ms.ack(n, n+":7946", time.Millisecond)
	}
	return ms, clock
}

func TestMembershipStates(t *testing.T) {
	ms, clock := newTestMembership(t)
	timeout := testTiming().SuspectTimeout

	clock.add(timeout / 2)
	ms.ack("web-1", "web-1:7946", time.Millisecond)
	clock.add(timeout/2 + time.Millisecond)
	ms.checkSuspects()
	if got := ms.state("web-2"); got != "suspect" {
		t.Fatalf("web-2 silent for longer than the suspect timeout is %s, want suspect", got)
	}
	if got := ms.state("web-1"); got != "alive" {
		t.Fatalf("web-1 acked within the timeout is %s, want alive", got)
	}
	if q := ms.currentQuorum(); q.Alive != 2 || !q.Has {
		t.Fatalf("quorum %+v, want 2 alive (suspect does not count)", q)
	}
	ms.ack("web-2", "web-2:7946", time.Millisecond)
	if got := ms.state("web-2"); got != "alive" {
		t.Fatalf("web-2 after an ack is %s, want alive", got)
	}

	if ms.leaving("web-1", "web-2:7946") {
		t.Error("accepted web-1's leave from web-2's address")
	}
	if !ms.leaving("web-1", "web-1:7946") {
		t.Error("refused web-1's leave from its own address")
	}
	clock.add(timeout + time.Millisecond) // acks no longer fresh: memberlist's verdict stands
	ms.leave("web-1")
	ms.leave("web-2")
	if a, b := ms.state("web-1"), ms.state("web-2"); a != "left" || b != "dead" {
		t.Fatalf("web-1 %s, web-2 %s; want left (announced) and dead", a, b)
	}
	ms.join("web-1", "web-1:7000", nodeMeta{})
	ms.ack("web-1", "web-1:7000", time.Millisecond)
	if got := ms.state("web-1"); got != "alive" {
		t.Fatalf("web-1 back is %s, want alive", got)
	}
	clock.add(timeout + time.Millisecond)
	ms.leave("web-1") // no new announcement since it came back
	if got := ms.state("web-1"); got != "dead" {
		t.Fatalf("web-1 failing after rejoining is %s, want dead", got)
	}
	for event, want := range map[string]float64{"join": 4, "suspect": 1, "recover": 1, "leave": 1, "fail": 2} {
		if got := testutil.ToFloat64(ms.metrics.changes.WithLabelValues(event)); got != want {
			t.Errorf("%s events = %v, want %v", event, got, want)
		}
	}
}

// The views here carry no Proc, as from agents that predate it: their
// clocks order them.
func TestViewDisagreement(t *testing.T) {
	ms, clock := newTestMembership(t)
	disagree := func() float64 { return testutil.ToFloat64(ms.metrics.viewDisagreement) }
	mine := ms.currentView()
	ms.setView("web-1", view{Hash: mine.Hash, Members: 3, Sent: 1})
	if disagree() != 0 {
		t.Fatal("disagreement with an identical view")
	}
	ms.setView("web-2", view{Hash: mine.Hash + 1, Members: 2, Sent: 1})
	if disagree() != 1 {
		t.Fatal("no disagreement with a different view")
	}
	ms.setView("web-2", view{Hash: mine.Hash + 2, Members: 2, Sent: 0}) // older: ignored
	ms.setView("web-2", view{Hash: mine.Hash, Members: 3, Sent: 2})
	if disagree() != 0 {
		t.Fatal("disagreement after web-2 caught up")
	}
	ms.setView("web-2", view{Hash: mine.Hash + 1, Members: 2, Sent: 3})
	clock.add(3*testTiming().ViewInterval + time.Second)
	for _, n := range []string{"web-1", "web-2"} {
		ms.ack(n, n+":7946", time.Millisecond)
	}
	ms.checkSuspects()
	if disagree() != 0 {
		t.Fatal("a stale view still counts as disagreement")
	}
}

// memberlist may declare a member dead on another member's word: at the
// heal of a partition the minority gossips that the majority's members are
// dead, and another process's leave under the same name names the member
// only. A member whose own ack to this agent is fresh keeps counting until
// it stops answering this agent for the suspect timeout, or memberlist
// takes it back at the same address; a member never acked still waits for
// its first ack, and an announced leave still counts at once.
func TestDeadOnHearsayKeepsCountingWhileAcksAreFresh(t *testing.T) {
	timeout := testTiming().SuspectTimeout
	t.Run("refuted", func(t *testing.T) {
		ms, clock := newTestMembership(t)
		transitions := testutil.ToFloat64(ms.metrics.quorumTransitions)
		clock.add(timeout / 2)
		ms.leave("web-1") // memberlist: dead, from gossip
		if got := ms.state("web-1"); got != "alive" {
			t.Fatalf("web-1 acked %v ago, declared dead by gossip, is %s; want alive", timeout/2, got)
		}
		if q := ms.currentQuorum(); q.Alive != 3 {
			t.Fatalf("quorum %+v, want web-1 still counted: 3 alive", q)
		}
		ms.ack("web-1", "web-1:7946", time.Millisecond) // it still answers this agent
		clock.add(timeout / 2)
		ms.checkSuspects()
		ms.join("web-1", "web-1:7946", nodeMeta{}) // it refuted: memberlist takes it back
		ms.checkSuspects()
		if got := ms.state("web-1"); got != "alive" {
			t.Fatalf("web-1 back at the address this agent acked is %s; want alive", got)
		}
		if got := testutil.ToFloat64(ms.metrics.quorumTransitions); got != transitions {
			t.Errorf("quorum transitions = %v, want %v: none since web-1 was declared dead", got, transitions)
		}
		if got := testutil.ToFloat64(ms.metrics.changes.WithLabelValues("fail")); got != 0 {
			t.Errorf("fail events = %v, want 0", got)
		}
	})
	t.Run("silent", func(t *testing.T) {
		ms, clock := newTestMembership(t)
		clock.add(timeout / 2)
		ms.leave("web-2")
		ms.ack("web-1", "web-1:7946", time.Millisecond)
		clock.add(timeout/2 + time.Millisecond)
		ms.checkSuspects()
		if got := ms.state("web-2"); got != "dead" {
			t.Fatalf("web-2 declared dead and silent for the suspect timeout is %s; want dead", got)
		}
		if q := ms.currentQuorum(); q.Alive != 2 {
			t.Fatalf("quorum %+v, want 2 alive", q)
		}
	})
	t.Run("new address", func(t *testing.T) {
		ms, _ := newTestMembership(t)
		ms.leave("web-1")
		ms.join("web-1", "web-1:7000", nodeMeta{}) // another process
		if got := ms.state("web-1"); got != "suspect" {
			t.Fatalf("web-1 back at a new address before an ack from it is %s; want suspect", got)
		}
	})
	t.Run("announced", func(t *testing.T) {
		ms, _ := newTestMembership(t)
		if !ms.leaving("web-1", "web-1:7946") {
			t.Fatal("refused web-1's leave from its own address")
		}
		ms.leave("web-1")
		if got := ms.state("web-1"); got != "left" {
			t.Fatalf("web-1 after its announced leave is %s; want left", got)
		}
	})
}

// An ack counts for the address that was pinged: a late ack from the
// address a member had before memberlist re-admitted it at another one
// says nothing about the new process.
func TestAckFromAnOldAddressDoesNotCount(t *testing.T) {
	timeout := testTiming().SuspectTimeout
	for _, tc := range []struct {
		name string
		move func(ms *membership)
	}{
		{"rejoined after dead", func(ms *membership) {
			ms.leave("web-1")
			ms.join("web-1", "web-1:7000", nodeMeta{})
		}},
		{"address updated", func(ms *membership) {
			ms.update("web-1", "web-1:7000", nodeMeta{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, clock := newTestMembership(t)
			clock.add(timeout + time.Millisecond)
			ms.checkSuspects() // web-1 and web-2 silent
			tc.move(ms)
			if got := ms.state("web-1"); got != "suspect" {
				t.Fatalf("web-1 at its new address is %s, want suspect", got)
			}
			ms.ack("web-1", "web-1:7946", time.Millisecond) // the old address's late ack
			if got := ms.state("web-1"); got != "suspect" {
				t.Fatalf("web-1 after an ack from its old address is %s, want suspect", got)
			}
			if q := ms.currentQuorum(); q.Alive != 1 {
				t.Fatalf("quorum %+v, want web-0 alone counted", q)
			}
			ms.ack("web-1", "web-1:7000", time.Millisecond)
			if got := ms.state("web-1"); got != "alive" {
				t.Fatalf("web-1 after an ack from its new address is %s, want alive", got)
			}
		})
	}
}

// A member's views are ordered by its own sequence, not its clock: a clock
// stepped back does not make its next views look old, a view delayed in
// gossip is still ignored, and a restarted process starts a new sequence.
func TestViewOrderSurvivesAClockStep(t *testing.T) {
	ms, _ := newTestMembership(t)
	disagree := func() float64 { return testutil.ToFloat64(ms.metrics.viewDisagreement) }
	mine := ms.currentView()
	for _, step := range []struct {
		what string
		v    view
		want float64
	}{
		{"a different view", view{Hash: mine.Hash + 1, Members: 2, Proc: 7, Seq: 1, Sent: 2_000}, 1},
		{"caught up, its clock stepped back", view{Hash: mine.Hash, Members: 3, Proc: 7, Seq: 2, Sent: 1_000}, 0},
		{"the first view delivered late", view{Hash: mine.Hash + 1, Members: 2, Proc: 7, Seq: 1, Sent: 2_000}, 0},
		{"a restarted process's first view", view{Hash: mine.Hash + 1, Members: 2, Proc: 8, Seq: 1, Sent: 500}, 1},
	} {
		ms.setView("web-1", step.v)
		if got := disagree(); got != step.want {
			t.Fatalf("after %s: view_disagreement = %v, want %v", step.what, got, step.want)
		}
	}
}
