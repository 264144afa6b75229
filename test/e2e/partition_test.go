package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// partition is a set of silent packet drops between hosts of a network:
// iptables rules inside the hosts' namespaces, so nothing outside them
// changes and deleting a namespace deletes its rules with it. A dropped
// packet vanishes without an error to either side, as on a real network
// split: probes time out rather than fail fast.
type partition struct {
	rules  []rule
	healed bool
}

// rule is one iptables rule in one namespace, kept to delete it exactly.
type rule struct {
	netns string
	spec  []string // after -A/-D
}

// requireIPTables skips the test (or fails it under PEERDNS_REQUIRE_TOOLS=1)
// without the iptables command, which cuts links between hosts.
func requireIPTables(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		skipOrFail(t, "needs iptables (to cut links between network namespaces): %v", err)
	}
}

// cut drops all traffic between every host of side and every host of
// other, both ways; hosts on the same side still reach each other and the
// gateway (peerdns). Each host drops what arrives from the other side
// (INPUT), and sends as usual: a drop on OUTPUT would fail the sender's
// sendto with EPERM, which no real partition does. t.Cleanup heals it if
// the test did not.
func cut(t *testing.T, side, other []*host) *partition {
	t.Helper()
	p := &partition{}
	t.Cleanup(func() {
		if err := p.heal(); err != nil {
			t.Error(err)
		}
	})
	drop := func(h, from *host) {
		r := rule{netns: h.netns, spec: []string{"INPUT", "-s", from.ip + "/32", "-j", "DROP"}}
		if err := r.run("-A"); err != nil {
			t.Fatal(err)
		}
		p.rules = append(p.rules, r)
	}
	for _, a := range side {
		for _, b := range other {
			drop(a, b)
			drop(b, a)
		}
	}
	return p
}

// heal deletes every rule cut added; it may be called more than once.
func (p *partition) heal() error {
	if p.healed {
		return nil
	}
	p.healed = true
	var errs []string
	for _, r := range p.rules {
		if err := r.run("-D"); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("heal partition: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (r rule) run(op string) error {
	args := append([]string{"netns", "exec", r.netns, "iptables", "-w", op}, r.spec...)
	var stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
