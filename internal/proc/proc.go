// Package proc runs the child programs of tests, the demo and the
// benchmarks (etcd, kube-apiserver, CoreDNS, peerdns, …) so that none
// outlives its parent: each runs in its own process group, which stopping
// signals as a whole, and on Linux the kernel kills it if its parent dies.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Process is one child program with its output in a log file.
type Process struct {
	Name    string
	LogPath string // empty after StartTo
	Started time.Time

	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited and was reaped
	waitErr  error         // valid after done is closed
	stopping atomic.Bool   // Stop or Kill was called: an exit is expected

	stopOnce sync.Once
	stopErr  error
}

// Start runs path with args, appending stdout and stderr to logPath
// (appending, so a restarted server keeps its earlier log). The child gets
// the caller's environment minus what would point a client elsewhere than
// its flags say: KUBECONFIG and proxies.
func Start(name, path string, args []string, logPath string) (*Process, error) {
	return StartCommand(name, exec.Command(path, args...), logPath)
}

// StartCommand is Start for a command the caller has prepared (ip netns
// exec, a PID namespace of its own): its SysProcAttr is kept, with the
// process group and the parent-death signal added; a nil Env becomes
// Start's environment.
func StartCommand(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p, err := start(name, cmd, logFile)
	if err != nil {
		logFile.Close()
		return nil, err
	}
	p.LogPath = logPath
	go func() {
		<-p.done
		logFile.Close()
	}()
	return p, nil
}

// StartTo is Start with stdout and stderr going to out, for a person to
// watch; Tail then has nothing to return.
func StartTo(name, path string, args []string, out io.Writer) (*Process, error) {
	return start(name, exec.Command(path, args...), out)
}

func start(name string, cmd *exec.Cmd, out io.Writer) (*Process, error) {
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr(cmd.SysProcAttr)
	if cmd.Env == nil {
		cmd.Env = childEnv()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

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

// Pid is the process's id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and was reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended; valid once Done is closed.
func (p *Process) Err() error { return p.waitErr }

// ExitCode is the process's exit code, -1 when a signal ended it; valid
// once Done is closed.
func (p *Process) ExitCode() int { return p.cmd.ProcessState.ExitCode() }

// Signal sends sig to the process group, as a kubelet or an OOM kill
// would end it; from then on Stopping reports true.
func (p *Process) Signal(sig syscall.Signal) error {
	p.stopping.Store(true)
	if err := syscall.Kill(-p.Pid(), sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// Stopping reports whether Stop or Kill was called, so an exit is expected.
func (p *Process) Stopping() bool { return p.stopping.Load() }

// Stop asks the process group to terminate (SIGTERM), kills it (SIGKILL)
// after grace, and reports an error when something in the group is still
// alive afterwards. Later calls return the first call's result.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(grace) })
	return p.stopErr
}

func (p *Process) stop(grace time.Duration) error {
	p.stopping.Store(true)
	pgid := p.Pid() // Setpgid: the group id is the leader's pid
	if !p.Exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Kill the group even when the leader went quietly: nothing it forked
	// may outlive it.
	return p.Kill()
}

// Kill ends the process group at once with SIGKILL, as a crash would, and
// waits until it is gone.
func (p *Process) Kill() error {
	p.stopping.Store(true)
	pgid := p.Pid()
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", p.Name, pgid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for GroupAlive(pgid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("stop %s: process group %d still has members after SIGKILL", p.Name, pgid)
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
	}
	return nil
}

// GroupAlive reports whether any process is left in the process group.
func GroupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	if p.LogPath == "" {
		return ""
	}
	f, err := os.Open(p.LogPath)
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
