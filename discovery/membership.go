package discovery

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"time"
)

// MemberState is a member's state as this agent sees it.
type MemberState int

const (
	// StateUnknown: an expected name never seen in the cluster.
	StateUnknown MemberState = iota
	// StateAlive: a member answering probes.
	StateAlive
	// StateSuspect: still a member, but it has not answered this agent's
	// probes for Timing.SuspectTimeout. Not counted towards quorum.
	StateSuspect
	// StateDead: declared failed by memberlist's failure detector.
	StateDead
	// StateLeft: left gracefully (announced its leave before going).
	StateLeft
)

func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

// MarshalText writes the state's name, so JSON shows "alive", not 1.
func (s MemberState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is one name of the expected set.
type Member struct {
	Name    string      `json:"name"`
	Ordinal int         `json:"ordinal"`
	Address string      `json:"address,omitempty"`
	State   MemberState `json:"state"`
	// Since is when State last changed; zero for StateUnknown.
	Since time.Time `json:"since,omitzero"`
}

// view is one member's membership as it last reported it: a hash of the
// sorted names it holds as alive or suspect.
type view struct {
	Hash    uint64
	Members int
	// Sent is the sender's clock when it built the view; a view is only
	// replaced by a newer one, whatever order gossip delivers them in.
	Sent int64
}

type memberEntry struct {
	Member
	lastAck time.Time
	leaving bool // announced a graceful leave
	view    view
	viewAt  time.Time // when view arrived; zero if none
}

// membership is the agent's table of the expected set, keyed by name, never
// by address: a restarted pod keeps its name and gets a new IP. memberlist's
// delegates write to it while holding memberlist's own locks, so no method
// calls back into memberlist or blocks.
type membership struct {
	self           string
	set            ExpectedSet
	suspectTimeout time.Duration
	viewStale      time.Duration
	metrics        *metrics
	now            func() time.Time
	changed        chan struct{} // cap 1: something a watcher cares about changed

	mu         sync.Mutex
	members    map[string]*memberEntry
	seenOther  bool
	quorum     Quorum
	quorumInit bool
	myView     view
}

func newMembership(self string, set ExpectedSet, t Timing, m *metrics) *membership {
	ms := &membership{
		self:           self,
		set:            set,
		suspectTimeout: t.SuspectTimeout,
		viewStale:      3 * t.ViewInterval,
		metrics:        m,
		now:            time.Now,
		changed:        make(chan struct{}, 1),
		members:        make(map[string]*memberEntry, set.N),
	}
	for _, name := range set.Names() {
		o, _ := set.Contains(name)
		ms.members[name] = &memberEntry{Member: Member{Name: name, Ordinal: o}}
	}
	ms.mu.Lock()
	ms.recomputeLocked()
	ms.mu.Unlock()
	return ms
}

func (ms *membership) notify() {
	select {
	case ms.changed <- struct{}{}:
	default:
	}
}

// setState moves a member to state and counts the change.
func (ms *membership) setStateLocked(e *memberEntry, state MemberState, event string) {
	e.State = state
	e.Since = ms.now()
	if event != "" {
		ms.metrics.changes.WithLabelValues(event).Inc()
	}
}

// join records a member memberlist reports alive (new, or back from dead or
// left, possibly at a new address).
func (ms *membership) join(name, addr string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok {
		return
	}
	e.Address = addr
	e.lastAck = ms.now()
	e.leaving = false
	e.view, e.viewAt = view{}, time.Time{}
	if e.State != StateAlive {
		ms.setStateLocked(e, StateAlive, "join")
	}
	if name != ms.self {
		ms.seenOther = true
	}
	ms.recomputeLocked()
}

// update records a changed address or metadata of a live member.
func (ms *membership) update(name, addr string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok {
		return
	}
	if e.Address != addr {
		e.Address = addr
		e.lastAck = ms.now()
	}
	ms.metrics.changes.WithLabelValues("update").Inc()
	ms.recomputeLocked()
}

// leave records memberlist's verdict that a member is gone: left if it
// announced its leave, dead otherwise.
func (ms *membership) leave(name string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok || e.State == StateDead || e.State == StateLeft {
		return
	}
	if e.leaving {
		ms.setStateLocked(e, StateLeft, "leave")
	} else {
		ms.setStateLocked(e, StateDead, "fail")
	}
	ms.recomputeLocked()
}

// leaving records that a member announced a graceful leave.
func (ms *membership) leaving(name string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if e, ok := ms.members[name]; ok {
		e.leaving = true
	}
}

// ack records a successful probe of a member.
func (ms *membership) ack(name string, rtt time.Duration) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok {
		return
	}
	ms.metrics.memberRTT.WithLabelValues(strconv.Itoa(e.Ordinal)).Observe(rtt.Seconds())
	e.lastAck = ms.now()
	if e.State == StateSuspect {
		ms.setStateLocked(e, StateAlive, "recover")
		ms.recomputeLocked()
	}
}

