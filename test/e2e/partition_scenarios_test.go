package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// testMinorityPartition: a StatefulSet part of 5; part-3 and part-4 are cut
// off from part-0, part-1 and part-2 (each side still reaches peerdns).
// The minority loses quorum and turns unready, the majority keeps it the
// whole time, and each side's metrics say so; once the partition heals,
// all five see each other again and the minority is ready again, without
// a restart.
func testMinorityPartition(t *testing.T, d *deployment) {
	requireIPTables(t)
	s := d.newStatefulSet(t, "part", 5)
	s.startAll(t)
	majority, minority := s.agents[:3], s.agents[3:]

	majorityKeeps := func() error {
		var checks []func() error
		for _, p := range majority {
			checks = append(checks, wantMetric(p, "peeragent_has_quorum", 1), wantReady(p, http.StatusOK))
		}
		return allOf(checks...)()
	}
	kept := watch(t, "majority keeps quorum and stays ready while cut off", 100*time.Millisecond, majorityKeeps)

	start := time.Now()
	split := cut(t, s.hosts[3:], s.hosts[:3])
	minorityView := []string{"part-0=suspect|dead", "part-1=suspect|dead", "part-2=suspect|dead", "part-3=alive", "part-4=alive"}
	majorityView := []string{"part-0=alive", "part-1=alive", "part-2=alive", "part-3=suspect|dead", "part-4=suspect|dead"}
	took := testtools.Eventually(t, "minority loses quorum", stepLimit, allOf(
		wantView(minority[0], 0, minorityView...), wantReady(minority[0], http.StatusServiceUnavailable),
		wantView(minority[1], 0, minorityView...), wantReady(minority[1], http.StatusServiceUnavailable),
	))
	t.Logf("measured: minority partition, 2 of 5 cut off: minority without quorum and unready after %v", took.Round(time.Millisecond))
	took = testtools.Eventually(t, "majority sees the minority gone", stepLimit, allOf(
		wantView(majority[0], 1, majorityView...),
		wantView(majority[1], 1, majorityView...),
		wantView(majority[2], 1, majorityView...),
	))
	t.Logf("measured: minority partition: majority no longer counts the minority after %v (quorum kept)", since(start))

	// Each side agrees with itself once the other side is declared dead:
	// a clean partition is not a view disagreement.
	minorityView = []string{"part-0=dead", "part-1=dead", "part-2=dead", "part-3=alive", "part-4=alive"}
	majorityView = []string{"part-0=alive", "part-1=alive", "part-2=alive", "part-3=dead", "part-4=dead"}
	var checks []func() error
	for _, p := range minority {
		checks = append(checks, wantView(p, 0, minorityView...), wantMetric(p, "peeragent_view_disagreement", 0))
	}
	for _, p := range majority {
		checks = append(checks, wantView(p, 1, majorityView...), wantMetric(p, "peeragent_view_disagreement", 0))
	}
	// memberlist's suspicion timeout shrinks with the confirmations a
	// suspect gets from other members; the minority has only one other
	// member to confirm, so it may take up to the maximum: 6 × 4 probe
	// intervals with the lan timings, 24 s.
	testtools.Eventually(t, "each side declares the other dead and agrees with itself", 40*time.Second, allOf(checks...))
	t.Logf("measured: minority partition: each side declared the other dead after %v", since(start))

	kept.end(t)

	// While the partition heals, the minority gossips what it last knew:
	// that the majority's members are dead, at the incarnation the
	// majority itself holds, which memberlist accepts until each refutes
	// it. An agent keeps counting a member declared dead on another's word
	// while its own acks from it are fresh, so the majority keeps quorum
	// and stays ready at every poll.
	healing := watch(t, "majority keeps quorum and stays ready while the partition heals", 100*time.Millisecond, majorityKeeps)
	if err := split.heal(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	took = testtools.Eventually(t, "partition healed: all alive, quorum and ready everywhere", stepLimit, s.wantAllAlive(s.agents...))
	t.Logf("measured: minority partition healed: all 5 alive, with quorum and ready on every member after %v", took.Round(time.Millisecond))
	healing.end(t)
}

// testNonTransitivePartition: a StatefulSet split of 3; split-0 and split-2
// cannot reach each other, both still reach split-1. No local view can tell
// this apart from a healthy cluster with one member down: split-0 counts
// split-0 and split-1, split-2 counts split-1 and split-2, and both hold
// quorum (2 of 3) at once. has_quorum says what this agent's probes saw,
// not that no one else also holds quorum. What tells the case apart is the
// gossiped views: each agent's own member list differs from one an alive
// member reports, so peeragent_view_disagreement is 1 on all three while it
// lasts, and 0 before and after.
func testNonTransitivePartition(t *testing.T, d *deployment) {
	requireIPTables(t)
	s := d.newStatefulSet(t, "split", 3)
	s.startAll(t)
	testtools.Eventually(t, "healthy: no view disagreement", stepLimit, s.wantViewsAgree())

	split := cut(t, s.hosts[:1], s.hosts[2:])
	took := testtools.Eventually(t, "split-0 and split-2 lose each other, both keep quorum, views disagree", stepLimit, allOf(
		wantView(s.agents[0], 1, "split-0=alive", "split-1=alive", "split-2=suspect|dead"),
		wantView(s.agents[1], 1, "split-0=alive", "split-1=alive", "split-2=alive"),
		wantView(s.agents[2], 1, "split-0=suspect|dead", "split-1=alive", "split-2=alive"),
		wantMetric(s.agents[0], "peeragent_view_disagreement", 1),
		wantMetric(s.agents[1], "peeragent_view_disagreement", 1),
		wantMetric(s.agents[2], "peeragent_view_disagreement", 1),
	))
	t.Logf("measured: non-transitive partition: both ends hold quorum, view_disagreement 1 on all 3 after %v", took.Round(time.Millisecond))

	if err := split.heal(); err != nil {
		t.Fatal(err)
	}
	took = testtools.Eventually(t, "healed: all alive, views agree", stepLimit, allOf(s.wantAllAlive(s.agents...), s.wantViewsAgree()))
	t.Logf("measured: non-transitive partition healed: all alive and view_disagreement 0 on all 3 after %v", took.Round(time.Millisecond))
}
