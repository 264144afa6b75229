package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// hookRunner delivers settled member lists to the peers file and the
// on-change command, one list at a time. A list that settles while the
// previous one is still being delivered replaces any list waiting behind it:
// the hooks always catch up with the latest membership and never queue up.
type hookRunner struct {
	command   string
	timeout   time.Duration
	peersFile string
	env       func() []string
	metrics   *metrics
	log       *slog.Logger

	latest chan []string // cap 1, newest list wins
}

func newHookRunner(cfg *Config, m *metrics, log *slog.Logger, env func() []string) *hookRunner {
	return &hookRunner{
		command:   cfg.OnChange,
		timeout:   cfg.OnChangeTimeout,
		peersFile: cfg.PeersFile,
		env:       env,
		metrics:   m,
		log:       log,
		latest:    make(chan []string, 1),
	}
}

func (h *hookRunner) enabled() bool { return h.command != "" || h.peersFile != "" }

// offer hands a settled list to the runner without blocking.
func (h *hookRunner) offer(list []string) {
	for {
		select {
		case h.latest <- list:
			return
		default:
		}
		select {
		case <-h.latest: // drop the stale one
		default:
		}
	}
}

// run delivers lists until ctx is done; a command still running then is
// killed.
func (h *hookRunner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case list := <-h.latest:
			h.deliver(ctx, list)
		}
	}
}

func (h *hookRunner) deliver(ctx context.Context, list []string) {
	body := []byte(strings.Join(list, "\n") + "\n")
	if h.peersFile != "" {
		result := "success"
		if err := writeFileAtomic(h.peersFile, body); err != nil {
			result = "failure"
			h.log.Error("write peers file", "path", h.peersFile, "err", err)
		}
		h.metrics.hookRuns.WithLabelValues("peers_file", result).Inc()
	}
	if h.command == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", h.command)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), h.env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w after %s", err, h.timeout)
		}
		h.metrics.hookRuns.WithLabelValues("on_change", "failure").Inc()
		h.log.Error("on-change command failed", "err", err, "members", len(list), "output", tail(out.String(), 2048))
		return
	}
	h.metrics.hookRuns.WithLabelValues("on_change", "success").Inc()
	h.log.Info("on-change command ran", "members", len(list), "duration", time.Since(start).Round(time.Millisecond))
	if out.Len() > 0 {
		h.log.Debug("on-change command output", "output", tail(out.String(), 2048))
	}
}

// hookEnv is the environment the command sees besides the agent's own.
func hookEnv(node string, q Quorum) []string {
	return []string{
		"PEERAGENT_NODE_NAME=" + node,
		"PEERAGENT_EXPECTED=" + strconv.Itoa(q.Expected),
		"PEERAGENT_ALIVE=" + strconv.Itoa(q.Alive),
		"PEERAGENT_QUORUM=" + strconv.Itoa(q.Size),
		"PEERAGENT_HAS_QUORUM=" + strconv.FormatBool(q.Has),
	}
}

// writeFileAtomic replaces path with data so that a reader sees the old or
// the new content, never a part: write a temporary file in the same
// directory, sync it, rename it over path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// settler debounces the member list: it reports a list once it has stayed
// the same for the settle time, and only if it differs from the last one
// reported.
type settler struct {
	settle   time.Duration
	pending  []string
	reported []string
	have     bool // reported is valid
	timer    *time.Timer
}

func newSettler(settle time.Duration) *settler {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &settler{settle: settle, timer: t}
}

// observe notes the current list and restarts the settle time if it changed.
func (s *settler) observe(list []string) {
	if s.pending != nil && slices.Equal(list, s.pending) {
		return
	}
	s.pending = list
	s.timer.Reset(s.settle)
}

// fire is called when the timer expires; it returns the settled list and
// true if it is new.
func (s *settler) fire() ([]string, bool) {
	if s.pending == nil || (s.have && slices.Equal(s.pending, s.reported)) {
		return nil, false
	}
	s.reported, s.have = s.pending, true
	return s.reported, true
}
