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

	"github.com/prometheus/client_golang/prometheus/testutil"
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
			return fmt.Errorf("grandchild %d still exists (kill: %w): %s", pid, err, state)
		}
		return nil
	})
}

// A hook that exits 0 while a process it started in the background still
// holds its output open has succeeded: it is counted as a success and the
// held output is logged as a warning, not a failure.
func TestHookLeavingItsOutputOpenSucceeds(t *testing.T) {
	h, logs := newTestHookRunner(t, hookScript(t, "echo configured; sleep 300 &"), 30*time.Second)
	h.deliver(context.Background(), hookInput{members: []string{"web-0"}})
	if got := testutil.ToFloat64(h.metrics.hookRuns.WithLabelValues("on_change", "success")); got != 1 {
		t.Errorf("successful runs = %v, want 1; log: %s", got, logs.String())
	}
	if got := testutil.ToFloat64(h.metrics.hookRuns.WithLabelValues("on_change", "failure")); got != 0 {
		t.Errorf("failed runs = %v, want 0; log: %s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "output open") {
		t.Errorf("no warning about the output held open: %s", logs.String())
	}
}

// runHooks runs h until the returned stop is called; stop waits for run to
// return.
func runHooks(h *hookRunner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// A hook running when the agent shuts down is given the shutdown grace to
// finish, and counted by how it ended.
func TestHookAtShutdown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rest    string // what the hook does once it has started
		grace   time.Duration
		success bool
	}{
		{name: "finishes within the grace", rest: "sleep 0.5", grace: 10 * time.Second, success: true},
		{name: "killed after the grace", rest: "sleep 300", grace: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			started, finished := filepath.Join(dir, "started"), filepath.Join(dir, "finished")
			h, logs := newTestHookRunner(t, hookScript(t, fmt.Sprintf("touch %q; %s; touch %q", started, tc.rest, finished)), 30*time.Second)
			h.shutdownGrace = tc.grace
			stop := runHooks(h)
			h.offer(hookInput{members: []string{"web-0"}})
			eventually(t, "the hook started", func() error {
				_, err := os.Stat(started)
				return err
			})
			begin := time.Now()
			stop()
			if d := time.Since(begin); d > tc.grace+5*time.Second {
				t.Errorf("shutdown took %s with a grace of %s", d, tc.grace)
			}
			_, err := os.Stat(finished)
			if ran := err == nil; ran != tc.success {
				t.Errorf("hook finished: %v, want %v; log: %s", ran, tc.success, logs.String())
			}
			result, other := "failure", "success"
			if tc.success {
				result, other = other, result
			}
			if got := testutil.ToFloat64(h.metrics.hookRuns.WithLabelValues("on_change", result)); got != 1 {
				t.Errorf("%s runs = %v, want 1; log: %s", result, got, logs.String())
			}
			if got := testutil.ToFloat64(h.metrics.hookRuns.WithLabelValues("on_change", other)); got != 0 {
				t.Errorf("%s runs = %v, want 0; log: %s", other, got, logs.String())
			}
		})
	}
}

// zombies lists this process's children that have exited and were not
// waited for.
func zombies(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == self {
			out = append(out, strings.TrimSpace(string(stat)))
		}
	}
	return out
}

// With the reaper (Config.ReapChildren), what a hook leaves outside its
// process group (setsid, a daemon) is re-parented to this process and
// reaped once it exits.
func TestHookOrphansAreReaped(t *testing.T) {
	dir := t.TempDir()
	left, done := filepath.Join(dir, "left"), filepath.Join(dir, "done")
	// The hook exits once the orphan has left its group, which is then
	// killed; the orphan exits a little later.
	h, logs := newTestHookRunner(t, hookScript(t, fmt.Sprintf(
		"setsid sh -c 'touch %q; sleep 0.2; touch %q' </dev/null >/dev/null 2>&1 &\nwhile [ ! -e %q ]; do sleep 0.01; done", left, done, left)), 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	reaperDone := make(chan struct{})
	go func() { reapChildren(ctx, h.log); close(reaperDone) }()
	defer func() { cancel(); <-reaperDone }()
	stop := runHooks(h)
	defer stop()
	h.offer(hookInput{members: []string{"web-0"}})
	eventually(t, "the orphan ran and was reaped", func() error {
		if _, err := os.Stat(done); err != nil {
			return err
		}
		if z := zombies(t); len(z) > 0 {
			return fmt.Errorf("zombies: %q", z)
		}
		return nil
	})
	if got := testutil.ToFloat64(h.metrics.hookRuns.WithLabelValues("on_change", "success")); got != 1 {
		t.Errorf("successful runs = %v, want 1; log: %s", got, logs.String())
	}
}
