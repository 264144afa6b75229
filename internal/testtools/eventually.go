package testtools

import (
	"testing"
	"time"
)

// Eventually polls check until it returns nil and returns how long that
// took, or fails the test with check's last error once limit has passed.
// Tests wait for the system this way, never with a sleep of a guessed
// length.
func Eventually(t testing.TB, what string, limit time.Duration, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: still failing after %v: %v", what, limit, err)
		}
		time.Sleep(25 * time.Millisecond) // polling interval
	}
}
