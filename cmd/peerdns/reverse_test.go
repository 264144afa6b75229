package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// startPeerdns serves peerdns with args (and loopback ports) until the test
// ends, and returns its DNS address.
func startPeerdns(t *testing.T, args ...string) netip.AddrPort {
	t.Helper()
	var cfg config
	args = append(args, "--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0", "--dns.lame-duck", "0s")
	if _, err := newFlags(&cfg).Parse(args); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	started := make(chan *app, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(runCtx, &cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), func(a *app) { started <- a })
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-started:
		return a.dnsServer.Addr()
	case err := <-done:
		t.Fatal(err)
	}
	return netip.AddrPort{}
}

// TestReverseZones checks what the docs recommend for PTR records: give
// peerdns only a reverse zone whose addresses are all endpoints of headless
// services (here 250.10.in-addr.arpa., a pod address pool of their own) and
// forward it from a CoreDNS whose kubernetes plugin keeps in-addr.arpa:
// the pool's PTR come from peerdns, a cluster IP's PTR still from CoreDNS.
// And what they warn against: a peerdns given 10.in-addr.arpa. answers the
// cluster IP's PTR NXDOMAIN, authoritatively, so forwarding that zone to it
// would hide every other PTR in 10.0.0.0/8.
func TestReverseZones(t *testing.T) {
	coredns := testtools.Path(t, "coredns")
	testtools.Path(t, "dig")
	cp := controlplane.StartT(t, controlplane.Options{})
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	ctx := t.Context()

	api, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "client", Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: "db", corev1.IsHeadlessService: "",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("client"), Port: ptr(int32(5432)), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.250.0.1"}, Hostname: ptr("db-0")}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clusterIP := netip.MustParseAddr(api.Spec.ClusterIP)
	ipPTR := func(a netip.Addr) string {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
	}

	safe := startPeerdns(t, "--kubeconfig", cp.Kubeconfig(), "--dns.zone", "peerdns.internal.,250.10.in-addr.arpa.")
	port := testtools.FreePort(t, "127.0.0.1")
	corefile := filepath.Join(t.TempDir(), "Corefile")
	text := fmt.Sprintf(`cluster.local:%[1]d in-addr.arpa:%[1]d {
  bind 127.0.0.1
  kubernetes cluster.local in-addr.arpa {
    kubeconfig %[2]s
    fallthrough in-addr.arpa
  }
}
peerdns.internal:%[1]d 250.10.in-addr.arpa:%[1]d {
  bind 127.0.0.1
  forward . %[3]s
}
`, port, cp.Kubeconfig(), safe)
	if err := os.WriteFile(corefile, []byte(text), 0o644); err != nil {
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

	want := func(name string, status string, records ...string) func() error {
		return func() error {
			got, err := tryDig(t, "127.0.0.1", port, "PTR", name)
			if err != nil {
				return err
			}
			var ptrs []string
			for _, r := range got.records {
				if f := strings.Fields(r); len(f) == 5 && f[3] == "PTR" {
					ptrs = append(ptrs, f[4])
				}
			}
			if got.status != status || !slices.Equal(ptrs, records) {
				return fmt.Errorf("PTR %s via CoreDNS: %s %q, want %s %q", name, got.status, ptrs, status, records)
			}
			return nil
		}
	}
	testtools.Eventually(t, "PTR of a pool address from peerdns", 30*time.Second,
		want("1.0.250.10.in-addr.arpa", "NOERROR", "db-0.db.default.svc.peerdns.internal."))
	testtools.Eventually(t, "PTR of the cluster IP from CoreDNS", 30*time.Second,
		want(ipPTR(clusterIP), "NOERROR", "api.default.svc.cluster.local."))

	unsafe := startPeerdns(t, "--kubeconfig", cp.Kubeconfig(), "--dns.zone", "peerdns.internal.,10.in-addr.arpa.")
	testtools.Eventually(t, "peerdns given 10.in-addr.arpa. answers for the cluster IP", 30*time.Second, func() error {
		got, err := tryDig(t, unsafe.Addr().String(), int(unsafe.Port()), "+norecurse", "PTR", ipPTR(clusterIP))
		if err != nil {
			return err
		}
		if got.status != "NXDOMAIN" {
			return fmt.Errorf("PTR %s from peerdns: %s, want NXDOMAIN", ipPTR(clusterIP), got.status)
		}
		return nil
	})
}
