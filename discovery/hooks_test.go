package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

func TestTailBufferAtItsBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writes  []int // sizes of successive writes
		dropped int64
	}{
		{name: "exactly the bound", writes: []int{HookOutputTail}},
		{name: "one byte over, one write", writes: []int{HookOutputTail + 1}, dropped: 1},
		{name: "one byte over, two writes", writes: []int{HookOutputTail, 1}, dropped: 1},
		{name: "many small writes", writes: slices.Repeat([]int{100}, 1000), dropped: 100*1000 - HookOutputTail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &tailBuffer{max: HookOutputTail}
			var all []byte
			for i, n := range tc.writes {
				chunk := []byte(strings.Repeat(string(rune('a'+i%26)), n))
				all = append(all, chunk...)
				if _, err := tb.Write(chunk); err != nil {
					t.Fatal(err)
				}
			}
			want := all[int64(len(all))-min(int64(len(all)), HookOutputTail):]
			if string(tb.buf) != string(want) || cap(tb.buf) > 2*HookOutputTail {
				t.Errorf("kept %d bytes (cap %d), want the last %d", len(tb.buf), cap(tb.buf), len(want))
			}
			if got := tb.total - int64(len(tb.buf)); got != tc.dropped {
				t.Errorf("dropped %d bytes, want %d", got, tc.dropped)
			}
			if marked := strings.HasPrefix(tb.String(), "["); marked != (tc.dropped > 0) {
				t.Errorf("String() = %.40q…; a drop marker is wanted only when bytes were dropped", tb.String())
			}
		})
	}
}

func newTestHookRunner(t *testing.T, command string, timeout time.Duration) (*hookRunner, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.NodeName, cfg.OnChange, cfg.OnChangeTimeout = "web-0", command, timeout
	m := newMetrics(prometheus.NewRegistry(), ExpectedSet{Set: "web", N: 1}, Identity{Set: "web"})
	h := newHookRunner(&cfg, m, slog.New(slog.NewTextHandler(logs, nil)))
	return h, logs
}

// syncBuffer collects logs written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A hook that writes far more than the bound is logged with the last
// HookOutputTail bytes only.
func TestHookOutputIsBounded(t *testing.T) {
	h, logs := newTestHookRunner(t, hookScript(t, "head -c 10000000 /dev/zero | tr '\\0' x; echo END; exit 1"), 30*time.Second)
	h.deliver(context.Background(), hookInput{members: []string{"web-0"}})
	out := logs.String()
	if !strings.Contains(out, "END") || !strings.Contains(out, "earlier bytes dropped") {
		t.Fatalf("log lacks the output's tail or the drop marker: %.300s", out)
	}
	if len(out) > HookOutputTail+1024 {
		t.Errorf("logged %d bytes for a hook that wrote 10 MB, want about %d", len(out), HookOutputTail)
	}
}

func TestOnChangeIsAnExecutablePath(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Expected, cfg.PeersSRV = "web-0", 3, testSRV
	for _, cmd := range []string{"cat >/dev/null; exit 3", "hook.sh", "bin/hook"} {
		cfg.OnChange = cmd
		if err := cfg.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("on-change %q accepted: %v", cmd, err)
		}
	}
	cfg.OnChange = "/usr/local/bin/on-change"
	if err := cfg.validate(); err != nil {
		t.Errorf("on-change %q refused: %v", cfg.OnChange, err)
	}
}
