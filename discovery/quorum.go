package discovery

// QuorumSize is the strict majority of n expected members: ⌊n/2⌋+1. Half of
// an even n is not a majority, so when the network splits the members into
// groups that cannot reach each other at all, at most one group holds
// quorum once every agent has stopped counting the members across the
// split (up to Timing.SuspectTimeout + ProbeInterval + ProbeTimeout after
// it; until then both groups may). That is all it rules out: when reachability is not transitive
// (web-0 cannot reach web-2, both reach web-1), web-0 and web-2 each count
// web-1 and themselves and both hold quorum. Quorum is each agent's own
// view, not a lease or a consensus.
func QuorumSize(n int) int {
	if n <= 0 {
		return 1
	}
	return n/2 + 1
}

// Quorum is the cluster's standing as one agent sees it: Has means a
// majority of the voting configuration (of both, while a change is in
// flight) is alive: answered this agent's own probes recently enough (see
// StateAlive). It does not mean those members see each other, nor that no
// other agent believes the same about an overlapping majority.
type Quorum struct {
	// Expected is the number of voters in the committed voting
	// configuration.
	Expected int
	// Size is QuorumSize(Expected).
	Size int
	// Alive counts the committed configuration's voters in state alive
	// (see StateAlive), this agent included if it is one. Suspect members,
	// members never acked and learners do not count.
	Alive int
	// Has is Alive >= Size (and, while Joint, Next.Has()), and false
	// whatever Alive is while NameDuplicated or Unsized.
	Has bool
	// NameDuplicated is true while another live process claims this
	// agent's own name (see Agent.Ready).
	NameDuplicated bool
	// FailureTolerance is Alive - Size: how many more members may fail
	// before quorum is lost. Negative when too few are alive; it counts
	// members only and ignores NameDuplicated. While Joint, the smaller of
	// both configurations' tolerances.
	FailureTolerance int
	// Voter is true when this agent is in the voting configuration
	// (committed or in flight), false for a learner: it gossips and is
	// probed but does not count.
	Voter bool
	// Epoch is the committed voting configuration's epoch.
	Epoch uint64
	// Unsized is true while the size source has not reported yet and no
	// saved configuration was loaded: Has is then false, since the
	// bootstrap configuration (the floor) may be far smaller than the
	// cluster.
	Unsized bool
	// Joint is true while a shrink is in flight; Next is then the tally of
	// the configuration it moves to.
	Joint bool
	Next  VoteCount
}

// ComputeQuorum derives the quorum standing from the number of alive members.
func ComputeQuorum(expected, alive int) Quorum {
	size := QuorumSize(expected)
	return Quorum{
		Expected:         expected,
		Size:             size,
		Alive:            alive,
		Has:              alive >= size,
		FailureTolerance: alive - size,
	}
}

// votingQuorum is the quorum standing under v, with alive telling which
// ordinals this agent holds alive and self this agent's ordinal.
func votingQuorum(v Voting, self int, alive func(int) bool) Quorum {
	cur, next, has := v.Tally(alive)
	q := ComputeQuorum(cur.Voters, cur.Alive)
	q.Has = has
	q.Voter = v.IsVoter(self)
	q.Epoch = v.Epoch()
	if next != nil {
		q.Joint, q.Next = true, *next
		q.FailureTolerance = min(q.FailureTolerance, next.Alive-next.Size)
	}
	return q
}
