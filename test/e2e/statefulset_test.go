package e2e

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/testtools"
)

// statefulSet is what a StatefulSet <name> with n replicas and a peeragent
// sidecar amounts to here: member i runs in a namespace of its own
// (hosts[i]), its endpoint is in the service's EndpointSlice, and the
// agents find each other only through the service's peer view on peerdns.
type statefulSet struct {
	d      *deployment
	name   string
	n      int
	hosts  []*host // by ordinal: where member i runs now
	agents []*proc // by ordinal: member i's agent, nil until started
	slice  *endpointSlice
	args   []string // extra agent flags, for every member
	// memberArgs, if set, gives member i's own extra flags.
	memberArgs func(i int) []string
}

// newStatefulSet creates the hosts and the headless service with every
// endpoint not ready, and waits until the peer view lists them all.
func (d *deployment) newStatefulSet(t *testing.T, name string, n int, args ...string) *statefulSet {
	t.Helper()
	s := &statefulSet{d: d, name: name, n: n, args: args, agents: make([]*proc, n)}
	for range n {
		s.hosts = append(s.hosts, d.lan.addHost(t))
	}
	s.slice = &endpointSlice{client: d.client, service: name}
	ips := make([]string, n)
	for i, h := range s.hosts {
		ips[i] = h.ip
	}
	s.slice.create(t, ips...)
	testtools.Eventually(t, "peer view lists every endpoint", stepLimit, s.wantPeerView())
	return s
}

// member is the pod name of ordinal i.
func (s *statefulSet) member(i int) string { return fmt.Sprintf("%s-%d", s.name, i) }

// peerSRV is the service's peer view: every endpoint with an address, ready
// or not, which is what members need to find each other before any of them
// is ready.
func (s *statefulSet) peerSRV() string {
	return "_gossip._tcp." + s.name + "." + namespace + ".peers.cluster.local."
}

// wantPeerView checks that the peer view lists every member at its host's
// address.
func (s *statefulSet) wantPeerView() func() error {
	want := make([]string, s.n)
	for i, h := range s.hosts {
		want[i] = s.member(i) + "." + s.name + "." + namespace + ".peers.cluster.local. " + h.ip
	}
	return wantSRV(s.d.dnsAddr, s.peerSRV(), dns.RcodeSuccess, want...)
}

// start runs member i's agent on its host.
func (s *statefulSet) start(t *testing.T, i int) *proc {
	t.Helper()
	args := slices.Clone(s.args)
	if s.memberArgs != nil {
		args = append(args, s.memberArgs(i)...)
	}
	s.agents[i] = s.startAgent(t, s.hosts[i], s.member(i), s.peerSRV(), args...)
	return s.agents[i]
}

// startAll starts every member's agent and waits until each sees every
// member alive with quorum and answers /readyz; it returns how long that
// took.
func (s *statefulSet) startAll(t *testing.T) {
	t.Helper()
	for i := range s.n {
		s.start(t, i)
	}
	took := testtools.Eventually(t, fmt.Sprintf("%d agents converge", s.n), stepLimit, s.wantAllAlive(s.up()...))
	t.Logf("%s: %d agents converged %v after they started", s.name, s.n, took.Round(1e6))
}

// startAgent runs a peeragent named name on h with the agents' default
// (LAN) timings and /readyz gated on quorum, gossiping and serving HTTP on
// h's address, finding its peers only through srv asked of peerdns.
func (s *statefulSet) startAgent(t *testing.T, h *host, name, srv string, extra ...string) *proc {
	t.Helper()
	web := net.JoinHostPort(h.ip, strconv.Itoa(agentWeb))
	args := append([]string{
		"--node.name=" + name,
		"--cluster.expected=" + strconv.Itoa(s.n),
		"--cluster.label=" + namespace + "/" + s.name,
		"--gossip.listen-address=" + net.JoinHostPort(h.ip, strconv.Itoa(gossipPort)),
		"--web.listen-address=" + web,
		"--peers.srv=" + srv,
		"--peers.dns-server=" + s.d.dnsAddr,
		"--readyz.require-quorum",
		"--log.level=debug",
	}, extra...)
	return startProc(t, name+"@"+h.ip, "http://"+web, h.command(s.d.agentBin, args...))
}

// up is the running agents.
func (s *statefulSet) up() []*proc {
	var ps []*proc
	for _, p := range s.agents {
		if p != nil && p.exited() == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// wantAllAlive checks that each of agents sees every member alive, has
// quorum and answers /readyz with 200.
func (s *statefulSet) wantAllAlive(agents ...*proc) func() error {
	states := make([]string, s.n)
	for i := range s.n {
		states[i] = s.member(i) + "=alive"
	}
	var checks []func() error
	for _, p := range agents {
		checks = append(checks, wantView(p, 1, states...), wantReady(p, http.StatusOK))
	}
	return allOf(checks...)
}

// wantViewsAgree checks that no running agent reports a view
// disagreement.
func (s *statefulSet) wantViewsAgree() func() error {
	return func() error {
		var checks []func() error
		for _, p := range s.up() {
			checks = append(checks, wantMetric(p, "peeragent_view_disagreement", 0))
		}
		return allOf(checks...)()
	}
}

// endpointSlice is a headless service and its one EndpointSlice, written
// as the endpointslice controller would for a StatefulSet of that name.
type endpointSlice struct {
	client  kubernetes.Interface
	service string
	slice   *discoveryv1.EndpointSlice
}

func endpoint(hostname, ip string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Hostname:   &hostname,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
	}
}

// create creates the headless service and its slice with <service>-<i> at
// ips[i], none ready.
func (e *endpointSlice) create(t *testing.T, ips ...string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: e.service, Namespace: namespace},
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
		ObjectMeta: metav1.ObjectMeta{Name: e.service + "-e2e", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: e.service,
			corev1.IsHeadlessService:     "",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for i, ip := range ips {
		slice.Endpoints = append(slice.Endpoints, endpoint(fmt.Sprintf("%s-%d", e.service, i), ip, false))
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
