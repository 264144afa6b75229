package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is one child program (etcd, kube-apiserver, ...) with its output
// in a log file. It runs in its own process group so that a stop reaches
// anything it forked, and it dies with the test binary (see sysProcAttr).
type process struct {
	name     string
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited and was reaped
	waitErr  error         // valid after done is closed
	stopping atomic.Bool   // stop was called: an exit is expected
}

// startProcess starts path with args, appending stdout and stderr to
// logPath (appending, so a restarted API server keeps its earlier log).
func startProcess(name, path string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	// Children must not inherit the caller's kubeconfig or proxies: the
	// control plane is reached on loopback with explicit flags only.
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// childEnv is the environment of every child: the caller's, minus what
// would point a client elsewhere than the flags say.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process group to terminate (SIGTERM), kills it (SIGKILL)
// after grace, and reports an error when something in the group is still
// alive afterwards.
func (p *process) stop(grace time.Duration) error {
	p.stopping.Store(true)
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Kill the group even when the leader went quietly: nothing it forked
	// may outlive it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", p.name, pgid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("stop %s: process group %d still has members after SIGKILL", p.name, pgid)
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
	}
	return nil
}

// groupAlive reports whether any process is left in the process group.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// errAddressInUse is wrapped by exitError when the process could not bind
// its port.
var errAddressInUse = errors.New("address already in use")

// exitError describes how the process ended, with the end of its log.
func (p *process) exitError() error {
	tail := p.tail(30)
	err := fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, tail)
	if strings.Contains(tail, errAddressInUse.Error()) {
		err = fmt.Errorf("%w: %w", errAddressInUse, err)
	}
	return err
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const maxTail = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		_, _ = f.Seek(-maxTail, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitReady polls check every 100ms until it succeeds, the process exits,
// timeout passes or ctx ends. Errors name the process and carry the end of
// its log, since that is where the reason is.
func waitReady(ctx context.Context, p *process, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		last = check(attempt)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for %s: %w", p.name, ctx.Err())
			}
			return fmt.Errorf("%s not ready within %v: %w; last lines of %s:\n%s",
				p.name, timeout, last, p.logPath, p.tail(30))
		case <-tick.C:
		}
	}
}
