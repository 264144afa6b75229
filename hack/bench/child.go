package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a program the bench runs (peerdns, CoreDNS, a peeragent), with
// its output in a log file. It runs in its own process group, so a stop
// reaches whatever it forked, and the kernel kills it if the bench dies
// without stopping it.
type child struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed once the process has exited and was reaped
	waitErr error         // valid after done is closed

	stopOnce sync.Once
	stopErr  error
}

// children tracks every child started, so that one deferred call stops
// them all whatever happened.
type children struct {
	mu   sync.Mutex
	list []*child
}

// start runs path with args, appending its output to logPath.
func (cs *children) start(name, path string, args []string, logPath string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = childEnv()
	// Pdeathsig: Go does not end the threads it forks from unless a
	// goroutine exits locked to one, which this program never does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	cs.mu.Lock()
	cs.list = append(cs.list, c)
	cs.mu.Unlock()
	return c, nil
}

// stopAll stops every child still running, the last started first.
func (cs *children) stopAll() error {
	cs.mu.Lock()
	list := append([]*child(nil), cs.list...)
	cs.mu.Unlock()
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		errs = append(errs, list[i].stop(3*time.Second))
	}
	return errors.Join(errs...)
}

// childEnv is the bench's environment minus what would point a child at
// another cluster or through a proxy.
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

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process to be reaped. Later calls return the first result.
func (c *child) stop(grace time.Duration) error {
	c.stopOnce.Do(func() { c.stopErr = c.signalStop(grace) })
	return c.stopErr
}

func (c *child) signalStop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	pgid := -c.pid()
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", c.name, c.pid())
	}
}

// kill ends the process at once with SIGKILL, as a crash would.
func (c *child) kill() error {
	if err := syscall.Kill(-c.pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", c.name, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("kill %s (pid %d): still running", c.name, c.pid())
	}
}

// tail returns the last n lines of the child's log.
func (c *child) tail(n int) string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
