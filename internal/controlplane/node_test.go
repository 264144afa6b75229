package controlplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peerdns/peerdns/internal/testtools"
)

// requireNode skips the test with -short, and where this machine cannot
// run a node (NodeSupport) skips it, or fails it under
// PEERDNS_REQUIRE_TOOLS=1 (`make test`).
func requireNode(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real node; skipped with -short")
	}
	if err := NodeSupport(); err != nil {
		testtools.Missing(t, "%v", err)
	}
}

// TestNode runs a pod on a real node and checks that stopping the control
// plane leaves nothing of the node behind.
func TestNode(t *testing.T) {
	requireNode(t)
	begin := time.Now()
	cp := StartT(t, Options{Node: true})
	t.Logf("control plane with a node started in %v", time.Since(begin).Round(time.Millisecond))
	info, ok := cp.Node()
	if !ok {
		t.Fatal("Node() = false with Options.Node")
	}
	admin := newClient(t, cp.AdminConfig())
	ctx := t.Context()

	t.Run("bare pod runs with an address from the pod range", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "web", Image: SeedWebImage, ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 80}},
				}},
			},
		}
		if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var ip string
		took := testtools.Eventually(t, "pod hello Running", 60*time.Second, func() error {
			p, err := admin.CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return fmt.Errorf("phase %s, IP %q, conditions %+v", p.Status.Phase, p.Status.PodIP, p.Status.ContainerStatuses)
			}
			ip = p.Status.PodIP
			return nil
		})
		t.Logf("pod Running with IP %s %v after it was created", ip, took.Round(time.Millisecond))
		prefix := netip.MustParsePrefix(info.PodCIDR)
		if addr, err := netip.ParseAddr(ip); err != nil || !prefix.Contains(addr) {
			t.Errorf("pod IP %s not in the node's pod range %s", ip, prefix)
		}
		// The pod serves its hostname; this machine reaches it through the node.
		testtools.Eventually(t, "GET http://"+ip, 10*time.Second, func() error {
			body, err := httpGet(ctx, "http://"+ip+"/")
			if err != nil {
				return err
			}
			if body != "hello\n" {
				return fmt.Errorf("body %q, want %q", body, "hello\n")
			}
			return nil
		})
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		netns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", info.InitPID))
		mntns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", info.InitPID))
		containers, err := cp.node.ctr("containers", "ls", "-q")
		if err != nil {
			t.Fatal(err)
		}
		ids := strings.Fields(containers)
		if len(ids) == 0 {
			t.Fatal("no containers before stop")
		}
		if len(containerCgroups(ids)) == 0 {
			t.Fatalf("no cgroups found for containers %v: where does runc put them?", ids)
		}
		// kube-proxy's rules are in the node's network namespace, none in
		// this one (checked after Stop below).
		tables, err := cmdOutput("nsenter", "-t", strconv.Itoa(info.InitPID), "-n", "nft", "list", "tables")
		if err != nil || !strings.Contains(tables, "kube-proxy") {
			t.Errorf("no kube-proxy nftables table in the node's network namespace: %q (err %v)", tables, err)
		}
		dir := cp.Dir()
		if err := cp.Stop(); err != nil {
			t.Fatal(err)
		}
		if pids := processesInNetns(netns); len(pids) > 0 {
			t.Errorf("processes left in the node's network namespace: %v", pids)
		}
		if pids := processesInMntns(mntns); len(pids) > 0 {
			t.Errorf("processes left in the node's mount namespace: %v", pids)
		}
		if left := containerCgroups(ids); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
		if out, err := cmdOutput("ip", "-o", "link", "show"); err != nil || strings.Contains(out, info.Link) {
			t.Errorf("link %s left (or ip failed: %v)", info.Link, err)
		}
		if out, err := cmdOutput("ip", "route", "show", info.PodCIDR); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("route to %s left: %q (err %v)", info.PodCIDR, out, err)
		}
		for _, c := range [][]string{{"nft", "list", "ruleset"}, {"iptables-save"}} {
			out, err := cmdOutput(c...)
			if err != nil {
				t.Errorf("%s: %v", c[0], err)
				continue
			}
			for _, s := range []string{info.PodCIDR, info.Link, info.IP} {
				if strings.Contains(out, s) {
					t.Errorf("%s in this network namespace mentions the node's %s:\n%s", strings.Join(c, " "), s, out)
				}
			}
		}
		mounts, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil || strings.Contains(string(mounts), dir) {
			t.Errorf("mounts under %s left in this mount namespace (or read failed: %v)", dir, err)
		}
		if netns != "" && strings.Contains(string(mounts), netns) {
			t.Errorf("the node's network namespace %s is still bind-mounted here", netns)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", dir, err)
		}
	})
}

