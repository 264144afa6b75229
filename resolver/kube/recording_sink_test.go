package kube

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/peerdns/peerdns/resolver"
	"github.com/peerdns/peerdns/resolver/kube/internal/sliceconv"
)

// recordingSink is a Sink that keeps the services it is given and a log of
// the calls, and lets a test wait for a state.
type recordingSink struct {
	mu       sync.Mutex
	services map[string]resolver.Service // "<ns>/<name>"
	calls    []string                    // "upsert ns/name", "delete ns/name", "synced"
	history  []change                    // every state the sink went through
	synced   bool
	changed  chan struct{} // capacity 1: a call happened
}

// change is one state a service took in the sink: its formatService text,
// or "" once deleted.
type change struct {
	key, state string
}

func newRecordingSink() *recordingSink {
	return &recordingSink{services: map[string]resolver.Service{}, changed: make(chan struct{}, 1)}
}

func (s *recordingSink) Upsert(svc resolver.Service) {
	s.record(func() {
		k := svc.Namespace + "/" + svc.Name
		s.services[k] = svc
		s.calls = append(s.calls, "upsert "+k)
		s.history = append(s.history, change{k, formatService(svc)})
	})
}

func (s *recordingSink) Delete(namespace, name string) {
	s.record(func() {
		k := namespace + "/" + name
		delete(s.services, k)
		s.calls = append(s.calls, "delete "+k)
		s.history = append(s.history, change{k, ""})
	})
}

func (s *recordingSink) SetSynced() {
	s.record(func() {
		s.synced = true
		s.calls = append(s.calls, "synced")
	})
}

func (s *recordingSink) record(f func()) {
	s.mu.Lock()
	f()
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// snapshot returns the sink's services in the short text form of
// formatService, keyed by "<ns>/<name>".
func (s *recordingSink) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.services))
	for k, svc := range s.services {
		out[k] = formatService(svc)
	}
	return out
}

func (s *recordingSink) callLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// changesSince returns the changes after the first n.
func (s *recordingSink) changesSince(n int) []change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history[n:])
}

func (s *recordingSink) changeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.history)
}

func (s *recordingSink) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// waitFor waits until cond holds for the sink, or fails the test after a
// deadline. It returns how long it waited.
func (s *recordingSink) waitFor(t testing.TB, what string, cond func(*recordingSink) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !cond(s) {
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; sink has %v; calls %v", what, s.snapshot(), s.callLog())
		}
	}
	return time.Since(start)
}

// waitService waits until the sink's service key has the text form want, or
// is absent when want is "".
func (s *recordingSink) waitService(t testing.TB, key, want string) time.Duration {
	t.Helper()
	var got string
	return s.waitFor(t, fmt.Sprintf("%s = %q", key, want), func(s *recordingSink) bool {
		got = s.snapshot()[key]
		return got == want
	})
}

// formatService writes svc in one line, for comparisons that read well in
// failure messages:
//
//	ports=http/tcp/80,:udp/53 eps=web-0[10.0.0.1,fd00::1],-[10.0.0.2]{:udp/53}!
//
// An unnamed port is written ":proto/port"; an endpoint without hostname is
// "-"; braces hold an endpoint's ports when they are not all of ports=; a
// trailing "!" marks an endpoint that is not ready.
func formatService(svc resolver.Service) string {
	var b strings.Builder
	// ports= is the union of the service's and the endpoints' ports; an
	// endpoint whose ports are not that union lists its own in braces.
	union := slices.Clone(svc.Ports)
	for _, ep := range svc.Endpoints {
		union = append(union, ep.Ports...)
	}
	slices.SortFunc(union, sliceconv.ComparePort)
	union = slices.Compact(union)
	writePorts := func(ports []resolver.Port) {
		for i, p := range ports {
			if i > 0 {
				b.WriteByte(',')
			}
			if p.Name == "" {
				fmt.Fprintf(&b, ":%s/%d", p.Protocol, p.Port)
				continue
			}
			fmt.Fprintf(&b, "%s/%s/%d", p.Name, p.Protocol, p.Port)
		}
	}
	b.WriteString("ports=")
	writePorts(union)
	b.WriteString(" eps=")
	for i, ep := range svc.Endpoints {
		if i > 0 {
			b.WriteByte(',')
		}
		h := ep.Hostname
		if h == "" {
			h = "-"
		}
		b.WriteString(h)
		b.WriteByte('[')
		for j, a := range ep.Addrs {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.String())
		}
		b.WriteByte(']')
		if own := sliceconv.UnionPorts(svc.Ports, ep.Ports); !slices.Equal(own, union) {
			b.WriteByte('{')
			writePorts(own)
			b.WriteByte('}')
		}
		if !ep.Ready {
			b.WriteByte('!')
		}
	}
	return b.String()
}

// addrComparer lets go-cmp compare netip.Addr values.
var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// sortedKeys is for messages.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
