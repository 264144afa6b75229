package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/internal/docgen"
	"github.com/peerdns/peerdns/internal/testtools"
)

var update = flag.Bool("update", false, "regenerate the generated sections of docs/peeragent.md")

// binary is the peeragent built once for the tests that run processes.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(func() int {
		if !testing.Short() {
			dir, err := os.MkdirTemp("", "peeragent-test")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binary = filepath.Join(dir, "peeragent")
			out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}())
}

const docPath = "../../README.md"

// TestREADME fails when the flags or metrics tables in README.md no
// longer match the code; `make docs` regenerates them.
func TestREADME(t *testing.T) {
	var cfg config
	flags := docgen.FlagsTable(newFlags(&cfg).Model())
	if err := docgen.Section(docPath, "peeragent-flags", flags, *update); err != nil {
		t.Error(err)
	}

	// An agent that is built but not run registers every metric; a keyring
	// gives the key metrics a series.
	keys := t.TempDir()
	if err := os.WriteFile(filepath.Join(keys, "primary"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	dcfg := discovery.DefaultConfig()
	dcfg.NodeName, dcfg.Expected, dcfg.PeersSRV, dcfg.KeyringDir = "web-0", 3, "_gossip._tcp.web", keys
	dcfg.Registerer = reg
	if _, err := discovery.New(dcfg); err != nil {
		t.Fatal(err)
	}
	metrics, err := docgen.MetricsTable(docgen.Own(reg, "peeragent_"))
	if err != nil {
		t.Fatal(err)
	}
	if err := docgen.Section(docPath, "peeragent-metrics", metrics, *update); err != nil {
		t.Error(err)
	}
}

// TestDiscoveryConfigDefaults checks where the node name and the advertised
// address come from: the flags, else the pod's environment the chart sets,
// else the hostname.
func TestDiscoveryConfigDefaults(t *testing.T) {
	host := func() (string, error) { return "db-2.example.internal", nil }
	parse := func(t *testing.T, env map[string]string, args ...string) discovery.Config {
		t.Helper()
		for _, k := range []string{"POD_NAME", "POD_IP", "POD_NAMESPACE", "NODE_VERSION", "NODE_ZONE"} {
			t.Setenv(k, env[k])
		}
		var cfg config
		if _, err := newFlags(&cfg).Parse(args); err != nil {
			t.Fatal(err)
		}
		dc, err := cfg.discoveryConfig(func(k string) string { return env[k] }, host)
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	pod := map[string]string{"POD_NAME": "db-1", "POD_IP": "10.0.0.7"}
	t.Run("from the pod's environment", func(t *testing.T) {
		dc := parse(t, pod, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		if dc.NodeName != "db-1" || dc.AdvertiseAddr != "10.0.0.7" || dc.BindAddr != ":7946" {
			t.Errorf("node %q advertise %q listen %q; want db-1, 10.0.0.7, :7946", dc.NodeName, dc.AdvertiseAddr, dc.BindAddr)
		}
		if dc.Timing != discovery.LANTiming() {
			t.Errorf("timing %+v, want the LAN profile", dc.Timing)
		}
	})
	t.Run("from the hostname", func(t *testing.T) {
		dc := parse(t, nil, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		if dc.NodeName != "db-2" || dc.AdvertiseAddr != "" {
			t.Errorf("node %q advertise %q; want db-2 and no advertise address", dc.NodeName, dc.AdvertiseAddr)
		}
	})
	t.Run("cluster label, version and zone from the pod", func(t *testing.T) {
		pod := map[string]string{"POD_NAME": "db-1", "POD_NAMESPACE": "prod", "NODE_VERSION": "16.4", "NODE_ZONE": "eu-1a"}
		dc := parse(t, pod, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		if dc.Label != "prod/db" || dc.Version != "16.4" || dc.Zone != "eu-1a" {
			t.Errorf("label %q version %q zone %q; want prod/db (namespace/StatefulSet), 16.4, eu-1a", dc.Label, dc.Version, dc.Zone)
		}
		dc = parse(t, pod, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db", "--cluster.label=mine", "--node.version=17", "--node.zone=z")
		if dc.Label != "mine" || dc.Version != "17" || dc.Zone != "z" {
			t.Errorf("label %q version %q zone %q; want the flags' mine, 17, z", dc.Label, dc.Version, dc.Zone)
		}
		dc = parse(t, map[string]string{"POD_NAME": "db-1"}, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		if dc.Label != "" {
			t.Errorf("label %q without $POD_NAMESPACE; want none", dc.Label)
		}
	})
	t.Run("size source", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  map[string]string
			args []string
			want string
		}{
			{name: "auto outside a pod", env: pod, want: "flag"},
			{name: "auto in a pod", env: map[string]string{"POD_NAME": "db-1", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}, want: "kubernetes"},
			{name: "auto with a file", env: map[string]string{"POD_NAME": "db-1", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}, args: []string{"--cluster.expected-file=/etc/size/replicas"}, want: "file"},
			{name: "flag in a pod", env: map[string]string{"POD_NAME": "db-1", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}, args: []string{"--cluster.source=flag"}, want: "flag"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"--cluster.expected=1", "--peers.srv=_gossip._tcp.db"}, tc.args...)
				var cfg config
				if _, err := newFlags(&cfg).Parse(args); err != nil {
					t.Fatal(err)
				}
				getenv := func(k string) string { return tc.env[k] }
				if got := cfg.sizeSource(getenv); got != tc.want {
					t.Errorf("size source %q, want %q", got, tc.want)
				}
				dc, err := cfg.discoveryConfig(getenv, host)
				if err != nil {
					t.Fatal(err)
				}
				if (dc.ExpectedFile != "") != (tc.want == "file") {
					t.Errorf("expected file %q with source %s", dc.ExpectedFile, tc.want)
				}
				if dc.MaxMembers != 64 || dc.Stabilization.String() != "10s" {
					t.Errorf("max members %d, stabilization %s; want 64, 10s", dc.MaxMembers, dc.Stabilization)
				}
			})
		}
	})
	t.Run("flags win", func(t *testing.T) {
		dc := parse(t, pod, "--cluster.expected=3", "--node.name=db-0", "--gossip.advertise-address=10.0.0.9",
			"--gossip.profile=local", "--gossip.probe-interval=200ms", "--gossip.probe-timeout=100ms", "--peers.domain=db")
		if dc.NodeName != "db-0" || dc.AdvertiseAddr != "10.0.0.9" {
			t.Errorf("node %q advertise %q; want db-0, 10.0.0.9", dc.NodeName, dc.AdvertiseAddr)
		}
		if dc.Timing.ProbeInterval.String() != "200ms" || dc.Timing.SuspectTimeout.String() != "500ms" {
			t.Errorf("probe interval %s suspect timeout %s; want 200ms and 500ms", dc.Timing.ProbeInterval, dc.Timing.SuspectTimeout)
		}
	})
}

// TestCommandLine runs peeragent as a user would and checks the exit code
// and what it prints: a bad command line is one line on stderr naming the
// flag, and exit code 2.
func TestCommandLine(t *testing.T) {
	t.Setenv("POD_NAME", "")
	t.Setenv("POD_IP", "")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring of stdout
		stderr string // the whole of stderr
	}{
		{name: "version", args: []string{"--version"}, stdout: "peeragent, version "},
		{name: "help", args: []string{"--help"}, stdout: "--peers.srv"},
		{name: "unknown flag", args: []string{"--nope"}, code: 2,
			stderr: "peeragent: error: unknown long flag '--nope', try --help\n"},
		{name: "stray argument", args: []string{"run"}, code: 2,
			stderr: "peeragent: error: unexpected run, try --help\n"},
		{name: "bad number", args: []string{"--cluster.expected=three"}, code: 2,
			stderr: "peeragent: error: --cluster.expected: invalid value \"three\": invalid syntax, try --help\n"},
		{name: "bad duration", args: []string{"--peers.lookup-timeout=soon"}, code: 2,
			stderr: "peeragent: error: --peers.lookup-timeout: invalid value \"soon\": time: invalid duration \"soon\", try --help\n"},
		{name: "bad bool", args: []string{"--readyz.require-quorum=maybe"}, code: 2,
			stderr: "peeragent: error: --readyz.require-quorum: invalid value \"maybe\": want true or false, try --help\n"},
		{name: "unknown profile", args: []string{"--gossip.profile=fast"}, code: 2,
			stderr: "peeragent: error: --gossip.profile: invalid value \"fast\": enum value must be one of lan,local,wan, got 'fast', try --help\n"},
		{name: "bad log level", args: []string{"--log.level=loud"}, code: 2,
			stderr: "peeragent: error: --log.level: invalid value \"loud\": unrecognized log level loud, try --help\n"},
		{name: "expected size required", args: []string{"--node.name=db-0"}, code: 2,
			stderr: "peeragent: error: --cluster.expected: required, at least 1 (the bootstrap size and floor), try --help\n"},
		{name: "bad node name", args: []string{"--node.name=db", "--cluster.expected=1"}, code: 2,
			stderr: "peeragent: error: --node.name: ", // then discovery's reason
		},
		{name: "peers needed", args: []string{"--node.name=db-0", "--cluster.expected=3"}, code: 2,
			stderr: "peeragent: error: --peers.srv: a cluster of 3 needs peers: set --peers.srv or --peers.domain, try --help\n"},
		{name: "file source without a file", args: []string{"--node.name=db-0", "--cluster.expected=1", "--cluster.source=file", "--peers.srv=_gossip._tcp.db"}, code: 2,
			stderr: "peeragent: error: --cluster.expected-file: required with --cluster.source=file, try --help\n"},
		{name: "floor above the cap", args: []string{"--node.name=db-0", "--cluster.expected=9", "--cluster.max-members=8", "--peers.srv=_gossip._tcp.db"}, code: 2,
			stderr: "peeragent: error: --cluster.expected: 9 exceeds --cluster.max-members 8, try --help\n"},
		{name: "probe timeout over interval", args: []string{"--node.name=db-0", "--cluster.expected=1", "--gossip.probe-timeout=2s"}, code: 2,
			stderr: "peeragent: error: --gossip.probe-timeout: 2s exceeds the probe interval 1s, try --help\n"},
		{name: "negative hook shutdown grace", args: []string{"--node.name=db-0", "--cluster.expected=1", "--on-change.shutdown-grace=-1s"}, code: 2,
			stderr: "peeragent: error: --on-change.shutdown-grace: -1s: must not be negative, try --help\n"},
		{name: "missing web config file", args: []string{"--node.name=db-0", "--cluster.expected=1", "--web.config.file=/nonexistent"}, code: 2,
			stderr: "peeragent: error: --web.config.file: "},
		{name: "bool with a value", args: []string{"--node.name=db-0", "--cluster.expected=1", "--readyz.require-quorum=true", "--version"},
			stdout: "peeragent, version "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testtools.CheckCommandLine(t, run, testtools.CommandLine{Args: tc.args, Code: tc.code, Stdout: tc.stdout, Stderr: tc.stderr})
		})
	}
}

// TestWebConfigFile runs the agent with --web.config.file requiring basic
// auth: /metrics and /members (which lists pod IPs) answer only with the
// password. TLS is tested with the server itself, in internal/telemetry.
func TestWebConfigFile(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(webConfig, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, stop := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{
			"--node.name=web-0", "--cluster.expected=1",
			fmt.Sprintf("--gossip.listen-address=127.0.0.1:%d", freePort(t)),
			"--web.listen-address=" + web, "--web.config.file=" + webConfig,
		}, io.Discard, io.Discard)
	}()
	defer func() {
		stop()
		if code := <-exit; code != 0 {
			t.Errorf("exit code %d after the context ended, want 0", code)
		}
	}()
	status := func(path, user, password string) (int, error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+web+path, nil)
		if err != nil {
			return 0, err
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	eventually(t, "agent serving", func() error {
		_, err := status("/healthz", "", "")
		return err
	})
	for _, tc := range []struct {
		name, path, user, password string
		want                       int
	}{
		{name: "metrics with the password", path: "/metrics", user: "prometheus", password: "s3cret", want: http.StatusOK},
		{name: "metrics without", path: "/metrics", want: http.StatusUnauthorized},
		{name: "metrics with a wrong password", path: "/metrics", user: "prometheus", password: "x", want: http.StatusUnauthorized},
		{name: "members without", path: "/members", want: http.StatusUnauthorized},
		{name: "members with the password", path: "/members", user: "prometheus", password: "s3cret", want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := status(tc.path, tc.user, tc.password); err != nil || got != tc.want {
				t.Errorf("GET %s: %d %v, want %d", tc.path, got, err, tc.want)
			}
		})
	}
}
