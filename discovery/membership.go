package discovery

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// MemberState is a member's state as this agent sees it.
type MemberState int

const (
	// StateUnknown is an expected name never seen in the cluster.
	StateUnknown MemberState = iota
	// StateAlive is a member that has answered this agent's own probes at
	// its current address within Timing.SuspectTimeout, as checked at the
	// end of each probe round: a silent member still counts for up to
	// SuspectTimeout + ProbeInterval + ProbeTimeout after its last ack. The
	// only state counted towards quorum.
	StateAlive
	// StateSuspect is a member that memberlist holds but that has not
	// answered this agent's own probes: not yet since it joined (it may be
	// known only from another member's gossip), or not for
	// Timing.SuspectTimeout. Not counted towards quorum.
	StateSuspect
	// StateDead is a member declared failed by memberlist's failure
	// detector (its own, or another member's through gossip) and not
	// answering this agent's own probes for Timing.SuspectTimeout. A member
	// memberlist declares dead while this agent's own acks from it are
	// fresh stays alive until they are not: see membership.leave.
	StateDead
	// StateLeft is a member that left gracefully (announced its leave
	// before going).
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

// Member is one admitted name: a voter, a name of the target set, or a
// learner this agent has seen.
type Member struct {
	Name    string      `json:"name"`
	Ordinal int         `json:"ordinal"`
	Address string      `json:"address,omitempty"`
	State   MemberState `json:"state"`
	// Voter is true when the name is in this agent's voting configuration
	// (committed or in flight): its vote counts towards quorum. False: a
	// learner.
	Voter bool `json:"voter"`
	// Epoch is the voting configuration epoch the member gossips (0: none
	// gossiped yet, or an agent that predates it); for this agent itself,
	// its own.
	Epoch uint64 `json:"epoch,omitempty"`
	// Since is when State last changed; zero for StateUnknown.
	Since time.Time `json:"since,omitzero"`
	// Version and Zone are what the member gossips about itself
	// (Config.Version, Config.Zone); empty if it sets none.
	Version string `json:"version,omitempty"`
	Zone    string `json:"zone,omitempty"`
	// LastContact is when this agent last got a direct ack from the member
	// (zero: never since it joined; always zero for this agent itself).
	LastContact time.Time `json:"last_contact,omitzero"`
	// RTTSeconds is the round-trip time of that ack.
	RTTSeconds float64 `json:"rtt_seconds,omitempty"`
}

// present reports whether memberlist holds the member (alive or suspect).
func (s MemberState) present() bool { return s == StateAlive || s == StateSuspect }

// view is one member's membership as it last reported it: a hash of the
// sorted names it counts as alive.
type view struct {
	Hash    uint64
	Members int
	// Proc identifies the sending process (random, drawn at its start) and
	// Seq numbers that process's views from 1: a view is only replaced by
	// a later one of the same process, whatever order gossip delivers them
	// in, or by one from another process of that name (a restart).
	Proc, Seq uint64
	// Sent is the sender's clock when it built the view. It orders views
	// only from agents that send no Proc (older versions).
	Sent int64
}

type memberEntry struct {
	Member
	leaving bool // announced a graceful leave from its own address
	// gone: memberlist declared the member dead while this agent's own
	// last ack from it was within the suspect timeout; it stays alive
	// until the acks stop (then dead) or memberlist takes it back.
	gone   bool
	view   view
	viewAt time.Time // when view arrived; zero if none
}

// membership is the agent's table of admitted members, keyed by name, never
// by address: a restarted pod keeps its name and gets a new IP. It holds an
// entry for every voter and every name of the target set, and one for each
// other admitted name once it has joined. memberlist's delegates write to
// it while holding memberlist's own locks, so no method calls back into
// memberlist or blocks.
type membership struct {
	self           string
	selfOrdinal    int
	selfVersion    string // label value of this agent's own version
	admit          ExpectedSet
	suspectTimeout time.Duration
	viewStale      time.Duration
	metrics        *metrics
	now            func() time.Time
	changed        chan struct{} // cap 1: something a watcher cares about changed
	probe          chan struct{} // cap 1: a member joined and waits for its first ack
	stepVoting     chan struct{} // cap 1: states changed; the voting loop steps at once

	mu         sync.Mutex
	members    map[string]*memberEntry
	voting     Voting
	target     []int // ordinals of the target set, ascending
	contacted  bool  // another member acked this agent's probe directly
	wasJoined  bool  // joined() has reported true: it stays true
	quorum     Quorum
	quorumInit bool
	myView     view
	duplicated bool // another live process claims self's name
	// unsized: the size source has not reported yet and no configuration
	// was saved; quorum is not held until it has.
	unsized bool
	// versionSeries: the members_by_version series last set, by version.
	versionSeries map[string]int
}

func newMembership(self, version string, admit ExpectedSet, v Voting, target []int, t Timing, m *metrics) *membership {
	id, _ := ParseIdentity(self)
	ms := &membership{
		self:           self,
		selfOrdinal:    id.Ordinal,
		selfVersion:    versionLabel(version),
		admit:          admit,
		suspectTimeout: t.SuspectTimeout,
		viewStale:      3 * t.ViewInterval,
		metrics:        m,
		now:            time.Now,
		changed:        make(chan struct{}, 1),
		probe:          make(chan struct{}, 1),
		stepVoting:     make(chan struct{}, 1),
		members:        map[string]*memberEntry{},
	}
	ms.mu.Lock()
	ms.ensureLocked(self)
	ms.setVotingLocked(v, target)
	ms.mu.Unlock()
	return ms
}

// ensureLocked returns the entry for name, creating it if the name is
// admitted; nil if it is not.
func (ms *membership) ensureLocked(name string) *memberEntry {
	if e, ok := ms.members[name]; ok {
		return e
	}
	o, ok := ms.admit.Contains(name)
	if !ok {
		return nil
	}
	e := &memberEntry{Member: Member{Name: name, Ordinal: o}}
	ms.members[name] = e
	return e
}

func (ms *membership) nameOf(ordinal int) string {
	return Identity{Set: ms.admit.Set, Ordinal: ordinal}.Name()
}

// setVoting installs a voting configuration and the target set's
// ordinals, with an entry for each of their names.
func (ms *membership) setVoting(v Voting, target []int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.setVotingLocked(v, target)
}

func (ms *membership) setVotingLocked(v Voting, target []int) {
	ms.voting, ms.target = v, target
	for _, o := range target {
		ms.ensureLocked(ms.nameOf(o))
	}
	for _, o := range v.Current.Voters {
		ms.ensureLocked(ms.nameOf(o))
	}
	if v.Next != nil {
		for _, o := range v.Next.Voters {
			ms.ensureLocked(ms.nameOf(o))
		}
	}
	ms.recomputeLocked()
}

// wantedLocked reports whether a member is a voter or in the target set:
// one the agent looks up and rejoins when it is missing.
func (ms *membership) wantedLocked(e *memberEntry) bool {
	_, inTarget := slices.BinarySearch(ms.target, e.Ordinal)
	return inTarget || ms.voting.IsVoter(e.Ordinal)
}

// wantedNames lists the names of the voters and of the target set, in
// ordinal order.
func (ms *membership) wantedNames() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []Member
	for _, e := range ms.members {
		if ms.wantedLocked(e) {
			out = append(out, e.Member)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ordinal < out[j].Ordinal })
	names := make([]string, len(out))
	for i, m := range out {
		names[i] = m.Name
	}
	return names
}

