package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/proc"
)

// TestProcessStopKillsGroup starts a shell that ignores SIGTERM and has two
// children of its own: stop must kill all three.
func TestProcessStopKillsGroup(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	script := "trap '' TERM; sleep 300 & sleep 300 & touch " + ready + "; wait"
	p, err := proc.Start("stubborn", "/bin/sh", []string{"-c", script}, filepath.Join(dir, "stubborn.log"))
	if err != nil {
		t.Fatal(err)
	}
	waitForFile(t, ready)
	if err := p.Stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() || proc.GroupAlive(p.Pid()) {
		t.Errorf("process group %d survived stop", p.Pid())
	}
	if kids := childrenOf(t, os.Getpid()); len(kids) > 0 {
		t.Errorf("children left: %v", kids)
	}
}

// TestChildDiesWithParent kills (SIGKILL, no cleanup) a copy of the test
// binary that started a child: the kernel must kill the child too.
func TestChildDiesWithParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux-only")
	}
	if os.Getenv("PEERDNS_CONTROLPLANE_CRASH_HELPER") == "1" {
		p, err := proc.Start("sleep", "/bin/sleep", []string{"300"}, filepath.Join(t.TempDir(), "sleep.log"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(p.Pid())
		select {} // until killed
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithParent$")
	helper.Env = append(os.Environ(), "PEERDNS_CONTROLPLANE_CRASH_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper printed %q", line)
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("child %d outlived its killed parent", child)
		}
		time.Sleep(10 * time.Millisecond) // polling the kernel; there is no event to wait on
	}
}

// alive reports whether pid runs: it exists and is not a zombie awaiting
// its new parent's wait.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

func TestStartMissingTool(t *testing.T) {
	_, err := Start(t.Context(), Options{ToolsBin: t.TempDir()})
	if err == nil {
		t.Fatal("Start without tools succeeded")
	}
	for _, want := range []string{"etcd", "kube-apiserver", "make controlplane"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !errors.Is(err, ErrToolMissing) {
		t.Errorf("error %q is not ErrToolMissing", err)
	}
}

// TestStartFailureCleansUp runs a stand-in etcd that fails at once: Start
// must report its output and leave no process and no directory behind.
func TestStartFailureCleansUp(t *testing.T) {
	bin := t.TempDir()
	for name, script := range map[string]string{
		toolEtcd:      "#!/bin/sh\necho 'etcd stand-in: cannot start' >&2\nexit 3\n",
		toolAPIServer: "#!/bin/sh\nexit 1\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Start makes its directory
	_, err := Start(t.Context(), Options{ToolsBin: bin})
	if err == nil {
		t.Fatal("Start with a failing etcd succeeded")
	}
	if !strings.Contains(err.Error(), "etcd stand-in: cannot start") {
		t.Errorf("error does not carry etcd's output: %v", err)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) > 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}
	if kids := childrenOf(t, os.Getpid()); len(kids) > 0 {
		t.Errorf("children left: %v", kids)
	}
}

// TestStartRetriesTakenPort runs a stand-in etcd that always finds its port
// taken: Start must try three times, then fail saying why.
func TestStartRetriesTakenPort(t *testing.T) {
	bin := t.TempDir()
	count := filepath.Join(t.TempDir(), "starts")
	etcd := "#!/bin/sh\necho start >>" + count + "\necho 'listen tcp 127.0.0.1:1: bind: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, toolEtcd), []byte(etcd), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, toolAPIServer), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{ToolsBin: bin})
	if !errors.Is(err, errAddressInUse) {
		t.Fatalf("Start: %v; want address already in use", err)
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "start"); n != 3 {
		t.Errorf("etcd started %d times; want 3", n)
	}
}

// waitForFile polls for path, which a child process creates.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond) // polling the file system; there is no event to wait on
	}
}
