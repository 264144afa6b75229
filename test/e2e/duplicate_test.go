package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// testDuplicateName: a StatefulSet dup of 3, then a second live process
// named dup-1 at another address (a force-deleted pod whose process still
// runs while its replacement starts). Contract: while another live process
// claims its name, an agent reports peeragent_name_duplicated 1,
// peeragent_has_quorum 0 and fails /readyz; the other members count the
// name at most once and keep quorum; once the second process is gone, the
// first recovers by itself.
func testDuplicateName(t *testing.T, d *deployment) {
	s := d.newStatefulSet(t, "dup", 3)
	s.startAll(t)
	original := s.agents[1]
	others := []*proc{s.agents[0], s.agents[2]}
	originalAddr := net.JoinHostPort(s.hosts[1].ip, strconv.Itoa(gossipPort))

	once := watch(t, "the others count dup-1 at most once and keep quorum", 100*time.Millisecond, func() error {
		var checks []func() error
		for _, p := range others {
			checks = append(checks, wantCountedOnce(p, "dup-1", s.n), wantMetric(p, "peeragent_has_quorum", 1))
		}
		return allOf(checks...)()
	})

	second := s.startAgent(t, d.lan.addHost(t), "dup-1", s.peerSRV())
	start := time.Now()
	claimant := func(p *proc) func() error {
		return allOf(
			wantMetric(p, "peeragent_name_duplicated", 1),
			wantMetric(p, "peeragent_has_quorum", 0),
			wantReady(p, http.StatusServiceUnavailable),
		)
	}
	took := testtools.Eventually(t, "the original dup-1 reports the duplicate", stepLimit, claimant(original))
	t.Logf("measured: duplicate name: the original reports name_duplicated 1, no quorum, unready after %v", took.Round(time.Millisecond))
	testtools.Eventually(t, "the second dup-1 reports the duplicate", stepLimit, claimant(second))
	t.Logf("measured: duplicate name: the second process reports it after %v", since(start))

	// The second process ends as a pod's does, with SIGTERM: its own
	// leave announcement names dup-1 but comes from the second's address,
	// and it does not leave through memberlist (whose leave names the
	// member only) since a witness told it the others hold another
	// address. The others count the original alive, at its address, at
	// every poll.
	originalCounted := watch(t, "the others count the original dup-1 alive throughout the second's leave", 100*time.Millisecond, func() error {
		var checks []func() error
		for _, p := range others {
			checks = append(checks, wantView(p, 1, "dup-0=alive", "dup-1=alive", "dup-2=alive"), wantAddress(p, "dup-1", originalAddr))
		}
		return allOf(checks...)()
	})
	second.stop(t, 10*time.Second)
	start = time.Now()
	took = testtools.Eventually(t, "the original recovers by itself", stepLimit, allOf(
		wantMetric(original, "peeragent_name_duplicated", 0),
		s.wantAllAlive(s.agents...),
		wantAddress(s.agents[0], "dup-1", originalAddr),
		wantAddress(s.agents[2], "dup-1", originalAddr),
	))
	t.Logf("measured: duplicate name: second process stopped; the original has quorum and is ready again after %v", took.Round(time.Millisecond))
	originalCounted.end(t)
	once.end(t)
}

// wantCountedOnce checks that p's /members lists name once and that p
// counts at most n members alive.
func wantCountedOnce(p *proc, name string, n int) func() error {
	return func() error {
		ms, err := memberList(p)
		if err != nil {
			return err
		}
		entries := 0
		for _, m := range ms {
			if m.Name == name {
				entries++
			}
		}
		if entries != 1 {
			return fmt.Errorf("%s: /members lists %s %d times: %v", p.name, name, entries, ms)
		}
		alive, err := p.metric(`peeragent_members{state="alive"}`)
		if err != nil {
			return err
		}
		if alive > float64(n) {
			return fmt.Errorf("%s: %v members alive, more than the %d expected", p.name, alive, n)
		}
		return nil
	}
}
