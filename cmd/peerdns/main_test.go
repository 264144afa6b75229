package main

import (
	"context"
	"encoding/hex"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
		{name: "NSID too long", args: []string{"--dns.nsid", strings.Repeat("n", 256)}, code: 2,
			stderr: "peerdns: error: --dns.nsid: \"" + strings.Repeat("n", 256) + "\": 256 bytes, at most 255, try --help\n"},
		{name: "negative max staleness", args: []string{"--kube.max-staleness=-1s"}, code: 2,
			stderr: "peerdns: error: --kube.max-staleness: -1s: negative, try --help\n"},
		{name: "missing web config file", args: []string{"--web.config.file", "/nonexistent"}, code: 2,
			stderr: "peerdns: error: --web.config.file: "},
		{name: "bad zone", args: []string{"--dns.zone", "a..b", "--kubeconfig", "/nonexistent",
			"--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0"}, code: 2,
			stderr: "peerdns: error: --dns.zone: zone \"a..b\": not a domain name, try --help\n"},
		{name: "root zone", args: []string{"--dns.zone=."}, code: 2,
			stderr: "peerdns: error: --dns.zone: zone \".\": the root zone: peerdns would answer for every name on the internet, try --help\n"},
		{name: "overlapping zones", args: []string{"--dns.zone=cluster.local.,peers.cluster.local."}, code: 2,
			stderr: "peerdns: error: --dns.zone: zone \"peers.cluster.local.\" is inside zone \"cluster.local.\", whose names it would hide, try --help\n"},
		{name: "bad listen address", args: []string{"--dns.listen-address=53"}, code: 2,
			stderr: "peerdns: error: --dns.listen-address: \"53\": "},
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

// TestNSIDFlag: --dns.nsid, else $POD_NAME, else the host name.
func TestNSIDFlag(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		podName string
		want    string
	}{
		{name: "flag", args: []string{"--dns.nsid=replica-a"}, podName: "peerdns-7d4f-x2", want: "replica-a"},
		{name: "pod name", podName: "peerdns-7d4f-x2", want: "peerdns-7d4f-x2"},
		{name: "host name", want: host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAME", tc.podName)
			var cfg config
			if _, err := newFlags(&cfg).Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			rcfg, err := cfg.resolverConfig()
			if err != nil {
				t.Fatal(err)
			}
			if rcfg.NSID != tc.want {
				t.Errorf("NSID %q, want %q", rcfg.NSID, tc.want)
			}
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
		// Not cluster.local.: behind a cluster DNS, a stub zone for the
		// cluster domain hides every service that is not headless.
		{name: "default", want: []string{"peerdns.internal."}},
		{name: "one", args: []string{"--dns.zone=peerdns.internal."}, want: []string{"peerdns.internal."}},
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
		"--dns.lame-duck", "1s", "--dns.nsid", "replica-a",
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
		m.SetQuestion("_web._tcp.nginx.default.svc.peerdns.internal.", dns.TypeSRV) // the default zone
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
	// Which replica answered: --dns.nsid, to a client that asks (dig +nsid).
	m := new(dns.Msg)
	m.SetQuestion("nginx.default.svc.peerdns.internal.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	var nsid *dns.EDNS0_NSID
	if o := r.IsEdns0(); o != nil && len(o.Option) == 1 {
		nsid, _ = o.Option[0].(*dns.EDNS0_NSID)
	}
	if nsid == nil || nsid.Nsid != hex.EncodeToString([]byte("replica-a")) {
		t.Errorf("NSID: %v, want replica-a", r.IsEdns0())
	}
	// What an operator's Prometheus sees: the exposition passes promtool's
	// linter, and a real server scrapes the sync state and the answers,
	// with CoreDNS's labels.
	promcheck.Lint(t, "http://"+a.webServer.Addr().String()+"/metrics")
	prom := promcheck.Start(t, a.webServer.Addr().String())
	prom.WaitFor(t, "peerdns_kube_synced", 1, 30*time.Second)
	prom.WaitFor(t, "peerdns_services", 1, 30*time.Second)
	prom.WaitFor(t, `sum(peerdns_dns_responses_total{server="dns://127.0.0.1:0",zone="peerdns.internal.",rcode="NOERROR"}) > bool 0`, 1, 30*time.Second)
	prom.WaitFor(t, `sum(peerdns_dns_requests_total{zone="peerdns.internal.",proto="udp",family="1",type="SRV"}) > bool 0`, 1, 30*time.Second)

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
