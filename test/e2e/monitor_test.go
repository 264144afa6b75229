package e2e

import (
	"sync"
	"testing"
	"time"
)

// monitor polls a check in the background, as a dashboard scraping every
// agent would, to prove that something held the whole time rather than at
// the moments the test looked. Each poll runs the check once; failures are
// kept with their time for the report.
type monitor struct {
	what string
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	polls    int
	failures []string
}

// watch starts polling check every interval until stopped. t.Cleanup stops
// it if the test did not.
func watch(t *testing.T, what string, interval time.Duration, check func() error) *monitor {
	t.Helper()
	m := &monitor{what: what, stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			err := check()
			m.mu.Lock()
			m.polls++
			if err != nil {
				m.failures = append(m.failures, since(start).String()+": "+err.Error())
			}
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(m.halt)
	return m
}

func (m *monitor) halt() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// end stops polling and fails the test if any poll failed.
func (m *monitor) end(t *testing.T) {
	t.Helper()
	m.halt()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.failures) > 0 {
		shown := m.failures[:min(len(m.failures), 10)]
		t.Errorf("%s: %d of %d polls failed; the first:\n%s", m.what, len(m.failures), m.polls, joinLines(shown))
		return
	}
	t.Logf("%s: held in all %d polls", m.what, m.polls)
}

func joinLines(lines []string) string {
	s := ""
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s
}
