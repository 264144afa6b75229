//go:build unix

package discovery

import (
	"errors"
	"os/exec"
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
// 1 or their subreaper. It gives up after a second.
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
