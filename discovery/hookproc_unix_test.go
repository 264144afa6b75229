//go:build unix

package discovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A hook that times out is killed with everything it started, and what it
// started is reaped, not left a zombie.
func TestHookTimeoutKillsItsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	h, logs := newTestHookRunner(t, hookScript(t, fmt.Sprintf("sleep 300 & echo $! > %q; sleep 300", pidFile)), 300*time.Millisecond)
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.deliver(context.Background(), hookInput{members: []string{"web-0"}})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("deliver took %s, want about the 300ms timeout", d)
	}
	if !strings.Contains(logs.String(), "after 300ms") {
		t.Errorf("timeout not logged: %s", logs.String())
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the grandchild is gone", func() error {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			state, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return fmt.Errorf("grandchild %d still exists (kill: %v): %s", pid, err, state)
		}
		return nil
	})
}
