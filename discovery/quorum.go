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
// majority of the expected set is alive: answered this agent's own probes
// recently enough (see StateAlive). It does not mean those members see each other, nor that
// no other agent believes the same about an overlapping majority.
type Quorum struct {
	// Expected is N, the configured cluster size.
	Expected int
	// Size is QuorumSize(Expected).
	Size int
	// Alive counts members of the expected set in state alive (see
	// StateAlive), this agent included. Suspect
	// members, and members never acked, do not count.
	Alive int
	// Has is Alive >= Size, and false whatever Alive is while
	// NameDuplicated.
	Has bool
	// NameDuplicated is true while another live process claims this
	// agent's own name (see Agent.Ready).
	NameDuplicated bool
	// FailureTolerance is Alive - Size: how many more members may fail
	// before quorum is lost. Negative when too few are alive; it counts
	// members only and ignores NameDuplicated.
	FailureTolerance int
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
