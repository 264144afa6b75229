package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// network is a private IPv4 LAN made for one test: a bridge in the root
// namespace holding the gateway address 10.213.<x>.1/24, and one network
// namespace per host, joined to the bridge by a veth pair. Nothing else on
// the machine changes: no default route, no forwarding, no NAT; the only
// route added outside the namespaces is the bridge's connected /24, so
// traffic to these addresses never leaves the bridge.
//
// Every name carries a random id, so runs in parallel (or a leftover of a
// killed run) do not collide. t.Cleanup removes everything and checks that
// no name with the id remains.
//
// Bridged frames pass through iptables when br_netfilter is loaded with
// net.bridge.bridge-nf-call-iptables=1; a FORWARD chain that drops them (as
// Docker installs) cuts the hosts off from each other, though not from the
// gateway.
type network struct {
	id     string
	bridge string
	subnet string // "10.213.<x>.", to append the host byte to
	hosts  []*host
	next   int // index of the next host added
}

// host is one network namespace on the LAN.
type host struct {
	netns   string
	veth    string // the root namespace's end; the namespace's end is eth0
	ip      string
	removed bool
}

// newNetwork creates the bridge with the gateway address and registers the
// cleanup of the bridge and of every host added later.
func newNetwork(t *testing.T) *network {
	t.Helper()
	n := &network{id: fmt.Sprintf("%06x", rand.N(1<<24))}
	n.bridge = "pdbr" + n.id
	x, err := freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	n.subnet = fmt.Sprintf("10.213.%d.", x)

	if err := ipCmd("link", "add", n.bridge, "type", "bridge"); err != nil {
		// Root without CAP_NET_ADMIN (an unprivileged container).
		skipOrFail(t, "cannot create a bridge: %v", err)
	}
	t.Cleanup(func() { n.remove(t) })
	for _, args := range [][]string{
		{"addr", "add", n.gateway() + "/24", "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("network %s0/24 on bridge %s", n.subnet, n.bridge)
	return n
}

// freeSubnet picks x for 10.213.<x>.0/24 such that no route of the main
// table covers or lies inside it, other than the default route.
func freeSubnet() (int, error) {
	for range 20 {
		x := 1 + rand.N(254)
		prefix := fmt.Sprintf("10.213.%d.0/24", x)
		covering, err := ipOutput("-4", "route", "show", "match", prefix)
		if err != nil {
			return 0, err
		}
		inside, err := ipOutput("-4", "route", "show", "root", prefix)
		if err != nil {
			return 0, err
		}
		used := strings.TrimSpace(inside) != ""
		for _, line := range strings.Split(covering, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "default") {
				used = true
			}
		}
		if !used {
			return x, nil
		}
	}
	return 0, fmt.Errorf("no free /24 in 10.213.0.0/16")
}

// gateway is the bridge's address, where peerdns listens.
func (n *network) gateway() string { return n.subnet + "1" }

// addHost creates namespace pd-<id>-<i> with address 10.213.<x>.(10+i)
// on eth0 and lo up, and plugs it into the bridge; i counts the hosts
// added so far, so a new host always has a new address. The host is
// removed when t ends (its processes, started later, end before).
func (n *network) addHost(t *testing.T) *host {
	t.Helper()
	if n.next >= 240 {
		t.Fatal("network: no host address left in the /24")
	}
	i := n.next
	n.next++
	h := &host{
		netns: fmt.Sprintf("pd-%s-%d", n.id, i),
		veth:  fmt.Sprintf("pdv%s%d", n.id, i),
		ip:    fmt.Sprintf("%s%d", n.subnet, 10+i),
	}
	if err := ipCmd("netns", "add", h.netns); err != nil {
		t.Fatal(err)
	}
	n.hosts = append(n.hosts, h) // from here on, remove cleans it up
	t.Cleanup(func() {
		if err := h.remove(); err != nil {
			t.Error(err)
		}
	})
	for _, args := range [][]string{
		{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns},
		{"link", "set", h.veth, "master", n.bridge},
		{"link", "set", h.veth, "up"},
		{"-n", h.netns, "addr", "add", h.ip + "/24", "dev", "eth0"},
		{"-n", h.netns, "link", "set", "eth0", "up"},
		{"-n", h.netns, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// removeHost deletes the host's veth pair and namespace: its address is
// gone from the LAN. Processes in it must have exited.
func (n *network) removeHost(t *testing.T, h *host) {
	t.Helper()
	if err := h.remove(); err != nil {
		t.Error(err)
	}
}

func (h *host) remove() error {
	if h.removed {
		return nil
	}
	h.removed = true
	// Deleting the root end deletes both ends at once; deleting only the
	// namespace would leave the pair to the kernel's asynchronous cleanup.
	return errors.Join(ipCmd("link", "del", h.veth), ipCmd("netns", "del", h.netns))
}

// remove deletes every host and the bridge, then fails the test if any
// namespace or link with the id is left.
func (n *network) remove(t *testing.T) {
	var errs []error
	for _, h := range n.hosts {
		errs = append(errs, h.remove())
	}
	errs = append(errs, ipCmd("link", "del", n.bridge))
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	links, err := ipOutput("-o", "link", "show")
	if err != nil {
		t.Error(err)
	}
	netns, err := ipOutput("netns", "list")
	if err != nil {
		t.Error(err)
	}
	for _, line := range strings.Split(links+netns, "\n") {
		if strings.Contains(line, n.id) {
			t.Errorf("left after cleanup: %s", line)
		}
	}
}

// command runs name with args inside the host's namespace. ip netns exec
// execs the command in place, so the process is the command itself: a
// signal to it reaches the command.
func (h *host) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.netns, name}, args...)...)
}

func ipCmd(args ...string) error {
	_, err := ipOutput(args...)
	return err
}

func ipOutput(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// requireNetworking skips the test (or fails it under
// PEERDNS_REQUIRE_TOOLS=1) unless it can create network namespaces: root
// and the ip command.
func requireNetworking(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to create network namespaces and a bridge)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "the ip command (iproute2)")
	}
	if len(missing) > 0 {
		skipOrFail(t, "needs %s", strings.Join(missing, " and "))
	}
}

// skipOrFail skips the test, or fails it when PEERDNS_REQUIRE_TOOLS=1: a
// skipped end-to-end test must never pass silently in `make test`.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("PEERDNS_REQUIRE_TOOLS") == "1" {
		t.Fatalf(format+" (PEERDNS_REQUIRE_TOOLS=1)", args...)
	}
	t.Skipf(format, args...)
}