// observe is what the voting rules need from the table: since when each
// alive member has been alive (this agent since it started), and which
// members left gracefully.
func (ms *membership) observe() (aliveSince map[int]time.Time, left map[int]bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	aliveSince, left = map[int]time.Time{}, map[int]bool{}
	for _, e := range ms.members {
		switch e.State {
		case StateAlive:
			aliveSince[e.Ordinal] = e.Since
		case StateLeft:
			left[e.Ordinal] = true
		}
	}
	return aliveSince, left
}

// targetOrdinals is the target set as last installed.
func (ms *membership) targetOrdinals() []int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.target
}

// currentVoting is the voting configuration in force.
func (ms *membership) currentVoting() Voting {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.voting
}

// epochDisagreement reports whether a member this agent holds alive
// gossips a voting configuration epoch other than this agent's (members
// gossiping none are not compared).
func (ms *membership) epochDisagreement() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for name, e := range ms.members {
		if name != ms.self && e.State == StateAlive && e.Epoch != 0 && e.Epoch != ms.voting.Epoch() {
			return true
		}
	}
	return false
}

func (ms *membership) notify() {
	select {
	case ms.changed <- struct{}{}:
	default:
	}
	select {
	case ms.stepVoting <- struct{}{}:
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
// left, possibly at a new address). Another member is only suspect until
// this agent's own first direct ack: memberlist may know it from another
// member's gossip alone, which says nothing about whether it is reachable
// from here.
func (ms *membership) join(name, addr string, meta nodeMeta) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e := ms.ensureLocked(name)
	if e == nil {
		return
	}
	if e.gone && e.Address == addr {
		// Back at the address this agent kept acking (it refuted a death
		// it heard of second-hand): it never stopped counting here.
		e.gone = false
		e.Version, e.Zone, e.Epoch = meta.Version, meta.Zone, meta.Epoch
		ms.recomputeLocked()
		return
	}
	e.gone = false
	e.Address = addr
	e.Version, e.Zone, e.Epoch = meta.Version, meta.Zone, meta.Epoch
	e.LastContact, e.RTTSeconds = time.Time{}, 0
	e.leaving = false
	e.view, e.viewAt = view{}, time.Time{}
	state := StateSuspect
	if name == ms.self {
		state = StateAlive
	} else {
		select {
		case ms.probe <- struct{}{}:
		default:
		}
	}
	ms.setStateLocked(e, state, "join")
	ms.recomputeLocked()
}

// update records a changed address or metadata of a live member. A new
// address needs a new ack before the member counts again.
func (ms *membership) update(name, addr string, meta nodeMeta) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok {
		return
	}
	e.Version, e.Zone, e.Epoch = meta.Version, meta.Zone, meta.Epoch
	if e.Address != addr {
		e.Address = addr
		e.LastContact, e.RTTSeconds = time.Time{}, 0
		if name != ms.self && e.State == StateAlive {
			ms.setStateLocked(e, StateSuspect, "")
		}
	}
	ms.metrics.changes.WithLabelValues("update").Inc()
	ms.recomputeLocked()
}

