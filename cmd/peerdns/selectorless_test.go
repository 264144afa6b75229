package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// TestSelectorlessLikeCoreDNS: a selectorless headless Service whose
// EndpointSlice was written by hand (only the kubernetes.io/service-name
// label) gets from peerdns with --kube.read-services the answers CoreDNS's
// kubernetes plugin gives for it, record for record; without the flag it
// is NXDOMAIN. A selectorless Service with a cluster IP is never served.
func TestSelectorlessLikeCoreDNS(t *testing.T) {
	coredns := testtools.Path(t, "coredns")
	testtools.Path(t, "dig")
	cp := controlplane.StartT(t, controlplane.Options{})
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	ctx := t.Context()
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "client", Port: 5432}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
	} {
		if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc.Name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr(svc.Spec.Ports[0].Name), Port: ptr(svc.Spec.Ports[0].Port), Protocol: ptr(corev1.ProtocolTCP)}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.9.0.1"}, Hostname: ptr(svc.Name + "-0")},
				{Addresses: []string{"10.9.0.2"}, Hostname: ptr(svc.Name + "-1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
				{Addresses: []string{"10.9.0.3"}},
				{Addresses: []string{"10.9.0.4"}, Hostname: ptr(svc.Name + "-3"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	reading := startPeerdns(t, "--kubeconfig", cp.Kubeconfig(), "--dns.zone", "cluster.local.", "--kube.read-services")
	plain := startPeerdns(t, "--kubeconfig", cp.Kubeconfig(), "--dns.zone", "cluster.local.")
	port := testtools.FreePort(t, "127.0.0.1")
	corefile := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(corefile, fmt.Appendf(nil, "cluster.local:%d {\n  bind 127.0.0.1\n  kubernetes cluster.local {\n    kubeconfig %s\n  }\n}\n", port, cp.Kubeconfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(coredns, "-conf", corefile)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // the kill's "signal: killed"
	})

	const svc = "db.default.svc.cluster.local"
	testtools.Eventually(t, "all three synced", 30*time.Second, func() error {
		for _, p := range []struct {
			port   int
			status string
		}{{port, "NOERROR"}, {int(reading.Port()), "NOERROR"}, {int(plain.Port()), "NXDOMAIN"}} {
			r, err := tryDig(t, "127.0.0.1", p.port, "A", svc)
			if err != nil {
				return err
			}
			if r.status != p.status {
				return fmt.Errorf("port %d: %s, want %s", p.port, r.status, p.status)
			}
		}
		return nil
	})
	for _, q := range [][]string{
		{"A", svc},
		{"A", "db-0." + svc},
		{"A", "10-9-0-3." + svc},
		{"SRV", "_client._tcp." + svc},
	} {
		t.Run(q[0]+" "+q[1], func(t *testing.T) {
			want := runDig(t, "127.0.0.1", port, q...)
			got := runDig(t, "127.0.0.1", int(reading.Port()), q...)
			if got.status != want.status || !slices.Equal(got.records, want.records) {
				t.Errorf("peerdns --kube.read-services: %s %q\nCoreDNS: %s %q", got.status, got.records, want.status, want.records)
			}
			if r := runDig(t, "127.0.0.1", int(plain.Port()), q...); r.status != "NXDOMAIN" {
				t.Errorf("peerdns without --kube.read-services: %s, want NXDOMAIN", r.status)
			}
		})
	}
	if r := runDig(t, "127.0.0.1", int(reading.Port()), "A", "api.default.svc.cluster.local"); r.status != "NXDOMAIN" {
		t.Errorf("selectorless ClusterIP service: %s %q, want NXDOMAIN (the cluster DNS answers its cluster IP)", r.status, r.records)
	}
}
