package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"

	"github.com/peerdns/peerdns/internal/testtools"
)

const (
	service    = "db"
	namespace  = "default"
	gossipPort = 7946
	agentWeb   = 9470
	// peerSRV is the peer view: every endpoint with an address, ready or
	// not, which is what members need to find each other before any of
	// them is ready.
	peerSRV = "_gossip._tcp.db.default.peers.cluster.local."
	// readySRV lists ready endpoints only.
	readySRV = "_gossip._tcp.db.default.svc.cluster.local."
	// stepLimit bounds each awaited change; with the agents' default (LAN)
	// timings every step takes well under 10 s.
	stepLimit = 20 * time.Second
)

// TestQuorumThroughPeerDNS runs the system as it is deployed: peerdns
// serving a headless service from a real kube-apiserver, and three
// peeragents, each in its own network namespace, that know nothing of each
// other but the SRV name they ask peerdns about. The agents run with their
// default (LAN) timings.
//
//  1. The endpoints start not ready: the ready tree is NXDOMAIN, and the
//     agents bootstrap through the peer view alone. All three converge.
//  2. db-2 is killed: the others still hold quorum, 2 of 3.
//  3. db-1 is killed: db-0 loses quorum.
//  4. db-2 comes back under the same name in a new namespace with a new
//     address (a rescheduled pod) and finds db-0 through the ready tree,
//     where db-0 is by then published as ready: db-0 admits it from the
//     new address and quorum is back.
func TestQuorumThroughPeerDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs a control plane, peerdns and peeragents in network namespaces")
	}
	requireNetworking(t)
	cp := controlplane.StartT(t, controlplane.Options{})
	peerdnsBin, agentBin := buildBinaries(t)
	lan := newNetwork(t)
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())

	hosts := make([]*host, 3)
	for i := range hosts {
		hosts[i] = lan.addHost(t, i)
	}
	ep := &endpointSlice{client: client}
	ep.create(t, hosts[0].ip, hosts[1].ip, hosts[2].ip)

	// peerdns, with a service account that may only read EndpointSlices,
	// answering on the bridge, where the namespaces reach it.
	saConfig, err := cp.ServiceAccountConfig(ctx, "peerdns", "peerdns", []rbacv1.PolicyRule{{
		APIGroups: []string{discoveryv1.GroupName},
		Resources: []string{"endpointslices"},
		Verbs:     []string{"list", "watch"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "peerdns.kubeconfig")
	if err := cp.WriteKubeconfig(saConfig, kubeconfig); err != nil {
		t.Fatal(err)
	}
	dnsAddr := net.JoinHostPort(lan.gateway(), strconv.Itoa(testtools.FreePort(t, lan.gateway())))
	webAddr := net.JoinHostPort(lan.gateway(), strconv.Itoa(testtools.FreePort(t, lan.gateway())))
	pd := startProc(t, "peerdns", "http://"+webAddr, exec.Command(peerdnsBin,
		"--kubeconfig="+kubeconfig,
		"--dns.listen-address="+dnsAddr,
		"--web.listen-address="+webAddr,
		"--dns.lame-duck=0s",
	))
	testtools.Eventually(t, "peerdns ready", stepLimit, func() error {
		code, body, err := pd.get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d %s", code, body)
		}
		return err
	})
	testtools.Eventually(t, "peer view lists every endpoint", stepLimit, wantSRV(dnsAddr, peerSRV, dns.RcodeSuccess,
		"db-0.db.default.peers.cluster.local. "+hosts[0].ip,
		"db-1.db.default.peers.cluster.local. "+hosts[1].ip,
		"db-2.db.default.peers.cluster.local. "+hosts[2].ip,
	))
	if err := wantSRV(dnsAddr, readySRV, dns.RcodeNameError)(); err != nil {
		t.Fatalf("no endpoint is ready, so the ready tree must not exist: %v", err)
	}

	// 1. Three agents bootstrap through the peer view.
	agents := map[string]*proc{}
	start := time.Now()
	for i, h := range hosts {
		name := fmt.Sprintf("db-%d", i)
		agents[name] = startAgent(t, agentBin, h, name, dnsAddr, peerSRV)
	}
	testtools.Eventually(t, "3 agents converge", stepLimit, allOf(
		wantView(agents["db-0"], 1, "db-0=alive", "db-1=alive", "db-2=alive"),
		wantView(agents["db-1"], 1, "db-0=alive", "db-1=alive", "db-2=alive"),
		wantView(agents["db-2"], 1, "db-0=alive", "db-1=alive", "db-2=alive"),
	))
	t.Logf("3 agents converged %v after they started", time.Since(start).Round(time.Millisecond))
	for name, p := range agents {
		if code, body, err := p.get("/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("%s /readyz after joining: %d %s %v", name, code, body, err)
		}
	}

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
	lan.removeHost(t, hosts[2])
	moved := lan.addHost(t, 3)
	ep.update(t,
		endpoint("db-0", hosts[0].ip, true),
		endpoint("db-1", hosts[1].ip, false),
		endpoint("db-2", moved.ip, false),
	)
	testtools.Eventually(t, "ready tree lists db-0 only", stepLimit, wantSRV(dnsAddr, readySRV, dns.RcodeSuccess,
		"db-0.db.default.svc.cluster.local. "+hosts[0].ip))
	testtools.Eventually(t, "peer view has db-2's new address", stepLimit, wantSRV(dnsAddr, peerSRV, dns.RcodeSuccess,
		"db-0.db.default.peers.cluster.local. "+hosts[0].ip,
		"db-1.db.default.peers.cluster.local. "+hosts[1].ip,
		"db-2.db.default.peers.cluster.local. "+moved.ip,
	))
	start = time.Now()
	agents["db-2"] = startAgent(t, agentBin, moved, "db-2", dnsAddr, readySRV)
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
	if err := pd.exited(); err != nil {
		t.Error(err)
	}
}

// startAgent runs peeragent name in h's namespace with default timings,
// gossiping and serving HTTP on h's address, finding its peers only through
// srv asked of peerdns at dnsAddr.
func startAgent(t *testing.T, bin string, h *host, name, dnsAddr, srv string) *proc {
	t.Helper()
	web := net.JoinHostPort(h.ip, strconv.Itoa(agentWeb))
	return startProc(t, name+"@"+h.ip, "http://"+web, h.command(bin,
		"--node.name="+name,
		"--cluster.expected=3",
		"--cluster.label=default/db",
		"--gossip.listen-address="+net.JoinHostPort(h.ip, strconv.Itoa(gossipPort)),
		"--web.listen-address="+web,
		"--peers.srv="+srv,
		"--peers.dns-server="+dnsAddr,
		"--log.level=debug",
	))
}

// endpointSlice is the service db and its one EndpointSlice, written as
// the endpointslice controller would for a StatefulSet db with 3 replicas.
type endpointSlice struct {
	client kubernetes.Interface
	slice  *discoveryv1.EndpointSlice
}

func endpoint(hostname, ip string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Hostname:   &hostname,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
	}
}

// create creates the headless service and its slice with db-<i> at ips[i],
// none ready.
func (e *endpointSlice) create(t *testing.T, ips ...string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Ports:     []corev1.ServicePort{{Name: "gossip", Port: gossipPort, Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := e.client.CoreV1().Services(namespace).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port, proto, portName := int32(gossipPort), corev1.ProtocolTCP, "gossip"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-e2e", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			corev1.IsHeadlessService:     "",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for i, ip := range ips {
		slice.Endpoints = append(slice.Endpoints, endpoint(fmt.Sprintf("db-%d", i), ip, false))
	}
	created, err := e.client.DiscoveryV1().EndpointSlices(namespace).Create(t.Context(), slice, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.slice = created
}

// update replaces the slice's endpoints.
func (e *endpointSlice) update(t *testing.T, endpoints ...discoveryv1.Endpoint) {
	t.Helper()
	e.slice.Endpoints = endpoints
	updated, err := e.client.DiscoveryV1().EndpointSlices(namespace).Update(t.Context(), e.slice, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.slice = updated
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

func members(p *proc) (map[string]member, error) {
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
