//go:build unix

package discovery

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// startInGroup makes cmd the leader of a new process group, and its
// cancellation (the timeout) kill the whole group, not only the leader.
func startInGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// endGroup kills every process left in the group pgid and reaps those that
// are this process's children by now: re-parented to it because it is PID
// 1 or their subreaper. It gives up after a second. Processes that left the
// group are not touched.
func endGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if pid > 0 {
			continue
		}
		if errors.Is(err, syscall.ECHILD) && errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			return // none of the group is left, nor waiting to be reaped
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reapChildren makes this process a child subreaper (Linux) and, until ctx
// is done, waits for every child that has exited, at each SIGCHLD, when no
// OnChange run is in progress (childWait). It takes any child's exit
// status: run it only in a process where nothing else waits for its own
// children (Config.ReapChildren).
func reapChildren(ctx context.Context, log *slog.Logger) {
	if err := becomeSubreaper(); err != nil {
		log.Warn("cannot become a child subreaper; orphans of the hooks are re-parented to init", "err", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		// At once too: children may have exited before Notify.
		if n := reapExited(); n > 0 {
			log.Debug("reaped exited child processes", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
	}
}

// reapExited waits for every child that has exited by now, and returns how
// many there were.
func reapExited() int {
	childWait.Lock()
	defer childWait.Unlock()
	n := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 { // none has exited (0), or no child at all (ECHILD)
			return n
		}
		n++
	}
}
