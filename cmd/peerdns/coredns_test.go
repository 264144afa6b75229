package main

import (
	"context"
	"fmt"
	"log/slog"
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
	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/testtools"
)

// digResult is what dig printed, reduced to what must match between peerdns
// directly and peerdns behind CoreDNS: the status and the records.
type digResult struct {
	status  string
	records []string
	tcp     bool // dig retried over TCP after TC
}

func runDig(t *testing.T, server string, port int, args ...string) digResult {
	t.Helper()
	r, err := tryDig(t, server, port, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryDig is runDig for a server that may not be listening yet.
func tryDig(t *testing.T, server string, port int, args ...string) (digResult, error) {
	t.Helper()
	args = append([]string{"@" + server, "-p", fmt.Sprint(port), "+time=5", "+tries=1", "+noall", "+comments", "+answer", "+authority", "+additional"}, args...)
	var r digResult
	out, err := exec.Command(testtools.Path(t, "dig"), args...).CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("dig %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(line, "status: "):
			r.status = strings.TrimSuffix(strings.Fields(line[strings.Index(line, "status: "):])[1], ",")
		case strings.Contains(line, "Truncated, retrying in TCP mode"):
			r.tcp = true
		case line == "" || strings.HasPrefix(line, ";"):
		default:
			r.records = append(r.records, strings.Join(strings.Fields(line), " "))
		}
	}
	slices.Sort(r.records)
	return r, nil
}

// TestBehindCoreDNS is the stub-domain setup users run: CoreDNS forwards a
// zone to peerdns. dig through CoreDNS, over UDP and TCP, must get what it
// gets from peerdns directly, including an SRV answer only TCP can carry.
func TestBehindCoreDNS(t *testing.T) {
	coredns := testtools.Path(t, "coredns")
	testtools.Path(t, "dig")
	cp := controlplane.StartT(t, controlplane.Options{})
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	ctx := t.Context()

	// db: 150 endpoints in two slices, so SRV needs TCP.
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "client", Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for s := range 2 {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("db-%d", s), Labels: map[string]string{
				discoveryv1.LabelServiceName: "db", corev1.IsHeadlessService: "",
			}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("client"), Port: ptr(int32(5432)), Protocol: ptr(corev1.ProtocolTCP)}},
		}
		for i := s * 75; i < (s+1)*75; i++ {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{fmt.Sprintf("10.7.%d.%d", i/200, i%200+1)},
				Hostname:  ptr(fmt.Sprintf("db-%d", i)),
			})
		}
		if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var cfg config
	if _, err := newFlags(&cfg).Parse([]string{
		"--kubeconfig", cp.Kubeconfig(), "--dns.zone", "peerdns.internal.",
		"--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0", "--dns.lame-duck", "0s",
	}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
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
	var a *app
	select {
	case a = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	peerdns := a.dnsServer.Addr()

	port := testtools.FreePort(t, "127.0.0.1")
	corefile := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(corefile, fmt.Appendf(nil, "peerdns.internal:%d {\n  bind 127.0.0.1\n  forward . %s\n}\n", port, peerdns), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := proc.Start("coredns", coredns, []string{"-conf", corefile}, filepath.Join(t.TempDir(), "coredns.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("coredns output:\n%s", p.Tail(30))
		}
	})

	// Both are ready once the direct answer is the full one and CoreDNS
	// forwards it.
	const srv = "_client._tcp.db.default.svc.peerdns.internal"
	deadline := time.Now().Add(30 * time.Second)
	for {
		direct := runDig(t, "127.0.0.1", int(peerdns.Port()), "+tcp", "SRV", srv)
		via, err := tryDig(t, "127.0.0.1", port, "+tcp", "SRV", srv)
		if direct.status == "NOERROR" && len(direct.records) == 300 && err == nil && via.status == "NOERROR" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: direct %s with %d records, via CoreDNS %s %v", direct.status, len(direct.records), via.status, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}

	for _, tc := range []struct {
		name string
		args []string
		tcp  bool // dig must have retried over TCP
	}{
		{name: "per-ordinal A", args: []string{"A", "db-7.db.default.svc.peerdns.internal"}},
		{name: "large SRV over UDP retries over TCP", args: []string{"+bufsize=1232", "SRV", srv}, tcp: true},
		{name: "large SRV without EDNS retries over TCP", args: []string{"+noedns", "SRV", srv}, tcp: true},
		{name: "large SRV over TCP", args: []string{"+tcp", "SRV", srv}},
		{name: "service A over TCP", args: []string{"+tcp", "A", "db.default.svc.peerdns.internal"}},
		{name: "NXDOMAIN", args: []string{"A", "nope.default.svc.peerdns.internal"}},
		{name: "NODATA", args: []string{"AAAA", "db-7.db.default.svc.peerdns.internal"}},
		{name: "PTR-less zone apex", args: []string{"SOA", "peerdns.internal"}},
		{name: "schema version", args: []string{"TXT", "dns-version.peerdns.internal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := runDig(t, "127.0.0.1", int(peerdns.Port()), tc.args...)
			via := runDig(t, "127.0.0.1", port, tc.args...)
			if direct.status != via.status || !slices.Equal(direct.records, via.records) {
				t.Errorf("direct: %s %d records; via CoreDNS: %s %d records\ndirect: %q\nvia:    %q",
					direct.status, len(direct.records), via.status, len(via.records), direct.records, via.records)
			}
			if tc.tcp && (!direct.tcp || !via.tcp) {
				t.Errorf("TCP retry: direct %v, via CoreDNS %v; want both", direct.tcp, via.tcp)
			}
		})
	}
}
