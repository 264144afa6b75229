package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// TestDemo runs the kwok mode as `make run` does (--hold), waits for its
// instructions, interrupts it, and checks what it printed and that it
// cleaned up.
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
		n := &narrator{out: out, begin: time.Now()}
		errc <- kwokDemo(ctx, config{peerdns: bin, toolsBin: toolsBin(t), hold: true}, logger, n, io.Discard)
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
		regexp.MustCompile(`SRV\s+0 50 80 web-0\.nginx\.default\.svc\.peerdns\.internal\.`),
		regexp.MustCompile(`SRV\s+0 50 80 web-1\.nginx\.default\.svc\.peerdns\.internal\.`),
		regexp.MustCompile(`dig @127\.0\.0\.1 -p \d+ SRV nginx\.default\.svc\.peerdns\.internal`),
		regexp.MustCompile(`dig @127\.0\.0\.1 -p \d+ A web-0\.nginx\.default\.svc\.peerdns\.internal`),
		regexp.MustCompile(`http://127\.0\.0\.1:\d+/metrics`),
	} {
		if !want.MatchString(printed) {
			t.Errorf("output lacks %s:\n%s", want, printed)
		}
	}
	checkDirRemoved(t, printed)
}

// TestKwokModeRunsToTheEnd runs `make demo`'s kwok fallback: unattended,
// it tells every step, ends by itself with exit code 0 and removes its
// directory.
func TestKwokModeRunsToTheEnd(t *testing.T) {
	bin := kwokPrerequisites(t)
	var out, errOut syncBuffer
	code := run([]string{"-mode=kwok", "-peerdns=" + bin}, strings.NewReader(""), &out, &errOut)
	printed := out.String()
	if code != 0 {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, printed, errOut.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Kwok mode .*: asked for with --mode=kwok\.$`),
		regexp.MustCompile(`(?m)^== 1/4  Start a control plane with a fake node$`),
		regexp.MustCompile(`(?m)^== 4/4  Ask peerdns$`),
		regexp.MustCompile(`SRV\s+0 50 80 web-1\.nginx\.default\.svc\.peerdns\.internal\.`),
	} {
		if !want.MatchString(printed) {
			t.Errorf("output lacks %s:\n%s", want, printed)
		}
	}
	checkDirRemoved(t, printed)
}

// toolsBin returns the control-plane tools' directory, skipping the test
// (failing it under PEERDNS_REQUIRE_TOOLS=1) when it has no kube-apiserver.
func toolsBin(t *testing.T) string {
	t.Helper()
	bin, err := testtools.Bin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bin, "kube-apiserver")); err != nil {
		testtools.Missing(t, "no kube-apiserver in %s: run `make controlplane`", bin)
	}
	return bin
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

var errNotYet = errors.New("not yet")

// A broken pipe elsewhere in the process (a child's closed stdin, a closed
// connection) is not Ctrl-C: the demo runs on to the end.
func TestBrokenPipeElsewhereIsNotAnInterrupt(t *testing.T) {
	bin := kwokPrerequisites(t)
	var out, errOut syncBuffer
	codec := make(chan int, 1)
	go func() { codec <- run([]string{"-mode=kwok", "-peerdns=" + bin}, strings.NewReader(""), &out, &errOut) }()
	testtools.Eventually(t, "the demo started", time.Minute, func() error {
		if !strings.Contains(out.String(), "== 1/4") {
			return errNotYet
		}
		return nil
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write to a pipe without reader: %v, want EPIPE", err)
	}
	w.Close()
	if code := <-codec; code != 0 {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}

// When its output goes (the reader of `make demo | head` exits), the demo
// stops, cleans up and exits 1.
func TestOutputClosedStopsTheDemo(t *testing.T) {
	bin := kwokPrerequisites(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the control plane's directory goes here
	out := &closingWriter{limit: 2000}
	var errOut syncBuffer
	if code := run([]string{"-mode=kwok", "-peerdns=" + bin}, strings.NewReader(""), out, &errOut); code != 1 {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out.buf.String(), errOut.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left behind in %s: %v", tmp, left)
	}
}

// closingWriter takes limit bytes, then fails as a pipe without reader.
type closingWriter struct {
	mu    sync.Mutex
	limit int
	buf   bytes.Buffer
}

func (c *closingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf.Len()+len(p) > c.limit {
		return 0, syscall.EPIPE
	}
	return c.buf.Write(p)
}

// kwokPrerequisites skips or fails unless the kwok mode can run: the
// control plane's tools and bin/peerdns. It returns bin/peerdns's path.
func kwokPrerequisites(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane and bin/peerdns; skipped with -short")
	}
	bin := filepath.Join("..", "..", "bin", "peerdns")
	if _, err := os.Stat(bin); err != nil {
		testtools.Missing(t, "%s missing: run `make build`", bin)
	}
	toolsBin(t)
	return bin
}

// checkDirRemoved finds the directory the kwok mode says it removed and
// checks it is gone.
func checkDirRemoved(t *testing.T, printed string) {
	t.Helper()
	m := regexp.MustCompile(`removed (\S+)\.\n`).FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("output does not say which directory it removed:\n%s", printed)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists (stat: %v)", m[1], err)
	}
}
