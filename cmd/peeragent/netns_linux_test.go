package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peerdns/peerdns/internal/testtools"
)

// netns is a network namespace the test created, with only lo, up. A
// process started in it through command sees resolvConf as
// /etc/resolv.conf: ip netns exec bind-mounts /etc/netns/<name>/*
// over /etc.
type netns struct {
	name string
}

// newNetns creates the namespace pa-<pid>-<tag> and its resolv.conf; both are removed when
// t ends, after the processes the test started in it (cleanups run last
// registered first). It needs root.
func newNetns(t *testing.T, tag, resolvConf string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		testtools.Missing(t, "a network namespace needs root")
	}
	ip := testtools.Path(t, "ip")
	n := &netns{name: fmt.Sprintf("pa-%d-%s", os.Getpid(), tag)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	etc := filepath.Join("/etc/netns", n.name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.RemoveAll(etc)
		_ = os.Remove(filepath.Dir(etc)) // only if no other namespace uses it
	})
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolvConf), 0o644); err != nil {
		t.Fatal(err)
	}
	run("netns", "add", n.name)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", n.name, err, out)
		}
	})
	run("-n", n.name, "link", "set", "lo", "up")
	return n
}

// command runs name with args in the namespace. ip netns exec execs the
// command in place: the process is the command itself.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// dial connects from inside the namespace: the socket is made on a thread
// moved into it, and the thread moved back. The thread must not exit
// instead: a child the test started from it with a parent-death signal
// (internal/proc) would be killed.
func (n *netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer home.Close()
		target, err := os.Open(filepath.Join("/run/netns", n.name))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns %s: %w", n.name, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and exits with this goroutine
		ch <- result{c, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// httpClient reaches HTTP servers inside the namespace.
func (n *netns) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: n.dial, DisableKeepAlives: true}}
}
