package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/docgen"
	"github.com/peerdns/peerdns/internal/promcheck"
	"github.com/peerdns/peerdns/internal/testtools"
)

var update = flag.Bool("update", false, "rewrite the README's generated sections")

// offlineApp builds peerdns on loopback against an API server that is never
// contacted, to inspect its flags and metrics.
func offlineApp(t *testing.T) *app {
	t.Helper()
	var cfg config
	fs := newFlags(&cfg)
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
	if _, err := fs.Parse([]string{"--kubeconfig", kubeconfig, "--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0",
		// Transfers on, so their metrics are listed too.
		"--dns.transfer.allow", "127.0.0.1/32", "--dns.transfer.notify", "127.0.0.1:5300"}); err != nil {
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
	flags := docgen.FlagsTable(newFlags(&cfg).Model())
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

// TestCommandLine runs peerdns as a user would and checks the exit code and
// what it prints: a bad command line is one line on stderr naming the flag,
// and exit code 2.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring of stdout
		stderr string // the whole of stderr, or its start when it does not end in a newline
	}{
		{name: "version", args: []string{"--version"}, stdout: "peerdns, version "},
		{name: "help", args: []string{"--help"}, stdout: "--dns.zone"},
		{name: "short help", args: []string{"-h"}, stdout: "--web.config.file"},
		{name: "unknown flag", args: []string{"--nope"}, code: 2,
			stderr: "peerdns: error: unknown long flag '--nope', try --help\n"},
		{name: "single dash", args: []string{"-dns.ttl=5"}, code: 2,
			stderr: "peerdns: error: unknown short flag '-d', try --help\n"},
		{name: "stray argument", args: []string{"serve"}, code: 2,
			stderr: "peerdns: error: unexpected serve, try --help\n"},
		{name: "missing value", args: []string{"--dns.ttl"}, code: 2,
			stderr: "peerdns: error: expected argument for flag '--dns.ttl', try --help\n"},
		{name: "bad number", args: []string{"--dns.ttl=-1"}, code: 2,
			stderr: "peerdns: error: --dns.ttl: invalid value \"-1\": invalid syntax, try --help\n"},
		{name: "bad duration", args: []string{"--dns.lame-duck=5"}, code: 2,
			stderr: "peerdns: error: --dns.lame-duck: invalid value \"5\": time: missing unit in duration \"5\", try --help\n"},
		{name: "repeated flag", args: []string{"--dns.ttl=5", "--dns.ttl=6"}, code: 2,
			stderr: "peerdns: error: flag 'dns.ttl' cannot be repeated, try --help\n"},
		{name: "bad log level", args: []string{"--log.level", "loud"}, code: 2,
			stderr: "peerdns: error: --log.level: invalid value \"loud\": unrecognized log level loud, try --help\n"},
		{name: "bad log format", args: []string{"--log.format", "xml"}, code: 2,
			stderr: "peerdns: error: --log.format: invalid value \"xml\": "},
		{name: "TTL out of range", args: []string{"--dns.ttl", "2147483648"}, code: 2,
			stderr: "peerdns: error: --dns.ttl: 2147483648 seconds: at most 2147483647, try --help\n"},
		{name: "UDP size out of range", args: []string{"--dns.udp-size", "100"}, code: 2,
			stderr: "peerdns: error: --dns.udp-size: 100: not in [512, 65535], try --help\n"},
		{name: "max UDP size out of range", args: []string{"--dns.max-udp-size", "70000"}, code: 2,
			stderr: "peerdns: error: --dns.max-udp-size: 70000: not in [512, 65535], try --help\n"},
		{name: "missing web config file", args: []string{"--web.config.file", "/nonexistent"}, code: 2,
			stderr: "peerdns: error: --web.config.file: "},
		{name: "bad zone", args: []string{"--dns.zone", "a..b", "--kubeconfig", "/nonexistent",
			"--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0"}, code: 2,
			stderr: "peerdns: error: --dns.zone: zone \"a..b\": not a domain name, try --help\n"},
		{name: "bad transfer range", args: []string{"--dns.transfer.allow", "10.0.0.0/33"}, code: 2,
			stderr: "peerdns: error: --dns.transfer.allow: \"10.0.0.0/33\": not a CIDR or an address, try --help\n"},
		{name: "missing TSIG key", args: []string{"--dns.transfer.tsig-key", "/nonexistent"}, code: 2,
			stderr: "peerdns: error: --dns.transfer.tsig-key: "},
		{name: "bad notify address", args: []string{"--dns.transfer.notify", "[fd00::1"}, code: 2,
			stderr: "peerdns: error: --dns.transfer.notify: "},
		{name: "missing kubeconfig", args: []string{"--kubeconfig", "/nonexistent",
			"--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0"}, code: 2,
			stderr: "peerdns: error: --kubeconfig: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testtools.CheckCommandLine(t, run, testtools.CommandLine{Args: tc.args, Code: tc.code, Stdout: tc.stdout, Stderr: tc.stderr})
		})
	}
}

// TestZonesFlag checks that --dns.zone is repeatable and comma-separated,
// and that the first one replaces the default rather than adding to it.
func TestZonesFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{name: "default", want: []string{"cluster.local."}},
		{name: "one", args: []string{"--dns.zone=peers.internal."}, want: []string{"peers.internal."}},
		{name: "repeated and comma-separated", args: []string{"--dns.zone=a.", "--dns.zone", "b., 10.in-addr.arpa."},
			want: []string{"a.", "b.", "10.in-addr.arpa."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg config
			if _, err := newFlags(&cfg).Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, []string(cfg.zones)); diff != "" {
				t.Errorf("zones (-want +got):\n%s", diff)
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
	if _, err := newFlags(&cfg).Parse([]string{
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
