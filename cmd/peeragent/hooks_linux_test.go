package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/peerdns/peerdns/internal/testtools"
)

// zombiesOf lists the children of pid that have exited and were not
// waited for, as /proc shows them.
func zombiesOf(pid int) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	parent := strconv.Itoa(pid)
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
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == parent {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out, nil
}

// As PID 1, which it is in its container, peeragent is the parent of every
// process a hook leaves outside the hook's process group (setsid, a
// daemon), and must reap each once it exits: none stays a zombie.
func TestAsPID1HookOrphansAreReaped(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	if os.Geteuid() != 0 {
		testtools.Missing(t, "a PID namespace needs root")
	}
	dir := t.TempDir()
	left, done := filepath.Join(dir, "left"), filepath.Join(dir, "done")
	hook := filepath.Join(dir, "hook")
	// The hook exits once the orphan has left its group, which is then
	// killed; the orphan exits a little later.
	if err := os.WriteFile(hook, fmt.Appendf(nil, "#!/bin/sh\nsetsid sh -c 'touch %q; sleep 0.2; touch %q' </dev/null >/dev/null 2>&1 &\nwhile [ ! -e %q ]; do sleep 0.01; done\n", left, done, left), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary,
		"--node.name=web-0",
		"--cluster.expected=1",
		fmt.Sprintf("--gossip.listen-address=127.0.0.1:%d", freePort(t)),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)),
		"--gossip.profile=local",
		"--on-change="+hook,
		"--log.level=debug",
	)
	// PID 1 of a PID namespace of its own, as in a container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	p := startCommand(t, "web-0", cmd)
	eventually(t, "the hook ran", wantMetric(p, `peeragent_hook_runs_total{hook="on_change",result="success"}`, 1))
	eventually(t, "what the hook left ran and was reaped", func() error {
		if _, err := os.Stat(done); err != nil {
			return err
		}
		z, err := zombiesOf(p.Pid())
		if err != nil {
			return err
		}
		if len(z) > 0 {
			return fmt.Errorf("zombies of the agent: %q", z)
		}
		return nil
	})
	if code := p.signal(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}
