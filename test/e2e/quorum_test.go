package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/testtools"
)

const (
	namespace  = "default"
	gossipPort = 7946
	agentWeb   = 9470
	// readySRV lists the ready endpoints of the service db only.
	readySRV = "_gossip._tcp.db.default.svc.cluster.local."
	// stepLimit bounds each awaited change; with the agents' default (LAN)
	// timings every step takes well under 10 s.
	stepLimit = 20 * time.Second
)

// TestAgentsThroughPeerDNS runs the system as it is deployed: peerdns
// serving headless services from a real kube-apiserver, and peeragents,
// each in its own network namespace, that know nothing of each other but
// the SRV name they ask peerdns about. The agents run with their default
// (LAN) timings. Each subtest is one StatefulSet's story; they share the
// control plane, peerdns and the LAN, and run one after the other so that
// timings measured on a busy machine stay comparable.
func TestAgentsThroughPeerDNS(t *testing.T) {
	d := startDeployment(t)
	t.Run("rescheduled member rejoins", func(t *testing.T) { testRescheduled(t, d) })
	t.Run("minority partition", func(t *testing.T) { testMinorityPartition(t, d) })
	t.Run("non-transitive partition", func(t *testing.T) { testNonTransitivePartition(t, d) })
	t.Run("duplicate name", func(t *testing.T) { testDuplicateName(t, d) })
	t.Run("rolling restart", func(t *testing.T) { testRollingRestart(t, d) })
	t.Run("keyring rotation", func(t *testing.T) { testKeyringRotation(t, d) })
}

// testRescheduled: a StatefulSet db of 3.
//
//  1. The endpoints start not ready: the ready tree is NXDOMAIN, and the
//     agents bootstrap through the peer view alone. All three converge.
//  2. db-2 is killed: the others still hold quorum, 2 of 3.
//  3. db-1 is killed: db-0 loses quorum.
//  4. db-2 comes back under the same name in a new namespace with a new
//     address (a rescheduled pod) and finds db-0 through the ready tree,
//     where db-0 is by then published as ready: db-0 admits it from the
//     new address and quorum is back.
func testRescheduled(t *testing.T, d *deployment) {
	s := d.newStatefulSet(t, "db", 3)
	if err := wantSRV(d.dnsAddr, readySRV, dns.RcodeNameError)(); err != nil {
		t.Fatalf("no endpoint is ready, so the ready tree must not exist: %v", err)
	}

	// 1. Three agents bootstrap through the peer view.
	s.startAll(t)
	agents := map[string]*proc{"db-0": s.agents[0], "db-1": s.agents[1], "db-2": s.agents[2]}

	// 2. One of three killed: quorum holds.
	agents["db-2"].kill(t)
	took := testtools.Eventually(t, "db-2's failure seen, quorum kept", stepLimit, allOf(
		wantView(agents["db-0"], 1, "db-0=alive", "db-1=alive", "db-2=suspect|dead"),
		wantView(agents["db-1"], 1, "db-0=alive", "db-1=alive", "db-2=suspect|dead"),
	))
	t.Logf("db-2 killed: no longer alive for both others after %v", took.Round(time.Millisecond))
	took += testtools.Eventually(t, "db-2 declared dead", stepLimit, allOf(
		wantView(agents["db-0"], 1, "db-0=alive", "db-1=alive", "db-2=dead"),
		wantView(agents["db-1"], 1, "db-0=alive", "db-1=alive", "db-2=dead"),
	))
	t.Logf("db-2 killed: dead for both others after %v", took.Round(time.Millisecond))

	// 3. Two of three killed: quorum lost.
	agents["db-1"].kill(t)
	took = testtools.Eventually(t, "quorum lost", stepLimit,
		wantView(agents["db-0"], 0, "db-0=alive", "db-1=suspect|dead", "db-2=dead"))
	t.Logf("db-1 killed: db-0 lost quorum after %v", took.Round(time.Millisecond))

	// 4. db-2 is rescheduled: its old namespace and address are gone, it
	// comes back elsewhere. Meanwhile db-0 has been ready all along, so the
	// kubelet would publish it as ready; the new db-2 is not yet.
	d.lan.removeHost(t, s.hosts[2])
	moved := d.lan.addHost(t)
	s.slice.update(t,
		endpoint("db-0", s.hosts[0].ip, true),
		endpoint("db-1", s.hosts[1].ip, false),
		endpoint("db-2", moved.ip, false),
	)
	testtools.Eventually(t, "ready tree lists db-0 only", stepLimit, wantSRV(d.dnsAddr, readySRV, dns.RcodeSuccess,
		"db-0.db.default.svc.cluster.local. "+s.hosts[0].ip))
	s.hosts[2] = moved
	testtools.Eventually(t, "peer view has db-2's new address", stepLimit, s.wantPeerView())
	start := time.Now()
	agents["db-2"] = s.startAgent(t, moved, "db-2", readySRV)
	testtools.Eventually(t, "db-2 admitted from its new address, quorum back", stepLimit, allOf(
		wantView(agents["db-0"], 1, "db-0=alive", "db-1=suspect|dead", "db-2=alive"),
		wantAddress(agents["db-0"], "db-2", net.JoinHostPort(moved.ip, strconv.Itoa(gossipPort))),
		wantView(agents["db-2"], 1, "db-0=alive", "db-2=alive"),
	))
	t.Logf("db-2 restarted at %s: admitted and quorum back after %v", moved.ip, time.Since(start).Round(time.Millisecond))
	// Until the reclaim time after db-2 was declared dead has passed, its
	// new address is a name conflict; how many were dropped depends on how
	// fast the steps above ran.
	if v, err := agents["db-0"].metric("peeragent_name_conflicts_total"); err == nil {
		t.Logf("db-0 dropped %v alive messages of db-2 as name conflicts", v)
	} else {
		t.Error(err)
	}
}

