package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peerdns/peerdns/internal/proc"
)

// nodeNamespaces are the node's own PID, network and mount namespaces, as
// a kind node has its container's: containerd, the kubelet, kube-proxy,
// the shims and every container live in them, so that
//
//   - killing the namespaces' init (a pause process) kills every process
//     of the node, containers included, whatever became of their parents;
//   - the pods' bridge, their veths, the node's routes, sysctls such as
//     ip_forward, and kube-proxy's nftables rules exist only in the node's
//     network namespace, which the kernel removes with its last process;
//   - mounts (overlay root filesystems, the kubelet's volumes, the netns
//     bind mounts) and the tmpfs over /run and /var/lib that keeps
//     containerd's shim sockets and CNI's cache off the host exist only in
//     the node's mount namespace.
//
// The root namespace sees one veth pair, <veth> ↔ the node's eth0, on a
// /30 (hostIP ↔ nodeIP), and a route to the pod range through it: the test
// reaches pods and the kubelet as a machine on the node's LAN would.
type nodeNamespaces struct {
	id      string
	holder  *proc.Process // unshare, the parent of init
	initPID int           // the namespaces' init, as the root namespace sees it

	veth    string // root namespace end of the link; the node's end is eth0
	hostIP  string // on veth: the node's gateway, where the API server is proxied
	nodeIP  string // the node's eth0: its InternalIP
	podCIDR string // the pods' /24 on the node's bridge
	gateway string // the bridge's address, first of podCIDR
	bridge  string // the bridge's name in the node's namespace
}

// Link and pod ranges: 10.215.<x>.0/30 and 10.214.<x>.0/24 for a random x
// that no route of the root namespace touches yet.
const (
	nodeLinkPrefix = "10.215."
	nodePodPrefix  = "10.214."
)

// startNodeNamespaces creates the namespaces with pause (a static binary)
// as their init, and the link between them and the root namespace.
func startNodeNamespaces(dir, pause string) (_ *nodeNamespaces, err error) {
	n := &nodeNamespaces{id: fmt.Sprintf("%06x", rand.N(1<<24))}
	n.veth = "pdnode" + n.id
	n.bridge = "pdbr0"
	x, err := freeNodeSubnet()
	if err != nil {
		return nil, err
	}
	n.hostIP = fmt.Sprintf("%s%d.1", nodeLinkPrefix, x)
	n.nodeIP = fmt.Sprintf("%s%d.2", nodeLinkPrefix, x)
	n.podCIDR = fmt.Sprintf("%s%d.0/24", nodePodPrefix, x)
	n.gateway = fmt.Sprintf("%s%d.1", nodePodPrefix, x)

	// --fork: the child is the PID namespace's init; unshare waits for it.
	// --kill-child: the init gets SIGTERM when unshare dies, which dies with
	// this process (proc's parent-death signal), so a killed test leaves no
	// node behind: pause -node-init then kills every process of the node
	// and removes its containers' cgroups (cmd/pause). The tmpfs mounts
	// happen inside the new mount namespace before init becomes pause.
	script := "set -e; mount -t tmpfs -o mode=0755 tmpfs /run; mount -t tmpfs -o mode=0755 tmpfs /var/lib; " +
		"exec " + shellQuote(pause) + " -node-init"
	n.holder, err = proc.Start("node-init", "unshare",
		[]string{"--pid", "--fork", "--kill-child=SIGTERM", "--mount-proc", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script},
		filepath.Join(dir, "node-init.log"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.remove())
		}
	}()
	if n.initPID, err = waitChild(n.holder, pause); err != nil {
		return nil, err
	}
	ns := strconv.Itoa(n.initPID)
	for _, c := range [][]string{
		{"ip", "link", "add", n.veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "addr", "add", n.hostIP + "/30", "dev", n.veth},
		{"ip", "link", "set", n.veth, "up"},
		{"nsenter", "-t", ns, "-n", "ip", "link", "set", "lo", "up"},
		{"nsenter", "-t", ns, "-n", "ip", "addr", "add", n.nodeIP + "/30", "dev", "eth0"},
		{"nsenter", "-t", ns, "-n", "ip", "link", "set", "eth0", "up"},
		{"nsenter", "-t", ns, "-n", "ip", "route", "add", "default", "via", n.hostIP},
		// The pods reach the API server and each other through the node,
		// which routes between its bridge and eth0.
		{"nsenter", "-t", ns, "-n", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
		{"ip", "route", "add", n.podCIDR, "via", n.nodeIP, "dev", n.veth},
	} {
		if err := runCmd(c...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// waitChild returns the PID of p's child once it runs exe (it is a shell
// first, which mounts and then execs exe).
func waitChild(p *proc.Process, exe string) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Pid(), p.Pid()))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, fmt.Errorf("node namespaces: %w", err)
			}
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); target == exe {
				return pid, nil
			}
		}
		if p.Exited() {
			return 0, exitError(p)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("node namespaces: init did not start within 10s; last lines of %s:\n%s", p.LogPath, p.Tail(10))
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
	}
}

