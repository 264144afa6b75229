package discovery

import (
	"encoding/json"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// nameGuard detects another live process claiming this agent's own name: a
// force-deleted pod that still runs, two StatefulSets rendering one name.
//
// Detection: memberlist's conflict delegate fires wherever an alive message
// names a known live member at another address. On a claimant (the name is
// its own) the other address becomes a suspect claim; on a witness (any
// other member) both addresses are sent a duplicate-name message, because
// the witness drops the newcomer's messages and the two claimants may never
// hear of each other. Evidence is only a lead: each probe interval the
// claimant pings every claimed address with its own name, and memberlist
// answers a ping only when the name is its own. The name is duplicated
// while some other address answered within the suspect timeout; a claim
// without an answer for that long is dropped, so a pod restarted at a new
// address (its old process dead) is never flagged, and the survivor of a
// real duplicate recovers by itself once the other is gone.
type nameGuard struct {
	self    string
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	addr    string            // this agent's own gossip address
	claims  map[string]*claim // by address
	notices map[string]map[string]bool
}

type claim struct {
	since    time.Time // first evidence
	answered time.Time // last ack to a ping with this agent's name; zero: none
}

func newNameGuard(self string, timeout time.Duration) *nameGuard {
	return &nameGuard{
		self:    self,
		timeout: timeout,
		now:     time.Now,
		claims:  map[string]*claim{},
		notices: map[string]map[string]bool{},
	}
}

func (g *nameGuard) setAddr(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addr = addr
}

// claim records addresses said to claim this agent's name; its own address
// is ignored. It neither blocks nor calls memberlist.
func (g *nameGuard) claim(addrs ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range addrs {
		if a == g.addr || a == "" {
			continue
		}
		if _, ok := g.claims[a]; !ok {
			g.claims[a] = &claim{since: g.now()}
		}
	}
}

// witness queues a duplicate-name message for both claimants of name.
func (g *nameGuard) witness(name string, addrs ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	set := g.notices[name]
	if set == nil {
		set = map[string]bool{}
		g.notices[name] = set
	}
	for _, a := range addrs {
		set[a] = true
	}
}

// check sends the queued duplicate-name messages, pings every claimed
// address with this agent's name, and reports whether another process
// answered within the timeout. Called from the probe loop.
func (g *nameGuard) check(ml *memberlist.Memberlist) bool {
	g.mu.Lock()
	notices := g.notices
	g.notices = map[string]map[string]bool{}
	var addrs []string
	for a := range g.claims {
		if a != g.addr {
			addrs = append(addrs, a)
		}
	}
	g.mu.Unlock()

	for name, set := range notices {
		m := duplicateMsg{Name: name}
		for a := range set {
			m.Addrs = append(m.Addrs, a)
		}
		sort.Strings(m.Addrs)
		data, _ := json.Marshal(m)
		msg := append([]byte{msgDuplicate}, data...)
		for _, a := range m.Addrs {
			_ = ml.SendToAddress(memberlist.Address{Addr: a, Name: name}, msg)
		}
	}

	answered := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		udp, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			continue
		}
		wg.Go(func() {
			if _, err := ml.Ping(g.self, udp); err == nil {
				mu.Lock()
				answered[a] = g.now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	dup := false
	for a, c := range g.claims {
		if a == g.addr {
			delete(g.claims, a) // recorded before the address was known
			continue
		}
		if t, ok := answered[a]; ok {
			c.answered = t
		}
		last := c.answered
		if last.IsZero() {
			last = c.since
		}
		if now.Sub(last) > g.timeout {
			delete(g.claims, a)
			continue
		}
		if !c.answered.IsZero() {
			dup = true
		}
	}
	return dup
}