// wantSRV checks the answer to an SRV query for name: the rcode, and each
// target with the address given for it in the additional section, written
// "<target> <address>", in any order.
func wantSRV(server, name string, rcode int, want ...string) func() error {
	want = slices.Sorted(slices.Values(want))
	return func() error {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
		if err != nil {
			return fmt.Errorf("SRV %s: %w", name, err)
		}
		if r.Rcode != rcode {
			return fmt.Errorf("SRV %s: rcode %s, want %s", name, dns.RcodeToString[r.Rcode], dns.RcodeToString[rcode])
		}
		addrs := map[string]string{}
		for _, rr := range r.Extra {
			if a, ok := rr.(*dns.A); ok {
				addrs[strings.ToLower(a.Hdr.Name)] = a.A.String()
			}
		}
		got := []string{}
		for _, rr := range r.Answer {
			if srv, ok := rr.(*dns.SRV); ok {
				if srv.Port != gossipPort {
					return fmt.Errorf("SRV %s: port %d, want %d", name, srv.Port, gossipPort)
				}
				target := strings.ToLower(srv.Target)
				got = append(got, target+" "+addrs[target])
			}
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			return fmt.Errorf("SRV %s targets (-want +got):\n%s", name, diff)
		}
		return nil
	}
}

// member is an entry of peeragent's /members.
type member struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`
}

// memberList is p's /members as served.
func memberList(p *proc) ([]member, error) {
	code, body, err := p.get("/members")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s /members: %d %s", p.name, code, body)
	}
	var ms []member
	if err := json.Unmarshal(body, &ms); err != nil {
		return nil, fmt.Errorf("%s /members: %w", p.name, err)
	}
	return ms, nil
}

// members is p's /members by name.
func members(p *proc) (map[string]member, error) {
	ms, err := memberList(p)
	if err != nil {
		return nil, err
	}
	out := map[string]member{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out, nil
}

// wantView checks what agent p sees: each "name=state" (or
// "name=state|state" for either), peeragent_members{state="alive"} equal to
// the count of names wanted alive, and peeragent_has_quorum.
func wantView(p *proc, hasQuorum float64, states ...string) func() error {
	return func() error {
		got, err := members(p)
		if err != nil {
			return err
		}
		alive := 0
		for _, s := range states {
			name, want, _ := strings.Cut(s, "=")
			if want == "alive" {
				alive++
			}
			if !slices.Contains(strings.Split(want, "|"), got[name].State) {
				return fmt.Errorf("%s sees %s %q, want %s (all: %v)", p.name, name, got[name].State, want, got)
			}
		}
		if v, err := p.metric(`peeragent_members{state="alive"}`); err != nil || v != float64(alive) {
			return fmt.Errorf("%s: peeragent_members{state=\"alive\"} = %v (%v), want %d", p.name, v, err, alive)
		}
		if v, err := p.metric("peeragent_has_quorum"); err != nil || v != hasQuorum {
			return fmt.Errorf("%s: peeragent_has_quorum = %v (%v), want %v", p.name, v, err, hasQuorum)
		}
		return nil
	}
}

// wantAddress checks that agent p holds member name at addr.
func wantAddress(p *proc, name, addr string) func() error {
	return func() error {
		got, err := members(p)
		if err != nil {
			return err
		}
		if got[name].Address != addr {
			return fmt.Errorf("%s sees %s at %q, want %q", p.name, name, got[name].Address, addr)
		}
		return nil
	}
}

// allOf checks every check, returning the first error.
func allOf(checks ...func() error) func() error {
	return func() error {
		for _, c := range checks {
			if err := c(); err != nil {
				return err
			}
		}
		return nil
	}
}