// enter returns the arguments that run command inside the node's
// namespaces: nsenter joins them and execs (PID namespace: forks) it.
func (n *nodeNamespaces) enter(command string, args ...string) []string {
	return append([]string{"-t", strconv.Itoa(n.initPID), "-p", "-n", "-m", "--", command}, args...)
}

// remove kills the namespaces' init, which takes every process of the node
// with it, and deletes the link (its node end would otherwise go with the
// network namespace asynchronously). It waits until the namespaces are
// gone, so that nothing of the node remains when it returns.
func (n *nodeNamespaces) remove() error {
	var errs []error
	netns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", n.initPID))
	if n.initPID > 0 {
		// As when unshare dies: pause kills the node and removes its
		// containers' cgroups, then exits.
		_ = syscall.Kill(n.initPID, syscall.SIGTERM)
		deadline := time.Now().Add(20 * time.Second)
		for processAlive(n.initPID) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
		}
	}
	if n.holder != nil {
		if err := n.holder.Kill(); err != nil {
			errs = append(errs, err)
		}
		if n.initPID > 0 {
			// SIGKILL to the init of a PID namespace kills every process in
			// it; wait until the kernel has finished.
			deadline := time.Now().Add(10 * time.Second)
			for processAlive(n.initPID) || len(processesInNetns(netns)) > 0 {
				if time.Now().After(deadline) {
					errs = append(errs, fmt.Errorf("node namespaces: processes still running 10s after their init was killed: %v", processesInNetns(netns)))
					break
				}
				time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
			}
		}
	}
	if err := runCmd("ip", "link", "del", n.veth); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// processesInNetns lists the PIDs whose network namespace is netns (as
// readlink of /proc/<pid>/ns/net gives it, "net:[<inode>]").
func processesInNetns(netns string) []int {
	if netns == "" {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); l == netns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// freeNodeSubnet picks x such that no route of the root namespace's main
// table covers or lies inside 10.214.<x>.0/24 or 10.215.<x>.0/30, other
// than the default route.
func freeNodeSubnet() (int, error) {
	for range 20 {
		x := 1 + rand.N(254)
		used := false
		for _, prefix := range []string{fmt.Sprintf("%s%d.0/24", nodePodPrefix, x), fmt.Sprintf("%s%d.0/30", nodeLinkPrefix, x)} {
			covering, err := cmdOutput("ip", "-4", "route", "show", "match", prefix)
			if err != nil {
				return 0, err
			}
			inside, err := cmdOutput("ip", "-4", "route", "show", "root", prefix)
			if err != nil {
				return 0, err
			}
			used = used || strings.TrimSpace(inside) != ""
			for _, line := range strings.Split(covering, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "default") {
					used = true
				}
			}
		}
		if !used {
			return x, nil
		}
	}
	return 0, errors.New("node namespaces: no free subnet in 10.214.0.0/16 and 10.215.0.0/16")
}

func runCmd(args ...string) error {
	_, err := cmdOutput(args...)
	return err
}

func cmdOutput(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
