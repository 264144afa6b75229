package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/peerdns/peerdns/internal/testtools"
)

// testRollingRestart: a StatefulSet roll of 3 restarted the way the
// StatefulSet controller rolls it: from the highest ordinal down, one
// member at a time, each stopped with SIGTERM, rescheduled under the same
// name at a new address, and the next one only once it is ready (/readyz,
// gated on quorum). Every member that is up holds quorum at every poll
// throughout.
func testRollingRestart(t *testing.T, d *deployment) {
	s := d.newStatefulSet(t, "roll", 3)
	s.startAll(t)

	var mu sync.Mutex
	up := slices.Clone(s.agents) // the members the StatefulSet counts as running
	kept := watch(t, "every member that is up keeps quorum", 100*time.Millisecond, func() error {
		mu.Lock()
		ps := slices.Clone(up)
		mu.Unlock()
		var checks []func() error
		for _, p := range ps {
			checks = append(checks, wantMetric(p, "peeragent_has_quorum", 1))
		}
		return allOf(checks...)()
	})

	roll := time.Now()
	for i := s.n - 1; i >= 0; i-- {
		old := s.agents[i]
		mu.Lock()
		up = slices.DeleteFunc(up, func(p *proc) bool { return p == old })
		mu.Unlock()
		start := time.Now()
		old.stop(t, 10*time.Second)
		stopped := since(start)

		// Rescheduled: a new namespace and address, published in the
		// EndpointSlice (not ready yet) as the endpointslice controller
		// would once the new pod has an IP.
		d.lan.removeHost(t, s.hosts[i])
		s.hosts[i] = d.lan.addHost(t)
		eps := make([]discoveryv1.Endpoint, s.n)
		for j, h := range s.hosts {
			eps[j] = endpoint(s.member(j), h.ip, j != i)
		}
		s.slice.update(t, eps...)
		testtools.Eventually(t, fmt.Sprintf("peer view has %s's new address", s.member(i)), stepLimit, s.wantPeerView())
		p := s.start(t, i)
		took := testtools.Eventually(t, s.member(i)+" ready", stepLimit, wantReady(p, http.StatusOK))
		mu.Lock()
		up = append(up, p)
		mu.Unlock()
		t.Logf("measured: rolling restart: %s left in %v, ready at its new address %v after it started",
			s.member(i), stopped, took.Round(time.Millisecond))
	}
	testtools.Eventually(t, "all alive after the roll", stepLimit, s.wantAllAlive(s.agents...))
	t.Logf("measured: rolling restart of %d members: %v in all", s.n, since(roll))
	kept.end(t)
}