// leave records memberlist's verdict that a member is gone: left if it
// announced its leave from the address held for it, or if it is this
// agent, dead otherwise. A
// member that did not announce its leave and answered this agent's own
// probe within the suspect timeout keeps counting until it has not:
// memberlist's verdict may come from another member's gossip (a healing
// minority that declared this side dead, another process's leave under
// the same name), and memberlist's dead message names the member only, not
// its address. checkSuspects then marks it dead, unless memberlist takes
// it back first (join at the same address).
func (ms *membership) leave(name string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok || e.State == StateDead || e.State == StateLeft {
		return
	}
	if !e.leaving && name != ms.self && e.State == StateAlive && ms.now().Sub(e.LastContact) <= ms.suspectTimeout {
		e.gone = true
		return
	}
	e.gone = false
	// memberlist reports this agent's own death only when it leaves
	// (Memberlist.Leave); a death others gossip about it is refuted.
	if e.leaving || name == ms.self {
		ms.setStateLocked(e, StateLeft, "leave")
	} else {
		ms.setStateLocked(e, StateDead, "fail")
	}
	ms.recomputeLocked()
}

// leaving records a member's leave announcement if addr is the address
// the table holds for it, and reports whether it did.
func (ms *membership) leaving(name, addr string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok || name == ms.self || !e.State.present() || e.Address != addr {
		return false
	}
	e.leaving = true
	if e.gone { // memberlist's leave arrived first
		e.gone = false
		ms.setStateLocked(e, StateLeft, "leave")
		ms.recomputeLocked()
	}
	return true
}

// ack records a direct ack from a member to one of this agent's probes
// sent to addr. It counts only if addr is the member's current address: a
// late ack from the address it had before memberlist re-admitted it
// elsewhere says nothing about the process now holding the name.
func (ms *membership) ack(name, addr string, rtt time.Duration) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok || name == ms.self || e.Address != addr {
		return
	}
	ms.metrics.memberRTT.WithLabelValues(strconv.Itoa(e.Ordinal)).Observe(rtt.Seconds())
	first := e.LastContact.IsZero()
	ms.contacted = true
	e.LastContact, e.RTTSeconds = ms.now(), rtt.Seconds()
	if e.State == StateSuspect {
		event := "recover"
		if first {
			event = "" // first contact since it joined, counted as the join
		}
		ms.setStateLocked(e, StateAlive, event)
		ms.recomputeLocked()
	}
}

// setDuplicated records whether another live process claims this agent's
// own name. While it does, this agent does not hold quorum.
func (ms *membership) setDuplicated(dup bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.duplicated == dup {
		return
	}
	ms.duplicated = dup
	ms.metrics.nameDuplicated.Set(b2f(dup))
	ms.recomputeLocked()
}

// setUnsized records whether the agent still waits for its size source's
// first report (see Quorum.Unsized).
func (ms *membership) setUnsized(u bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.unsized == u {
		return
	}
	ms.unsized = u
	ms.recomputeLocked()
}

