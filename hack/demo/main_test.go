package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// TestDemo runs the demo as `make run` does, waits for its instructions,
// interrupts it, and checks what it printed and that it cleaned up.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and bin/peerdns; skipped with -short")
	}
	bin := filepath.Join("..", "..", "bin", "peerdns")
	if _, err := os.Stat(bin); err != nil {
		testtools.Missing(t, "%s missing: run `make build`", bin)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ready := make(chan struct{})
	out := &syncBuffer{ready: ready}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	errc := make(chan error, 1)
	go func() {
		errc <- demo(ctx, config{peerdns: bin}, logger, out, io.Discard)
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("demo ended before it was ready: %v\noutput:\n%s\nlogs:\n%s", err, out, logs)
	case <-ctx.Done():
		t.Fatalf("demo not ready: %v\noutput:\n%s\nlogs:\n%s", ctx.Err(), out, logs)
	}
	cancel() // Ctrl-C
	if err := <-errc; err != nil {
		t.Fatalf("demo: %v\nlogs:\n%s", err, logs)
	}

	printed := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`SRV\s+0 50 80 web-0\.nginx\.default\.svc\.cluster\.local\.`),
		regexp.MustCompile(`SRV\s+0 50 80 web-1\.nginx\.default\.svc\.cluster\.local\.`),
		regexp.MustCompile(`dig @127\.0\.0\.1 -p \d+ SRV nginx\.default\.svc\.cluster\.local`),
		regexp.MustCompile(`dig @127\.0\.0\.1 -p \d+ A web-0\.nginx\.default\.svc\.cluster\.local`),
		regexp.MustCompile(`http://127\.0\.0\.1:\d+/metrics`),
	} {
		if !want.MatchString(printed) {
			t.Errorf("output lacks %s:\n%s", want, printed)
		}
	}
	m := regexp.MustCompile(`removed (\S+)\.\n`).FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("output does not say which directory it removed:\n%s", printed)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists (stat: %v)", m[1], err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine;
// ready, if set, is closed once the demo's last instruction is written.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.ready != nil && strings.Contains(b.buf.String(), "Ctrl-C stops everything") {
		close(b.ready)
		b.ready = nil
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