// checkSuspects marks alive members silent for longer than the suspect
// timeout as suspect.
func (ms *membership) checkSuspects() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	now := ms.now()
	changed := false
	for name, e := range ms.members {
		if name == ms.self || e.State != StateAlive {
			continue
		}
		if now.Sub(e.lastAck) > ms.suspectTimeout {
			ms.setStateLocked(e, StateSuspect, "suspect")
			changed = true
		}
	}
	if changed {
		ms.recomputeLocked()
	} else {
		ms.updateDisagreementLocked()
	}
}

// setView stores a member's reported view if it is newer than the one held.
func (ms *membership) setView(name string, v view) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok || name == ms.self || v.Sent < e.view.Sent {
		return
	}
	e.view, e.viewAt = v, ms.now()
	ms.updateDisagreementLocked()
}

// recomputeLocked refreshes quorum, this agent's view and the gauges after
// a state change, and wakes the watchers.
func (ms *membership) recomputeLocked() {
	counts := map[MemberState]int{}
	h := fnv.New64a()
	names := make([]string, 0, len(ms.members))
	for name, e := range ms.members {
		counts[e.State]++
		up := 0.0
		if e.State == StateAlive {
			up = 1
		}
		ms.metrics.memberUp.WithLabelValues(strconv.Itoa(e.Ordinal)).Set(up)
		if e.State == StateAlive || e.State == StateSuspect {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
	}
	ms.myView = view{Hash: h.Sum64(), Members: len(names), Sent: ms.now().UnixNano()}
	for _, s := range []MemberState{StateAlive, StateSuspect, StateDead, StateLeft} {
		ms.metrics.members.WithLabelValues(s.String()).Set(float64(counts[s]))
	}
	q := ComputeQuorum(ms.set.N, counts[StateAlive])
	if ms.quorumInit && q.Has != ms.quorum.Has {
		ms.metrics.quorumTransitions.Inc()
	}
	ms.quorum, ms.quorumInit = q, true
	ms.metrics.hasQuorum.Set(b2f(q.Has))
	ms.metrics.failureTolerance.Set(float64(q.FailureTolerance))
	ms.updateDisagreementLocked()
	ms.notify()
}

// updateDisagreementLocked compares this agent's view with the fresh views
// of the members it holds alive.
func (ms *membership) updateDisagreementLocked() {
	now := ms.now()
	disagree := false
	for name, e := range ms.members {
		if name == ms.self || e.State != StateAlive || e.viewAt.IsZero() || now.Sub(e.viewAt) > ms.viewStale {
			continue
		}
		if e.view.Hash != ms.myView.Hash {
			disagree = true
			break
		}
	}
	ms.metrics.viewDisagreement.Set(b2f(disagree))
}

// snapshot returns the members in ordinal order.
func (ms *membership) snapshot() []Member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make([]Member, 0, len(ms.members))
	for _, e := range ms.members {
		out = append(out, e.Member)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ordinal < out[j].Ordinal })
	return out
}

func (ms *membership) currentQuorum() Quorum {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.quorum
}

func (ms *membership) currentView() view {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.myView
}

func (ms *membership) joined() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.seenOther || ms.set.N == 1
}

// present counts members memberlist holds (alive or suspect); the broadcast
// queue sizes its retransmits by it.
func (ms *membership) present() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n := 0
	for _, e := range ms.members {
		if e.State == StateAlive || e.State == StateSuspect {
			n++
		}
	}
	return n
}

// stateOf returns a member's state and address.
func (ms *membership) stateOf(name string) (MemberState, string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if e, ok := ms.members[name]; ok {
		return e.State, e.Address
	}
	return StateUnknown, ""
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (q Quorum) String() string {
	return fmt.Sprintf("%d of %d alive, quorum %d", q.Alive, q.Expected, q.Size)
}
