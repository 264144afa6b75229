package kube

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/resolver"
)

// TestIntegration runs the Watcher against a real kube-apiserver and etcd,
// with a service account that may only list and watch endpointslices, as
// peerdns runs in a cluster. Each subtest works in its own namespace; the
// outage and expiry subtests stop the API server and so run last.
func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs a real API server (make controlplane); skipped with -short")
	}
	cp := controlplane.StartT(t, controlplane.Options{})
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{admin: admin}

	c.namespace(t, "peerdns-system")
	saConfig, err := cp.ServiceAccountConfig(ctx, "peerdns-system", "peerdns", []rbacv1.PolicyRule{{
		APIGroups: []string{discoveryv1.GroupName},
		Resources: []string{"endpointslices"},
		Verbs:     []string{"list", "watch"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	setClientDefaults(saConfig)
	part := newPartition()
	saConfig.Wrap(part.wrap)
	client, err := kubernetes.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The account really is that narrow: the Watcher cannot lean on more.
	if _, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("service account lists services: err = %v, want Forbidden", err)
	}

	// The Watcher writes to the resolver's store, served over DNS on
	// loopback, and to a recording sink that keeps every state it took.
	sink := newRecordingSink()
	store := resolver.NewStore()
	probe := startDNS(t, store, sink)
	if got := probe.query(t, "web.nowhere.svc.cluster.local.", dns.TypeA); got[0] != "SERVFAIL" {
		t.Errorf("before the first list: %q, want SERVFAIL", got)
	}
	w, err := New(Config{
		RESTConfig: saConfig,
		Sink:       teeSink{store, sink},
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	d := sink.waitFor(t, "synced", (*recordingSink).isSynced)
	t.Logf("synced %v after start", d)
	probe.wait(t, "web.nowhere.svc.cluster.local.", dns.TypeA, "NXDOMAIN")

	http := namedPort("http", corev1.ProtocolTCP, 80)

	t.Run("create update delete", func(t *testing.T) {
		ns := c.namespace(t, "crud")
		c.service(t, ns, "web")
		a := sliceSpec{namespace: ns, name: "web-a", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.1.0.1"))}
		key := ns + "/web"

		svc := "web.crud.svc.cluster.local."

		c.create(t, a)
		logVisible(t, "created slice", probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.1.0.1"))
		probe.wait(t, "web-0."+svc, dns.TypeA, "NOERROR", "A 10.1.0.1")
		sink.waitService(t, key, "ports=http/tcp/80 eps=web-0[10.1.0.1]")

		a.endpoints = endpoints(readyEP("web-0", "10.1.0.1"), readyEP("web-1", "10.1.0.2"))
		c.update(t, a)
		logVisible(t, "added endpoint", probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.1.0.1", "A 10.1.0.2"))
		sink.waitService(t, key, "ports=http/tcp/80 eps=web-0[10.1.0.1],web-1[10.1.0.2]")

		b := sliceSpec{namespace: ns, name: "web-b", service: "web", ports: ports(http, namedPort("metrics", corev1.ProtocolTCP, 9090)), endpoints: endpoints(readyEP("web-2", "10.1.0.3"))}
		c.create(t, b)
		logVisible(t, "second slice", probe.wait(t, "_http._tcp."+svc, dns.TypeSRV, "NOERROR",
			"SRV 0 33 80 web-0."+svc, "SRV 0 33 80 web-1."+svc, "SRV 0 33 80 web-2."+svc))
		// Ports belong to the slice: only web-b's endpoint has metrics.
		probe.wait(t, "_metrics._tcp."+svc, dns.TypeSRV, "NOERROR", "SRV 0 100 9090 web-2."+svc)
		sink.waitService(t, key, "ports=http/tcp/80,metrics/tcp/9090 eps=web-0[10.1.0.1]{http/tcp/80},web-1[10.1.0.2]{http/tcp/80},web-2[10.1.0.3]")

		c.delete(t, ns, "web-a")
		logVisible(t, "deleted slice", probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.1.0.3"))
		probe.wait(t, "web-0."+svc, dns.TypeA, "NXDOMAIN")
		sink.waitService(t, key, "ports=http/tcp/80,metrics/tcp/9090 eps=web-2[10.1.0.3]")

		c.delete(t, ns, "web-b")
		logVisible(t, "deleted last slice", probe.wait(t, svc, dns.TypeA, "NXDOMAIN"))
		sink.waitService(t, key, "")
	})

	t.Run("dual stack", func(t *testing.T) {
		ns := c.namespace(t, "dual")
		c.service(t, ns, "web")
		start := time.Now()
		c.create(t, sliceSpec{namespace: ns, name: "web-v4", service: "web", ports: ports(http),
			endpoints: endpoints(readyEP("web-0", "10.2.0.1"), readyEP("web-1", "10.2.0.2"))})
		c.create(t, sliceSpec{namespace: ns, name: "web-v6", service: "web", addressType: discoveryv1.AddressTypeIPv6, ports: ports(http),
			endpoints: endpoints(readyEP("web-0", "fd00::2:1"), readyEP("web-1", "fd00::2:2"))})
		svc := "web.dual.svc.cluster.local."
		probe.wait(t, svc, dns.TypeAAAA, "NOERROR", "AAAA fd00::2:1", "AAAA fd00::2:2")
		probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.2.0.1", "A 10.2.0.2")
		logVisible(t, "IPv4 and IPv6 slices", time.Since(start))
		probe.wait(t, "web-0."+svc, dns.TypeAAAA, "NOERROR", "AAAA fd00::2:1")
		probe.wait(t, "web-0."+svc, dns.TypeA, "NOERROR", "A 10.2.0.1")
		sink.waitService(t, ns+"/web", "ports=http/tcp/80 eps=web-0[10.2.0.1,fd00::2:1],web-1[10.2.0.2,fd00::2:2]")
	})

	t.Run("terminating endpoints", func(t *testing.T) {
		ns := c.namespace(t, "term")
		c.service(t, ns, "web")
		s := sliceSpec{namespace: ns, name: "web-a", service: "web", ports: ports(http), endpoints: endpoints(
			readyEP("web-0", "10.3.0.1"), readyEP("web-1", "10.3.0.2"), readyEP("web-2", "10.3.0.3"))}
		c.create(t, s)
		sink.waitService(t, ns+"/web", "ports=http/tcp/80 eps=web-0[10.3.0.1],web-1[10.3.0.2],web-2[10.3.0.3]")

		s.endpoints = endpoints(
			readyEP("web-0", "10.3.0.1"),
			// A pod being deleted, as the endpointslice controller writes it.
			endpointSpec{hostname: "web-1", addrs: []string{"10.3.0.2"}, ready: ptr(false), terminating: ptr(true)}.build(),
			// The same with publishNotReadyAddresses: still ready.
			endpointSpec{hostname: "web-2", addrs: []string{"10.3.0.3"}, ready: ptr(true), terminating: ptr(true)}.build(),
		)
		c.update(t, s)
		svc := "web.term.svc.cluster.local."
		logVisible(t, "terminating", probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.3.0.1", "A 10.3.0.3"))
		probe.wait(t, "web-1."+svc, dns.TypeA, "NXDOMAIN")
		// The peer view still has it: it lists every endpoint.
		probe.wait(t, "web-1.web.term.peers.cluster.local.", dns.TypeA, "NOERROR", "A 10.3.0.2")
		sink.waitService(t, ns+"/web", "ports=http/tcp/80 eps=web-0[10.3.0.1],web-1[10.3.0.2]!,web-2[10.3.0.3]")
	})

	t.Run("slices of other services are not watched", func(t *testing.T) {
		ns := c.namespace(t, "mixed")
		c.service(t, ns, "clusterip")
		c.create(t, sliceSpec{namespace: ns, name: "clusterip-a", service: "clusterip", notHeadless: true, endpoints: endpoints(readyEP("", "10.4.0.1"))})
		c.service(t, ns, "web")
		c.create(t, sliceSpec{namespace: ns, name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.4.0.2"))})
		// Watch events come in order: once web shows, the other slice
		// would have shown too, had the API server sent it.
		sink.waitService(t, ns+"/web", "ports= eps=web-0[10.4.0.2]")
		if got, ok := sink.snapshot()[ns+"/clusterip"]; ok {
			t.Errorf("slice without the headless label reached the sink: %s", got)
		}
		probe.wait(t, "clusterip.mixed.svc.cluster.local.", dns.TypeA, "NXDOMAIN")
	})

	t.Run("1500 endpoints in several slices", func(t *testing.T) {
		ns := c.namespace(t, "large")
		c.service(t, ns, "big")
		const total, perSlice = 1500, 100
		addr := func(n int) string { return fmt.Sprintf("10.5.%d.%d", n/250, n%250+1) }
		start := time.Now()
		for i := 0; i < total/perSlice; i++ {
			var eps []discoveryv1.Endpoint
			for j := range perSlice {
				n := i*perSlice + j
				eps = append(eps, readyEP(fmt.Sprintf("big-%d", n), addr(n)))
			}
			c.create(t, sliceSpec{namespace: ns, name: fmt.Sprintf("big-%02d", i), service: "big", ports: ports(http), endpoints: eps})
		}
		written := time.Since(start)
		svc := "big.large.svc.cluster.local."
		all := []string{"NOERROR"}
		for n := range total {
			all = append(all, "A "+addr(n))
		}
		probe.wait(t, svc, dns.TypeA, all...) // about 24 kB: over TCP after a truncated UDP answer
		sink.waitFor(t, "1500 ready endpoints", func(s *recordingSink) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			svc, ok := s.services[ns+"/big"]
			if !ok || len(svc.Endpoints) != total {
				return false
			}
			for _, ep := range svc.Endpoints {
				if !ep.Ready || len(ep.Addrs) != 1 {
					return false
				}
			}
			return true
		})
		t.Logf("1500 endpoints in 15 slices: written in %v, all answered %v after the first write", written, time.Since(start))

		// One endpoint changes in one slice: the other 1,499 stay.
		s := sliceSpec{namespace: ns, name: "big-07", service: "big", ports: ports(http)}
		for j := range perSlice {
			n := 7*perSlice + j
			e := readyEP(fmt.Sprintf("big-%d", n), fmt.Sprintf("10.5.%d.%d", n/250, n%250+1))
			if j == 0 {
				e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Terminating: ptr(true)}
			}
			s.endpoints = append(s.endpoints, e)
		}
		c.update(t, s)
		logVisible(t, "one of 1500 endpoints terminating", probe.wait(t, "big-700."+svc, dns.TypeA, "NXDOMAIN"))
		probe.wait(t, svc, dns.TypeA, slices.DeleteFunc(all, func(rr string) bool { return rr == "A "+addr(700) })...)
		sink.waitFor(t, "big-700 not ready", func(s *recordingSink) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			svc := s.services[ns+"/big"]
			ready := 0
			for _, ep := range svc.Endpoints {
				if ep.Ready {
					ready++
				} else if ep.Hostname != "big-700" {
					return false
				}
			}
			return len(svc.Endpoints) == total && ready == total-1
		})
	})

	t.Run("API server outage", func(t *testing.T) {
		ns := c.namespace(t, "outage")
		c.service(t, ns, "web")
		c.service(t, ns, "late")
		web := sliceSpec{namespace: ns, name: "web-a", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.6.0.1"))}
		c.create(t, web)
		svc := "web.outage.svc.cluster.local."
		probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.6.0.1")
		before := sink.snapshot()
		changes := sink.changeCount()
		failures := part.failures()

		stopping := time.Now()
		if err := cp.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		t.Logf("API server stopped in %v", stopped.Sub(stopping))
		// The Watcher has noticed once one of its requests has failed.
		waitUntil(t, "a failed request to the stopped API server", func() bool { return part.failures() > failures })
		if got := sink.snapshot(); !maps2Equal(got, before) {
			t.Errorf("sink changed during the outage:\n got %v\nwant %v", got, before)
		}
		if got, want := probe.query(t, svc, dns.TypeA), []string{"NOERROR", "A 10.6.0.1"}; !slices.Equal(got, want) {
			t.Errorf("during the outage %s A = %q, want %q", svc, got, want)
		}
		if err := cp.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("API server down for %v", time.Since(stopped))
		if got := sink.changesSince(changes); len(got) > 0 {
			t.Errorf("sink changed while the API server was down: %v", got)
		}

		// Changes made once it is back, maybe before the Watcher reconnects.
		web.endpoints = endpoints(readyEP("web-0", "10.6.0.1"), readyEP("web-1", "10.6.0.2"))
		c.update(t, web)
		c.create(t, sliceSpec{namespace: ns, name: "late-a", service: "late", endpoints: endpoints(readyEP("late-0", "10.6.1.1"))})
		logVisible(t, "update after restart", probe.wait(t, svc, dns.TypeA, "NOERROR", "A 10.6.0.1", "A 10.6.0.2"))
		logVisible(t, "create after restart", probe.wait(t, "late.outage.svc.cluster.local.", dns.TypeA, "NOERROR", "A 10.6.1.1"))
		for _, ch := range sink.changesSince(changes) {
			if ch.state == "" {
				t.Errorf("service %s deleted across the outage", ch.key)
			}
		}
	})

	t.Run("watch expired by etcd compaction", func(t *testing.T) {
		ns := c.namespace(t, "expiry")
		for _, name := range []string{"web", "db", "gone", "late"} {
			c.service(t, ns, name)
		}
		webA := sliceSpec{namespace: ns, name: "web-a", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.7.0.1"))}
		webB := sliceSpec{namespace: ns, name: "web-b", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-1", "10.7.0.2"))}
		db := sliceSpec{namespace: ns, name: "db-a", service: "db", endpoints: endpoints(readyEP("db-0", "10.7.1.1"))}
		gone := sliceSpec{namespace: ns, name: "gone-a", service: "gone", endpoints: endpoints(readyEP("gone-0", "10.7.2.1"))}
		for _, s := range []sliceSpec{webA, webB, db, gone} {
			c.create(t, s)
		}
		before := map[string]string{
			ns + "/web":  "ports=http/tcp/80 eps=web-0[10.7.0.1],web-1[10.7.0.2]",
			ns + "/db":   "ports= eps=db-0[10.7.1.1]",
			ns + "/gone": "ports= eps=gone-0[10.7.2.1]",
			ns + "/late": "",
		}
		for k, v := range before {
			sink.waitService(t, k, v)
		}

		// Keep the Watcher on its resource version while the cluster moves
		// on, the history it would resume from is compacted away, and the
		// API server's watch cache starts afresh.
		part.Cut()
		changes := sink.changeCount()
		requests := part.requestCount()
		c.delete(t, ns, "web-b")
		webA.endpoints = endpoints(readyEP("web-0", "10.7.0.1"), readyEP("web-2", "10.7.0.3"))
		c.update(t, webA)
		c.delete(t, ns, "gone-a")
		c.create(t, sliceSpec{namespace: ns, name: "late-a", service: "late", endpoints: endpoints(readyEP("late-0", "10.7.3.1"))})
		if err := cp.CompactEtcd(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cp.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		if err := cp.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		if got := sink.changesSince(changes); len(got) > 0 {
			t.Fatalf("sink changed while cut off: %v", got)
		}
		healed := time.Now()
		part.Heal()

		after := map[string]string{
			ns + "/web":  "ports=http/tcp/80 eps=web-0[10.7.0.1],web-2[10.7.0.3]",
			ns + "/db":   before[ns+"/db"],
			ns + "/gone": "",
			ns + "/late": "ports= eps=late-0[10.7.3.1]",
		}
		zone := ".expiry.svc.cluster.local."
		probe.wait(t, "web"+zone, dns.TypeA, "NOERROR", "A 10.7.0.1", "A 10.7.0.3")
		probe.wait(t, "gone"+zone, dns.TypeA, "NXDOMAIN")
		probe.wait(t, "late"+zone, dns.TypeA, "NOERROR", "A 10.7.3.1")
		probe.wait(t, "db"+zone, dns.TypeA, "NOERROR", "A 10.7.1.1")
		t.Logf("state after the expired watch answered %v after reconnecting", time.Since(healed))
		for k, v := range after {
			sink.waitService(t, k, v)
		}

		// No answer in between was wrong: every service went straight from
		// its old state to its new one.
		for _, ch := range sink.changesSince(changes) {
			if ch.state != before[ch.key] && ch.state != after[ch.key] {
				t.Errorf("service %s went through state %q, neither %q nor %q", ch.key, ch.state, before[ch.key], after[ch.key])
			}
		}
		// And the way there was an expired watch and a relist.
		var expired, relisted bool
		var seen []string
		for _, r := range part.requests(requests) {
			seen = append(seen, fmt.Sprintf("%+v", r))
			if r.watch && (r.status == 410 || r.expired) {
				expired = true
			}
			if r.relist() && r.status == 200 {
				relisted = true
			}
		}
		if !expired || !relisted {
			t.Errorf("want a watch that expired (410), then a relist; requests after the cut: %s", strings.Join(seen, " "))
		}
		t.Logf("requests after the cut: %s", strings.Join(seen, " "))
	})
}

// logVisible records how long a change took to reach the sink after the API
// server acknowledged it.
func logVisible(t *testing.T, what string, d time.Duration) {
	t.Helper()
	t.Logf("%s: visible %v after the write returned", what, d.Round(time.Microsecond))
}

// cluster writes objects as an administrator.
type cluster struct {
	admin kubernetes.Interface
}

// namespace creates the namespace name and returns it.
func (c *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := c.admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

// service creates a headless service without selector: the test writes its
// slices itself.
func (c *cluster) service(t *testing.T, namespace, name string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
	}
	if _, err := c.admin.CoreV1().Services(namespace).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) create(t *testing.T, s sliceSpec) {
	t.Helper()
	if _, err := c.admin.DiscoveryV1().EndpointSlices(s.namespace).Create(context.Background(), s.build(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// update replaces the slice with s (read-modify-write on its resource
// version).
func (c *cluster) update(t *testing.T, s sliceSpec) {
	t.Helper()
	ctx := context.Background()
	cur, err := c.admin.DiscoveryV1().EndpointSlices(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := s.build()
	next.ResourceVersion = cur.ResourceVersion
	if _, err := c.admin.DiscoveryV1().EndpointSlices(s.namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) delete(t *testing.T, namespace, name string) {
	t.Helper()
	if err := c.admin.DiscoveryV1().EndpointSlices(namespace).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
