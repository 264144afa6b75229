package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// StartT starts a control plane for a test and stops it in t.Cleanup. When
// a tool is missing, or with opts.Node the machine cannot run a node
// (NodeSupport), it skips the test, naming what is missing, unless
// PEERDNS_REQUIRE_TOOLS=1 (as `make test` sets), when it fails it: a
// skipped integration test must never pass silently.
//
// With -short (unit tests only) it skips the test.
//
// Without opts.Logger the control plane logs to t.Log. When the test has
// failed, the cleanup logs the end of every process's log before stopping.
func StartT(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a control plane (etcd, kube-apiserver); skipped with -short")
	}
	if opts.Node {
		if err := NodeSupport(); err != nil {
			testtools.Missing(t, "%v", err)
		}
	}
	logs := &testLog{t: t}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	limit := 2 * time.Minute
	if opts.Node {
		limit = 5 * time.Minute // builds and imports images; 2 busy cores are slow at it
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cp, err := Start(ctx, opts)
	if errors.Is(err, ErrToolMissing) {
		testtools.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range cp.processesStarted() {
				t.Logf("last lines of %s:\n%s", p.LogPath, p.Tail(20))
			}
		}
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
		logs.close()
	})
	return cp
}

// testLog writes to t.Log until closed: a process that dies after the test
// ended must not make testing panic.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Log(string(p))
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
}
