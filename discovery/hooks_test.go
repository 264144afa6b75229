package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hookLog reads the blocks the test hook appended, one per run.
func hookLog(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	for _, block := range strings.Split(string(data), "---\n") {
		if block = strings.TrimSpace(block); block != "" {
			blocks = append(blocks, strings.Split(block, "\n"))
		}
	}
	return blocks
}

// hookScript writes an executable shell script for the agent to run as its
// on-change hook (the agent itself runs no shell) and returns its path.
func hookScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func dnsNames(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n+"."+testDomain)
	}
	return out
}

// The on-change command and the peers file see every settled member list,
// each once, in order.
func TestHooksSeeSettledChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath, peersPath := filepath.Join(dir, "hook.log"), filepath.Join(dir, "peers")
	c := newTestCluster(t, 3)
	watcher := c.start("web-0", func(cfg *Config) {
		cfg.OnChange = hookScript(t, fmt.Sprintf(`{ cat; echo "quorum=$PEERAGENT_HAS_QUORUM"; echo ---; } >> %q`, logPath))
		cfg.PeersFile = peersPath
	})
	web1, web2 := c.start("web-1"), c.start("web-2")
	_ = web1

	// want waits until the last block is list and the peers file holds it.
	want := func(what string, list []string, quorum bool) {
		t.Helper()
		eventually(t, what, func() error {
			blocks := hookLog(t, logPath)
			if len(blocks) == 0 {
				return fmt.Errorf("hook never ran")
			}
			wantBlock := append(slices.Clone(list), fmt.Sprintf("quorum=%v", quorum))
			if last := blocks[len(blocks)-1]; !slices.Equal(last, wantBlock) {
				return fmt.Errorf("last hook input %q, want %q", last, wantBlock)
			}
			data, err := os.ReadFile(peersPath)
			if err != nil {
				return err
			}
			if got := strings.Fields(string(data)); !slices.Equal(got, list) {
				return fmt.Errorf("peers file %q, want %q", got, list)
			}
			return nil
		})
	}
	want("all three", dnsNames("web-0", "web-1", "web-2"), true)
	web2.stop()
	want("web-2 left", dnsNames("web-0", "web-1"), true)
	web2 = c.start("web-2")
	want("web-2 back", dnsNames("web-0", "web-1", "web-2"), true)

	blocks := hookLog(t, logPath)
	for i := 1; i < len(blocks); i++ {
		if slices.Equal(blocks[i], blocks[i-1]) {
			t.Errorf("hook ran twice in a row for the same list %q", blocks[i])
		}
	}
	// The run is counted once the command has exited, just after its output.
	eventually(t, "runs counted", func() error {
		if runs := watcher.gauge(watcher.metrics.hookRuns.WithLabelValues("on_change", "success")); int(runs) != len(blocks) {
			return fmt.Errorf("%v successful runs counted, %d seen", runs, len(blocks))
		}
		return nil
	})
	// Three distinct settled lists at least: the changes above.
	if len(blocks) < 3 {
		t.Errorf("hook saw %d lists, want at least 3", len(blocks))
	}
}

func TestFailingHookIsCounted(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 2)
	a := c.start("web-0", func(cfg *Config) { cfg.OnChange = hookScript(t, "cat >/dev/null; echo boom >&2; exit 3") })
	b := c.start("web-1")
	eventually(t, "hook failure counted", func() error {
		if a.gauge(a.metrics.hookRuns.WithLabelValues("on_change", "failure")) == 0 {
			return fmt.Errorf("no failure counted")
		}
		return nil
	})
	if err := a.Ready(); err != nil {
		t.Errorf("a failing hook made the agent unready: %v", err)
	}
	_ = b
}

func TestSettler(t *testing.T) {
	s := newSettler(time.Hour)
	defer s.timer.Stop()
	in := func(has bool, members ...string) hookInput {
		return hookInput{members: members, quorum: Quorum{Has: has}}
	}
	if _, ok := s.fire(); ok {
		t.Fatal("fired with nothing observed")
	}
	s.observe(in(true, "a"))
	s.observe(in(true, "a", "b"))
	if got, ok := s.fire(); !ok || !got.equal(in(true, "a", "b")) {
		t.Fatalf("fire() = %v, %v; want the latest input", got, ok)
	}
	s.observe(in(true, "a", "b"))
	if _, ok := s.fire(); ok {
		t.Fatal("fired again for an unchanged input")
	}
	s.observe(in(true, "a"))
	s.observe(in(true, "a", "b")) // flapped back before settling
	if _, ok := s.fire(); ok {
		t.Fatal("fired for an input equal to the last one reported")
	}
	s.observe(in(false, "a", "b")) // same members, quorum lost
	if got, ok := s.fire(); !ok || got.quorum.Has {
		t.Fatalf("fire() = %v, %v; want the quorum loss", got, ok)
	}
}
