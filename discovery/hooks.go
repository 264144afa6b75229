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
	"sync"
	"sync/atomic"
	"time"
)

// childWait is held shared by every OnChange run, from its start until
// os/exec has waited for the command and endGroup for its process group,
// and exclusively by the reaper (reapChildren) while it waits for any
// child: so the reaper never takes an exit status os/exec waits for.
var childWait sync.RWMutex

// HookOutputTail is how much of an OnChange run's output (stdout and
// stderr together) the agent keeps to log: the last 4 KiB. Whatever the
// command writes beyond that is read and dropped, so a chatty hook costs
// no memory.
const HookOutputTail = 4096

// hookInput is what one delivery hands the hooks: the member list and the
// quorum standing, settled together.
type hookInput struct {
	members []string
	quorum  Quorum
}

func (in hookInput) equal(o hookInput) bool {
	return slices.Equal(in.members, o.members) && in.quorum.Has == o.quorum.Has &&
		in.quorum.Voter == o.quorum.Voter && in.quorum.Epoch == o.quorum.Epoch
}

// hookRunner delivers settled member lists to the peers file and the
// on-change command, one at a time. An input that settles while the
// previous one is still being delivered replaces any input waiting behind
// it: the hooks always catch up with the latest state and never queue up.
type hookRunner struct {
	node          string
	command       string
	timeout       time.Duration
	shutdownGrace time.Duration
	peersFile     string
	metrics       *metrics
	log           *slog.Logger

	latest chan hookInput // cap 1, newest input wins
}

func newHookRunner(cfg *Config, m *metrics, log *slog.Logger) *hookRunner {
	return &hookRunner{
		node:          cfg.NodeName,
		command:       cfg.OnChange,
		timeout:       cfg.OnChangeTimeout,
		shutdownGrace: cfg.OnChangeShutdownGrace,
		peersFile:     cfg.PeersFile,
		metrics:       m,
		log:           log,
		latest:        make(chan hookInput, 1),
	}
}

func (h *hookRunner) enabled() bool { return h.command != "" || h.peersFile != "" }

// offer hands a settled input to the runner without blocking.
func (h *hookRunner) offer(in hookInput) {
	for {
		select {
		case h.latest <- in:
			return
		default:
		}
		select {
		case <-h.latest: // drop the stale one
		default:
		}
	}
}

// run delivers inputs until ctx is done. A command still running then has
// the shutdown grace to finish before it is killed with its process group;
// run returns once it has ended.
func (h *hookRunner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-h.latest:
			if ctx.Err() != nil {
				return // both were ready: start nothing new at shutdown
			}
			h.deliver(ctx, in)
		}
	}
}

func (h *hookRunner) deliver(ctx context.Context, in hookInput) {
	body := []byte(strings.Join(in.members, "\n") + "\n")
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
	// The run ends at its timeout, or the shutdown grace after ctx ends,
	// whichever comes first.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	var atShutdown atomic.Bool
	stopGrace := context.AfterFunc(ctx, func() {
		h.log.Info("shutting down: the on-change command may run on for the grace", "grace", h.shutdownGrace)
		t := time.NewTimer(h.shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			atShutdown.Store(true)
			cancel()
		case <-cctx.Done():
		}
	})
	defer stopGrace()
	// No shell: the images have none, and a path cannot be mis-quoted.
	cmd := exec.CommandContext(cctx, h.command)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), hookEnv(h.node, in.quorum)...)
	out := &tailBuffer{max: HookOutputTail}
	cmd.Stdout, cmd.Stderr = out, out
	// A child still holding the output open after the command exits is
	// given this long before the pipes are closed.
	cmd.WaitDelay = time.Second
	startInGroup(cmd)
	start := time.Now()
	// Held from the start until os/exec has waited for the command and
	// endGroup for its group, so the reaper takes none of their statuses.
	childWait.RLock()
	err := cmd.Run()
	if cmd.Process != nil {
		// Kill what is left of the hook's process group and reap those of
		// it that are this process's children by now. Processes that left
		// the group (setsid, daemons) are neither: they run on, and are
		// reaped by init, or by the reaper (Config.ReapChildren) once they
		// exit.
		endGroup(cmd.Process.Pid)
	}
	childWait.RUnlock()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited 0; only a process it left kept the output
		// open after WaitDelay.
		h.log.Warn("on-change command exited 0 but a process it started held its output open; what it wrote after the wait delay was not read",
			"wait_delay", cmd.WaitDelay)
		err = nil
	}
	if err != nil {
		switch {
		case atShutdown.Load():
			err = fmt.Errorf("%w: killed at shutdown after the %s grace", err, h.shutdownGrace)
		case errors.Is(cctx.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("%w after %s", err, h.timeout)
		}
		h.metrics.hookRuns.WithLabelValues("on_change", "failure").Inc()
		h.log.Error("on-change command failed", "err", err, "members", len(in.members), "output", out.String())
		return
	}
	h.metrics.hookRuns.WithLabelValues("on_change", "success").Inc()
	h.log.Info("on-change command ran", "members", len(in.members), "duration", time.Since(start).Round(time.Millisecond))
	if out.total > 0 {
		h.log.Debug("on-change command output", "output", out.String())
	}
}

// tailBuffer keeps the last max bytes written to it and counts the rest.
type tailBuffer struct {
	max   int
	mu    sync.Mutex
	buf   []byte
	total int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

// String is the kept tail, trimmed, marked when bytes were dropped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if dropped := t.total - int64(len(t.buf)); dropped > 0 {
		return fmt.Sprintf("[%d earlier bytes dropped] %s", dropped, s)
	}
	return s
}

// hookEnv is the environment the command sees besides the agent's own.
func hookEnv(node string, q Quorum) []string {
	return []string{
		"PEERAGENT_NODE_NAME=" + node,
		"PEERAGENT_EXPECTED=" + strconv.Itoa(q.Expected),
		"PEERAGENT_ALIVE=" + strconv.Itoa(q.Alive),
		"PEERAGENT_QUORUM=" + strconv.Itoa(q.Size),
		"PEERAGENT_HAS_QUORUM=" + strconv.FormatBool(q.Has),
		"PEERAGENT_VOTER=" + strconv.FormatBool(q.Voter),
		"PEERAGENT_CONFIG_EPOCH=" + strconv.FormatUint(q.Epoch, 10),
		"PEERAGENT_CONFIG_TRANSITION=" + strconv.FormatBool(q.Joint),
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

// settler debounces the hooks' input: it reports an input once it has
// stayed the same (members and quorum) for the settle time, and only if it
// differs from the last one reported.
type settler struct {
	settle   time.Duration
	pending  hookInput
	seen     bool // pending is valid
	reported hookInput
	have     bool // reported is valid
	timer    *time.Timer
}

func newSettler(settle time.Duration) *settler {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &settler{settle: settle, timer: t}
}

// observe notes the current input and restarts the settle time if it
// changed.
func (s *settler) observe(in hookInput) {
	if s.seen && in.equal(s.pending) {
		return
	}
	s.pending, s.seen = in, true
	s.timer.Reset(s.settle)
}

// fire is called when the timer expires; it returns the settled input and
// true if it is new.
func (s *settler) fire() (hookInput, bool) {
	if !s.seen || (s.have && s.pending.equal(s.reported)) {
		return hookInput{}, false
	}
	s.reported, s.have = s.pending, true
	return s.reported, true
}
