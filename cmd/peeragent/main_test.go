package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/internal/docgen"
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
	flags := docgen.FlagsTable(newFlags(&cfg, nil))
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

func TestDiscoveryConfigDefaults(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	host := func() (string, error) { return "db-2.example.internal", nil }
	parse := func(t *testing.T, args ...string) config {
		t.Helper()
		var cfg config
		if err := newFlags(&cfg, nil).Parse(args); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Run("from the pod's environment", func(t *testing.T) {
		cfg := parse(t, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		dc, err := cfg.discoveryConfig(env(map[string]string{"POD_NAME": "db-1", "POD_IP": "10.0.0.7"}), host)
		if err != nil {
			t.Fatal(err)
		}
		if dc.NodeName != "db-1" || dc.AdvertiseAddr != "10.0.0.7" || dc.BindAddr != ":7946" {
			t.Errorf("node %q advertise %q listen %q; want db-1, 10.0.0.7, :7946", dc.NodeName, dc.AdvertiseAddr, dc.BindAddr)
		}
		if dc.Timing != discovery.LANTiming() {
			t.Errorf("timing %+v, want the LAN profile", dc.Timing)
		}
	})
	t.Run("from the hostname", func(t *testing.T) {
		cfg := parse(t, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		dc, err := cfg.discoveryConfig(env(nil), host)
		if err != nil || dc.NodeName != "db-2" || dc.AdvertiseAddr != "" {
			t.Errorf("node %q advertise %q, %v; want db-2 and no advertise address", dc.NodeName, dc.AdvertiseAddr, err)
		}
	})
	t.Run("flags win", func(t *testing.T) {
		cfg := parse(t, "--cluster.expected=3", "--node.name=db-0", "--gossip.advertise-address=10.0.0.9",
			"--gossip.profile=local", "--gossip.probe-interval=200ms", "--gossip.probe-timeout=100ms")
		dc, err := cfg.discoveryConfig(env(map[string]string{"POD_NAME": "db-1", "POD_IP": "10.0.0.7"}), host)
		if err != nil {
			t.Fatal(err)
		}
		if dc.NodeName != "db-0" || dc.AdvertiseAddr != "10.0.0.9" {
			t.Errorf("node %q advertise %q; want db-0, 10.0.0.9", dc.NodeName, dc.AdvertiseAddr)
		}
		if dc.Timing.ProbeInterval.String() != "200ms" || dc.Timing.SuspectTimeout.String() != "500ms" {
			t.Errorf("probe interval %s suspect timeout %s; want 200ms and 500ms", dc.Timing.ProbeInterval, dc.Timing.SuspectTimeout)
		}
	})
	t.Run("cluster label, version and zone from the pod", func(t *testing.T) {
		cfg := parse(t, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		pod := map[string]string{"POD_NAME": "db-1", "POD_NAMESPACE": "prod", "NODE_VERSION": "16.4", "NODE_ZONE": "eu-1a"}
		dc, err := cfg.discoveryConfig(env(pod), host)
		if err != nil {
			t.Fatal(err)
		}
		if dc.Label != "prod/db" || dc.Version != "16.4" || dc.Zone != "eu-1a" {
			t.Errorf("label %q version %q zone %q; want prod/db (namespace/StatefulSet), 16.4, eu-1a", dc.Label, dc.Version, dc.Zone)
		}
		cfg = parse(t, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db", "--cluster.label=mine", "--node.version=17", "--node.zone=z")
		dc, err = cfg.discoveryConfig(env(pod), host)
		if err != nil || dc.Label != "mine" || dc.Version != "17" || dc.Zone != "z" {
			t.Errorf("label %q version %q zone %q, %v; want the flags' mine, 17, z", dc.Label, dc.Version, dc.Zone, err)
		}
		cfg = parse(t, "--cluster.expected=3", "--peers.srv=_gossip._tcp.db")
		dc, err = cfg.discoveryConfig(env(map[string]string{"POD_NAME": "db-1"}), host)
		if err != nil || dc.Label != "" {
			t.Errorf("label %q, %v without $POD_NAMESPACE; want none", dc.Label, err)
		}
	})
	t.Run("expected size required", func(t *testing.T) {
		cfg := parse(t, "--node.name=db-0")
		if _, err := cfg.discoveryConfig(env(nil), host); err == nil {
			t.Error("accepted a missing --cluster.expected")
		}
	})
	t.Run("unknown profile", func(t *testing.T) {
		cfg := parse(t, "--cluster.expected=1", "--node.name=db-0", "--gossip.profile=fast")
		if _, err := cfg.discoveryConfig(env(nil), host); err == nil {
			t.Error("accepted an unknown profile")
		}
	})
}
