package discovery

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

// docAgent builds (but does not run) an agent with encryption on, so every
// metric family has a series.
func docAgent(t *testing.T) *prometheus.Registry {
	t.Helper()
	dir := t.TempDir()
	writeKey(t, dir, "primary", key(1))
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Expected, cfg.PeersSRV, cfg.KeyringDir = "web-0", 3, testSRV, dir
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestMetricsLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(docAgent(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestMetricsGolden pins every metric's name, type, labels and help: a
// change to them is a change to dashboards and alerts, and must show in
// review. Regenerate with go test ./discovery -run TestMetricsGolden -update.
func TestMetricsGolden(t *testing.T) {
	mfs, err := docAgent(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		fmt.Fprintf(&b, "%s %s {%s}\n  %s\n", mf.GetName(), strings.ToLower(mf.GetType().String()), strings.Join(slices.Sorted(maps.Keys(labels)), ","), mf.GetHelp())
	}
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("metrics changed (-golden +now); if intended, run with -update:\n%s", diff)
	}
	for _, contract := range []string{"peeragent_has_quorum ", "peeragent_members ", "peeragent_expected_members "} {
		if !strings.Contains(b.String(), contract) {
			t.Errorf("contract metric %s is missing", strings.TrimSpace(contract))
		}
	}
}

// A scrape while the table recomputes sees every members_by_version
// series it should, never an empty family.
func TestMembersByVersionNeverEmpty(t *testing.T) {
	reg := prometheus.NewRegistry()
	set := ExpectedSet{Set: "web", N: 3}
	m := newMetrics(reg, set, Identity{Set: "web", Ordinal: 0})
	ms := newMembership("web-0", "v1", ExpectedSet{Set: set.Set, N: 64}, Voting{Current: VotingConfig{Voters: set.Ordinals()}}, set.Ordinals(), testTiming(), m)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
				ms.update("web-0", "", nodeMeta{Version: "v1"}) // recomputes
			}
		}
	}()
	defer func() { close(done); <-stopped }()
	for range 300 {
		n, err := testutil.GatherAndCount(reg, "peeragent_members_by_version")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("a scrape saw peeragent_members_by_version empty")
		}
	}
}
