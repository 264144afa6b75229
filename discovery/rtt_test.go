package discovery

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// slowSend is a transport whose packet sends return only slowSendDelay after
// the packet left, as a send on a busy host may: the ack can arrive before
// the send returns.
type slowSend struct{ memberlist.NodeAwareTransport }

const slowSendDelay = 20 * time.Millisecond

func (s *slowSend) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	ts, err := s.NodeAwareTransport.WriteToAddress(b, addr)
	time.Sleep(slowSendDelay) // the fault under test: a slow send, not a wait
	return ts, err
}

// A round trip is never negative, even when the ack arrives before the send
// returns. (memberlist's Ping reads its clock after the send returns.)
func TestRTTNeverNegative(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 2)
	slow := func(cfg *Config) {
		cfg.wrapTransport = func(nt memberlist.NodeAwareTransport) memberlist.NodeAwareTransport { return &slowSend{nt} }
	}
	a := c.start("web-0", slow)
	c.start("web-1", slow)
	eventually(t, "converge", wantStates(allAlive("web-0", "web-1"), a))

	// Every ack recorded, from the agent's own pings and memberlist's probes.
	const acks = 10
	seen := map[time.Time]float64{}
	eventually(t, fmt.Sprintf("%d acks from web-1", acks), func() error {
		for _, m := range a.table.snapshot() {
			if m.Name == "web-1" && !m.LastContact.IsZero() {
				seen[m.LastContact] = m.RTTSeconds
			}
		}
		if len(seen) < acks {
			return fmt.Errorf("%d acks", len(seen))
		}
		return nil
	})
	for at, rtt := range seen {
		if rtt < 0 {
			t.Errorf("ack at %v: round trip %vs, negative", at.Format(time.StampMicro), rtt)
		}
	}
}
