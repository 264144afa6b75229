package discovery

import "testing"

func TestQuorum(t *testing.T) {
	for _, tc := range []struct {
		expected, alive, size int
		has                   bool
	}{
		{expected: 1, alive: 1, size: 1, has: true},
		{expected: 2, alive: 1, size: 2, has: false},
		{expected: 3, alive: 2, size: 2, has: true},
		{expected: 3, alive: 1, size: 2, has: false},
		{expected: 4, alive: 3, size: 3, has: true},
		{expected: 4, alive: 2, size: 3, has: false}, // half is not a majority
		{expected: 5, alive: 3, size: 3, has: true},
		{expected: 5, alive: 2, size: 3, has: false},
		{expected: 6, alive: 3, size: 4, has: false},
	} {
		q := ComputeQuorum(tc.expected, tc.alive)
		if q.Size != tc.size || q.Has != tc.has || q.FailureTolerance != tc.alive-tc.size {
			t.Errorf("ComputeQuorum(%d, %d) = %+v, want size %d, has %v", tc.expected, tc.alive, q, tc.size, tc.has)
		}
	}
}
