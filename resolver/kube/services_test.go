package kube

import (
	"context"
	"log/slog"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/resolver"
)

// TestSelectorlessServices runs the Watcher with ReadServices against a real
// API server. The slices a user (or a controller other than the
// endpointslice controller) writes for a selectorless Service carry only the
// kubernetes.io/service-name label: they are served when the Service is
// headless, with the answers CoreDNS's kubernetes plugin gives (every ready
// address, a name per endpoint, SRV 0 100/N per named port), and not served
// when it is not. Without ReadServices they are not served at all.
func TestSelectorlessServices(t *testing.T) {
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
	// The rules the chart grants with readServices on.
	saConfig, err := cp.ServiceAccountConfig(ctx, "peerdns-system", "peerdns", []rbacv1.PolicyRule{
		{APIGroups: []string{discoveryv1.GroupName}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{corev1.GroupName}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	setClientDefaults(saConfig)

	ns := c.namespace(t, "selectorless")
	// db: headless, no selector; its slice written by hand, as a user
	// moving off the Endpoints API writes it.
	c.service(t, ns, "db")
	http := namedPort("client", corev1.ProtocolTCP, 5432)
	c.create(t, sliceSpec{namespace: ns, name: "db-1", service: "db", notHeadless: true, ports: ports(http),
		endpoints: endpoints(readyEP("db-0", "10.9.0.1"), readyEP("db-1", "10.9.0.2"), endpointSpec{addrs: []string{"10.9.0.3"}}.build())})
	// api: a selectorless ClusterIP service with a hand-written slice.
	if _, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.create(t, sliceSpec{namespace: ns, name: "api-1", service: "api", notHeadless: true, endpoints: endpoints(readyEP("", "10.9.1.1"))})
	// web: headless with a selector, its slice as the controller labels it.
	c.service(t, ns, "web")
	c.create(t, sliceSpec{namespace: ns, name: "web-1", service: "web", endpoints: endpoints(readyEP("web-0", "10.9.2.1"))})

	start := func(t *testing.T, readServices bool) dnsProbe {
		sink := newRecordingSink()
		store := resolver.NewStore()
		probe := startDNS(t, store, sink)
		w, err := New(Config{
			RESTConfig:   saConfig,
			Sink:         teeSink{store, sink},
			ReadServices: readServices,
			Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
			Registerer:   prometheus.NewRegistry(),
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
		sink.waitFor(t, "synced", (*recordingSink).isSynced)
		return probe
	}
	const z = ".selectorless.svc.cluster.local."

	t.Run("without ReadServices", func(t *testing.T) {
		probe := start(t, false)
		probe.wait(t, "web"+z, dns.TypeA, "NOERROR", "A 10.9.2.1")
		probe.wait(t, "db"+z, dns.TypeA, "NXDOMAIN")
		probe.wait(t, "api"+z, dns.TypeA, "NXDOMAIN")
	})

	t.Run("with ReadServices", func(t *testing.T) {
		probe := start(t, true)
		probe.wait(t, "web"+z, dns.TypeA, "NOERROR", "A 10.9.2.1")
		probe.wait(t, "db"+z, dns.TypeA, "NOERROR", "A 10.9.0.1", "A 10.9.0.2", "A 10.9.0.3")
		probe.wait(t, "db-1.db"+z, dns.TypeA, "NOERROR", "A 10.9.0.2")
		probe.wait(t, "10-9-0-3.db"+z, dns.TypeA, "NOERROR", "A 10.9.0.3")
		probe.wait(t, "_client._tcp.db"+z, dns.TypeSRV, "NOERROR",
			"SRV 0 33 5432 db-0.db"+z, "SRV 0 33 5432 db-1.db"+z, "SRV 0 33 5432 10-9-0-3.db"+z)
		// Not headless: the cluster DNS answers its cluster IP.
		probe.wait(t, "api"+z, dns.TypeA, "NXDOMAIN")

		// The Service goes, the hand-written slice stays (nothing owns
		// it): the names go with the Service.
		if err := admin.CoreV1().Services(ns).Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		probe.wait(t, "db"+z, dns.TypeA, "NXDOMAIN")
		// And come back with it.
		c.service(t, ns, "db")
		probe.wait(t, "db-0.db"+z, dns.TypeA, "NOERROR", "A 10.9.0.1")
		// A slice written later for a headless Service that exists.
		c.service(t, ns, "late")
		c.create(t, sliceSpec{namespace: ns, name: "late-1", service: "late", notHeadless: true, endpoints: endpoints(readyEP("late-0", "10.9.3.1"))})
		probe.wait(t, "late-0.late"+z, dns.TypeA, "NOERROR", "A 10.9.3.1")
	})
}
