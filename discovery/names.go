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
//
// A witness also says which address it holds for the name. A claimant told
// that a witness holds another address is displaced: on a graceful stop it
// does not leave through memberlist, whose leave names the member only and
// would take out the claimant the others hold (see Agent.leave).
type nameGuard struct {
	self    string
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	addr    string            // this agent's own gossip address
	claims  map[string]*claim // by address
	notices map[string]*notice
	// displaced: a witness holds another address for this agent's name;
	// cleared when the last claim is dropped.
	displaced bool
}

// notice is a pending duplicate-name message about one name.
type notice struct {
	held  string // the address the witness holds for the name
	addrs map[string]bool
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
		notices: map[string]*notice{},
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

// witness queues a duplicate-name message for both claimants of name: held
// is the address this agent holds for it, other the one also claiming it.
func (g *nameGuard) witness(name, held, other string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.notices[name]
	if n == nil {
		n = &notice{addrs: map[string]bool{}}
		g.notices[name] = n
	}
	n.held = held
	n.addrs[held], n.addrs[other] = true, true
}

// heldAt records a witness's word that it holds addr for this agent's
// name. It neither blocks nor calls memberlist.
func (g *nameGuard) heldAt(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if addr != "" && addr != g.addr {
		g.displaced = true
	}
}

// isDisplaced reports whether a witness holds another address for this
// agent's name, and some claim is still standing.
func (g *nameGuard) isDisplaced() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.displaced && len(g.claims) > 0
}

// check sends the queued duplicate-name messages, pings every claimed
// address with this agent's name, and reports whether another process
// answered within the timeout. Called from the probe loop.
func (g *nameGuard) check(ml *memberlist.Memberlist) bool {
	g.mu.Lock()
	notices := g.notices
	g.notices = map[string]*notice{}
	var addrs []string
	for a := range g.claims {
		if a != g.addr {
			addrs = append(addrs, a)
		}
	}
	g.mu.Unlock()

	for name, n := range notices {
		m := duplicateMsg{Name: name, Held: n.held}
		for a := range n.addrs {
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
	if len(g.claims) == 0 {
		g.displaced = false
	}
	return dup
}
