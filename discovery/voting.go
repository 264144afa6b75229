package discovery

import (
	"fmt"
	"slices"
	"time"
)

// VotingConfig is the set of ordinals whose votes count towards quorum,
// numbered by an epoch that grows by one with each committed change.
// Admission is not voting: any member of the StatefulSet within
// Config.MaxMembers gossips and is probed, but only voters count.
type VotingConfig struct {
	Epoch uint64 `json:"epoch"`
	// Voters are ordinals, ascending, without duplicates.
	Voters []int `json:"voters"`
}

// Has reports whether ordinal o is a voter.
func (c VotingConfig) Has(o int) bool {
	_, ok := slices.BinarySearch(c.Voters, o)
	return ok
}

func (c VotingConfig) String() string {
	return fmt.Sprintf("epoch %d voters %v", c.Epoch, c.Voters)
}

// Voting is the voting configuration one agent holds: the committed one
// and, while the set shrinks, the one it moves to.
type Voting struct {
	Current VotingConfig `json:"current"`
	// Next is the configuration a shrink moves to, with epoch
	// Current.Epoch+1. While it is set the change is in flight and quorum
	// needs a majority of Current and a majority of Next (joint
	// consensus). nil: no change in flight.
	Next *VotingConfig `json:"next,omitempty"`
}

// IsVoter reports whether ordinal o counts in this agent's quorum: it is
// in Current or in Next.
func (v Voting) IsVoter(o int) bool {
	return v.Current.Has(o) || (v.Next != nil && v.Next.Has(o))
}

func (v Voting) equal(o Voting) bool {
	if v.Current.Epoch != o.Current.Epoch || !slices.Equal(v.Current.Voters, o.Current.Voters) || (v.Next == nil) != (o.Next == nil) {
		return false
	}
	return v.Next == nil || (v.Next.Epoch == o.Next.Epoch && slices.Equal(v.Next.Voters, o.Next.Voters))
}

// Epoch is the epoch of the committed configuration.
func (v Voting) Epoch() uint64 { return v.Current.Epoch }

// VoteCount is one voting configuration's tally.
type VoteCount struct {
	// Voters is the configuration's size, Size its strict majority.
	Voters, Size int
	// Alive counts its voters the caller holds alive.
	Alive int
}

// Has reports whether a majority of the configuration is alive.
func (c VoteCount) Has() bool { return c.Alive >= c.Size }

func tally(c VotingConfig, alive func(int) bool) VoteCount {
	n := VoteCount{Voters: len(c.Voters), Size: QuorumSize(len(c.Voters))}
	for _, o := range c.Voters {
		if alive(o) {
			n.Alive++
		}
	}
	return n
}

// Tally counts the alive voters of Current and, while a change is in
// flight, of Next; has is true only when each has a majority alive.
func (v Voting) Tally(alive func(ordinal int) bool) (cur VoteCount, next *VoteCount, has bool) {
	cur = tally(v.Current, alive)
	has = cur.Has()
	if v.Next != nil {
		n := tally(*v.Next, alive)
		next = &n
		has = has && n.Has()
	}
	return cur, next, has
}

// VotingRules are the parameters of a transition.
type VotingRules struct {
	// Start is the StatefulSet's first ordinal.
	Start int
	// Floor is the smallest target: a source asking for fewer members is
	// raised to it (Config.Expected, the bootstrap size).
	Floor int
	// Stabilization is how long an ordinal must have been alive, without
	// interruption, before it becomes a voter.
	Stabilization time.Duration
}

// Observation is what one agent sees when it steps its voting
// configuration.
type Observation struct {
	Now time.Time
	// Target is the cluster size the size source asks for, before the
	// floor: the target set is Start … Start+max(Target, Floor)-1.
	Target int
	// AliveSince holds, for each ordinal this agent holds alive, when it
	// last became alive.
	AliveSince map[int]time.Time
	// Gone holds the ordinals confirmed gone: they left gracefully, or the
	// size source says their pod no longer exists.
	Gone map[int]bool
}

// Bootstrap is the configuration an agent without a saved one holds until
// its size source first reports: epoch 0, the floor's ordinals.
func (r VotingRules) Bootstrap() Voting {
	return Voting{Current: VotingConfig{Voters: r.span(r.Floor)}}
}

// Initial is the configuration such an agent takes when the source first
// reports target: epoch 0, the whole target set (raised to the floor),
// without waiting for stabilization. A cluster installed at N starts with N
// voters, and an agent restarted without its saved configuration resumes
// the size the others grew to rather than the floor.
func (r VotingRules) Initial(target int) Voting {
	return Voting{Current: VotingConfig{Voters: r.span(max(target, r.Floor))}}
}

func (r VotingRules) span(n int) []int {
	out := make([]int, 0, n)
	for o := r.Start; o < r.Start+n; o++ {
		out = append(out, o)
	}
	return out
}

// maxRemovals is how many voters one shrink may remove from a
// configuration of n: a minority, (n-1)/2, so the voters kept are a
// majority of the old configuration and hold the joint quorum by
// themselves while the removed ones go; and one from a configuration of
// two, whose survivor has no quorum until the removed one is confirmed
// gone.
func maxRemovals(n int) int {
	if n == 2 {
		return 1
	}
	return (n - 1) / 2
}

// Step applies the transition rules once to v and returns the result; v
// is not modified.
//
// Shrink: the voters outside the target set, highest ordinal first, at
// most maxRemovals of the committed configuration, form Next; the change
// commits (Current becomes Next, the epoch grows by one) only once every
// removed ordinal is confirmed gone. A change in flight is replaced when
// the target moves, and dropped when no voter is to be removed any more.
//
// Growth, only with no shrink to make: an ordinal of the target set that
// is not a voter (a learner) becomes one after it has been alive for
// Stabilization; one ordinal per epoch, lowest first, so two agents that
// have promoted one ordinal apart still have intersecting majorities.
func (r VotingRules) Step(v Voting, o Observation) Voting {
	target := r.span(max(o.Target, r.Floor))
	cur := v.Current
	var remove []int
	for i := len(cur.Voters) - 1; i >= 0; i-- {
		if _, in := slices.BinarySearch(target, cur.Voters[i]); !in {
			remove = append(remove, cur.Voters[i])
		}
	}
	if len(remove) > 0 {
		remove = remove[:min(len(remove), maxRemovals(len(cur.Voters)))]
		if len(remove) == 0 {
			return Voting{Current: cur}
		}
		next := VotingConfig{Epoch: cur.Epoch + 1}
		for _, x := range cur.Voters {
			if !slices.Contains(remove, x) {
				next.Voters = append(next.Voters, x)
			}
		}
		for _, x := range remove {
			if !o.Gone[x] {
				return Voting{Current: cur, Next: &next}
			}
		}
		return r.Step(Voting{Current: next}, o) // committed; maybe another step
	}
	for _, x := range target {
		if cur.Has(x) {
			continue
		}
		since, alive := o.AliveSince[x]
		if !alive || o.Gone[x] || o.Now.Sub(since) < r.Stabilization {
			continue
		}
		voters := slices.Clone(cur.Voters)
		voters = append(voters, x)
		slices.Sort(voters)
		cur = VotingConfig{Epoch: cur.Epoch + 1, Voters: voters}
	}
	return Voting{Current: cur}
}