func (ms *membership) isDuplicated() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.duplicated
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
		if now.Sub(e.LastContact) <= ms.suspectTimeout {
			continue
		}
		if e.gone {
			e.gone = false
			ms.setStateLocked(e, StateDead, "fail")
		} else {
			ms.setStateLocked(e, StateSuspect, "suspect")
		}
		changed = true
	}
	if changed {
		ms.recomputeLocked()
	} else {
		ms.updateDisagreementLocked()
	}
}

// replaces reports whether v is newer than held, a view from the same
// member.
func (v view) replaces(held view) bool {
	switch {
	case held == (view{}):
		return true
	case v.Proc != 0 && held.Proc != 0 && v.Proc == held.Proc:
		return v.Seq > held.Seq
	case v.Proc == 0 && held.Proc == 0: // an older agent: its clock
		return v.Sent >= held.Sent
	}
	return true // another process of that name
}

// setView stores a member's reported view if it is newer than the one held.
func (ms *membership) setView(name string, v view) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	if !ok || name == ms.self || !v.replaces(e.view) {
		return
	}
	e.view, e.viewAt = v, ms.now()
	ms.updateDisagreementLocked()
}

// recomputeLocked refreshes quorum, this agent's view and the gauges after
// a state change, and wakes the watchers.
func (ms *membership) recomputeLocked() {
	counts := map[MemberState]int{}
	versions := map[string]int{}
	h := fnv.New64a()
	names := make([]string, 0, len(ms.members))
	for name, e := range ms.members {
		counts[e.State]++
		up := 0.0
		if e.State == StateAlive {
			up = 1
			names = append(names, name)
			versions[versionLabel(e.Version)]++
		}
		ms.metrics.memberUp.WithLabelValues(strconv.Itoa(e.Ordinal)).Set(up)
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
	if _, ok := versions[ms.selfVersion]; !ok {
		versions[ms.selfVersion] = 0 // this agent's own version always has a series
	}
	// Set the new values, then drop the versions gone: a scrape in
	// between sees each series old or new, never the family empty.
	for v, n := range versions {
		ms.metrics.membersByVersion.WithLabelValues(v).Set(float64(n))
	}
	for v := range ms.versionSeries {
		if _, ok := versions[v]; !ok {
			ms.metrics.membersByVersion.DeleteLabelValues(v)
		}
	}
	ms.versionSeries = versions
	q := votingQuorum(ms.voting, ms.selfOrdinal, func(o int) bool {
		e := ms.members[ms.nameOf(o)]
		return e != nil && e.State == StateAlive
	})
	if ms.duplicated {
		q.NameDuplicated, q.Has = true, false
	}
	if ms.unsized {
		q.Unsized, q.Has = true, false
	}
	if ms.quorumInit && q.Has != ms.quorum.Has {
		ms.metrics.quorumTransitions.Inc()
	}
	ms.quorum, ms.quorumInit = q, true
	ms.metrics.hasQuorum.Set(b2f(q.Has))
	ms.metrics.quorumSize.Set(float64(q.Size))
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
		m := e.Member
		m.Voter = ms.voting.IsVoter(m.Ordinal)
		if m.Name == ms.self {
			m.Epoch = ms.voting.Epoch()
		}
		out = append(out, m)
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

// joined reports whether this agent has had a direct ack from another
// member since it started, or is the only voter of a target set that
// holds it alone (the size known). Once true it stays true.
func (ms *membership) joined() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	alone := len(ms.voting.Current.Voters) == 1 && ms.voting.Current.Has(ms.selfOrdinal) &&
		ms.voting.Next == nil && len(ms.target) <= 1 && !ms.unsized
	if ms.contacted || alone {
		ms.wasJoined = true
	}
	return ms.wasJoined
}

// present counts members memberlist holds (alive or suspect); the broadcast
// queue sizes its retransmits by it.
func (ms *membership) present() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n := 0
	for _, e := range ms.members {
		if e.State.present() {
			n++
		}
	}
	return n
}

// held reports whether memberlist holds the member at addr (alive or
// suspect, and not declared dead).
func (ms *membership) held(name, addr string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.members[name]
	return ok && e.State.present() && !e.gone && e.Address == addr
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

// versionLabel is the peeragent_members_by_version label of a version.
func versionLabel(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (q Quorum) String() string {
	s := fmt.Sprintf("%d of %d alive, quorum %d", q.Alive, q.Expected, q.Size)
	if q.NameDuplicated {
		s += ", but another live process claims this member's name"
	}
	if q.Unsized {
		s += ", but the size source has not reported the target size yet"
	}
	return s
}