// processesInMntns lists the PIDs whose mount namespace is mntns.
func processesInMntns(mntns string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/mnt"); l == mntns && mntns != "" {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return string(b), err
}

// TestNodeNamespaces checks the node's namespaces alone: a process started
// in them has the node's address and pause as its init, and removing them
// kills it and deletes the link.
func TestNodeNamespaces(t *testing.T) {
	requireNode(t)
	dir := t.TempDir()
	pause, err := buildBinary(t.Context(), dir, "./internal/controlplane/cmd/pause", "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := startNodeNamespaces(dir, pause)
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_ = ns.remove()
		}
	})
	netns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ns.initPID))
	self, _ := os.Readlink("/proc/self/ns/net")
	if netns == "" || netns == self {
		t.Fatalf("node network namespace %q, ours %q: want a different one", netns, self)
	}
	// A long-running process inside, as containerd would be.
	cmd := exec.Command("nsenter", ns.enter("sleep", "600")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Reaped when the namespace's init dies with the node; its exit status
	// (killed) says nothing.
	go func() { _ = cmd.Wait() }()
	out, err := cmdOutput(append([]string{"nsenter"}, ns.enter("sh", "-c", "ip -o addr show eth0; ls -A /run; cat /proc/1/comm")...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ns.nodeIP + "/30", "pause"} {
		if !strings.Contains(out, want) {
			t.Errorf("inside the node: %q lacks %q", out, want)
		}
	}
	removed = true
	if err := ns.remove(); err != nil {
		t.Fatal(err)
	}
	if pids := processesInNetns(netns); len(pids) > 0 {
		t.Errorf("processes left in the node's namespace: %v", pids)
	}
	if out, _ := cmdOutput("ip", "-o", "link", "show"); strings.Contains(out, ns.veth) {
		t.Errorf("link %s left", ns.veth)
	}
}

// TestNodeKilled checks what happens when the test holding a node dies
// before its cleanup (a -timeout panic, a SIGKILL): unshare, killed by its
// parent-death signal, takes the node's init with it, which kills every
// process of the node and removes the cgroups of its containers.
func TestNodeKilled(t *testing.T) {
	requireNode(t)
	dir := t.TempDir()
	pause, err := buildBinary(t.Context(), dir, "./internal/controlplane/cmd/pause", "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := startNodeNamespaces(dir, pause)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.remove() })
	netns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ns.initPID))

	// A container as runc makes it: a process of the node in k8s.io/<id>
	// of every hierarchy (here the pids one, or the v2 root).
	hierarchy := filepath.Join(cgroupRoot, "pids")
	if _, err := os.Stat(hierarchy); err != nil {
		hierarchy = cgroupRoot
	}
	id := fmt.Sprintf("peerdns-test-%d", os.Getpid())
	cgroup := filepath.Join(hierarchy, "k8s.io", id)
	if err := os.MkdirAll(cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rmdirCgroup(cgroup) })
	cmd := exec.Command("nsenter", ns.enter("sh", "-c", "echo $$ > "+shellQuote(filepath.Join(cgroup, "cgroup.procs"))+"; exec sleep 600")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }() // killed with the node; its status says nothing
	testtools.Eventually(t, "the container's process in its cgroup", 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(cgroup, "cgroup.procs"))
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == "" {
			return fmt.Errorf("cgroup.procs empty")
		}
		return nil
	})

	// What the parent-death signal does when the test dies.
	if err := syscall.Kill(ns.holder.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testtools.Eventually(t, "the node's processes gone", 20*time.Second, func() error {
		if pids := processesInNetns(netns); len(pids) > 0 || processAlive(ns.initPID) {
			return fmt.Errorf("still running: %v", pids)
		}
		return nil
	})
	if _, err := os.Stat(cgroup); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after the node was killed (stat: %v)", cgroup, err)
	}
}
