package discovery

// QuorumSize is the strict majority of n expected members: ⌊n/2⌋+1. Half of
// an even n is not a majority, so two halves of a split cluster can never
// both believe they hold quorum.
func QuorumSize(n int) int {
	if n <= 0 {
		return 1
	}
	return n/2 + 1
}

// Quorum is the cluster's standing as one agent sees it.
type Quorum struct {
	// Expected is N, the configured cluster size.
	Expected int
	// Size is QuorumSize(Expected).
	Size int
	// Alive counts members of the expected set in state alive, this agent
	// included. Suspect members do not count.
	Alive int
	// Has is Alive >= Size.
	Has bool
	// FailureTolerance is Alive - Size: how many more members may fail
	// before quorum is lost. Negative when quorum is already lost.
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
