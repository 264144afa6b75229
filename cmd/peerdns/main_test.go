package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/docgen"
	"github.com/peerdns/peerdns/internal/promcheck"
)

var update = flag.Bool("update", false, "rewrite the README's generated sections")

// offlineApp builds peerdns on loopback against an API server that is never
// contacted, to inspect its flags and metrics.
func offlineApp(t *testing.T) *app {
	t.Helper()
	var cfg config
	fs := newFlags(&cfg, io.Discard)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	const unreachable = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(kubeconfig, []byte(unreachable), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--kubeconfig", kubeconfig, "--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.dnsServer.Close)
	return a
}

// TestREADME fails when the README's flags or metrics tables are stale;
// `make docs` rewrites them.
func TestREADME(t *testing.T) {
	var cfg config
	flags := docgen.FlagsTable(newFlags(&cfg, io.Discard))
	if err := docgen.Section("../../README.md", "peerdns-flags", flags, *update); err != nil {
		t.Error(err)
	}
	metrics, err := docgen.MetricsTable(docgen.Own(offlineApp(t).reg, "peerdns_"))
	if err != nil {
		t.Fatal(err)
	}
	if err := docgen.Section("../../README.md", "peerdns-metrics", metrics, *update); err != nil {
		t.Error(err)
	}
}

func TestMetricsLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(offlineApp(t).reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "version", args: []string{"--version"}, code: 0, out: "peerdns "},
		{name: "help", args: []string{"--help"}, code: 0, out: "--dns.zone"},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, out: "flag provided but not defined"},
		{name: "stray argument", args: []string{"serve"}, code: 2, out: "unexpected arguments"},
		{name: "bad log level", args: []string{"--log.level", "loud"}, code: 2, out: "--log.level"},
		{name: "bad zone", args: []string{"--dns.zone", "a..b", "--kubeconfig", "/nonexistent"}, code: 1, out: "not a domain name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &out); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out.String())
			}
			if !strings.Contains(strings.ReplaceAll(out.String(), "\n  -", "--"), strings.TrimPrefix(tc.out, "-")) {
				t.Errorf("output lacks %q:\n%s", tc.out, out.String())
			}
		})
	}
}

// TestAgainstAPIServer runs peerdns as users do, against a real API server:
// SERVFAIL-free answers once synced, /readyz, and the lame-duck shutdown.
func TestAgainstAPIServer(t *testing.T) {
	cp := controlplane.StartT(t, controlplane.Options{})
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	ctx := t.Context()
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "web", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ready := true
	name, port, proto := "web", int32(80), corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-abc", Labels: map[string]string{
			discoveryv1.LabelServiceName: "nginx", corev1.IsHeadlessService: "",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.1.0.1"}, Hostname: ptr("web-0"), Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.1.0.2"}, Hostname: ptr("web-1"), Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
		},
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var cfg config
	if err := newFlags(&cfg, io.Discard).Parse([]string{
		"--kubeconfig", cp.Kubeconfig(), "--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0",
		"--dns.lame-duck", "1s",
	}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan *app, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(runCtx, &cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), func(a *app) { started <- a })
	}()
	var a *app
	select {
	case a = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	dnsAddr, readyz := a.dnsServer.Addr().String(), "http://"+a.webServer.Addr().String()+"/readyz"

	query := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("_web._tcp.nginx.default.svc.cluster.local.", dns.TypeSRV)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	status := func() int {
		resp, err := http.Get(readyz)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for status() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never became ready")
		}
		if r := query(); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("before sync: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for sync
	}
	if r := query(); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 || len(r.Extra) != 2 {
		t.Fatalf("after sync: %v", r)
	}
	// What an operator's Prometheus sees: the exposition passes promtool's
	// linter, and a real server scrapes the sync state and the answers.
	promcheck.Lint(t, "http://"+a.webServer.Addr().String()+"/metrics")
	prom := promcheck.Start(t, a.webServer.Addr().String())
	prom.WaitFor(t, "peerdns_kube_synced", 1, 30*time.Second)
	prom.WaitFor(t, "peerdns_services", 1, 30*time.Second)

	stop()
	// Lame duck: unready, still answering.
	deadline = time.Now().Add(5 * time.Second)
	for status() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready after shutdown began")
		}
	}
	if r := query(); r.Rcode != dns.RcodeSuccess {
		t.Errorf("during lame duck: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
