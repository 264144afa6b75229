package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinaries builds peerdns and peeragent into a temporary directory and
// returns their paths.
func buildBinaries(t *testing.T) (peerdns, peeragent string) {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/peerdns/peerdns/cmd/peerdns", "github.com/peerdns/peerdns/cmd/peeragent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built peerdns and peeragent in %v", time.Since(start).Round(time.Millisecond))
	return filepath.Join(dir, "peerdns"), filepath.Join(dir, "peeragent")
}

// proc is one running binary, its output kept for the failure report.
type proc struct {
	name string
	web  string // base URL of its HTTP server
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once it has exited and its output is read
}

// startProc starts cmd, labelled name in the logs, and kills it (SIGKILL)
// in t.Cleanup. The kernel kills it too if the test binary dies first.
func startProc(t *testing.T, name, web string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, web: web, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("last output of %s:\n%s", p.name, p.out.tail(30))
		}
	})
	return p
}

// kill sends SIGKILL, as a crash or an OOM kill would end it, and waits
// until it has exited.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Errorf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s still running 10s after SIGKILL", p.name)
	}
}

// stop sends SIGTERM, as the kubelet does to a deleted pod, and waits
// until the process has exited; it fails the test if it did not exit within
// limit or exited with an error.
func (p *proc) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		if !p.cmd.ProcessState.Success() {
			t.Errorf("%s exited with %v after SIGTERM\n%s", p.name, p.cmd.ProcessState, p.out.tail(20))
		}
	case <-time.After(limit):
		t.Fatalf("%s still running %v after SIGTERM", p.name, limit)
	}
}

// exited reports an error if the process is no longer running.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.cmd.ProcessState, p.out.tail(20))
	default:
		return nil
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// get returns the status and body of GET path on the process's web server.
func (p *proc) get(path string) (int, []byte, error) {
	if err := p.exited(); err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Get(p.web + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// metric returns the value of the sample written exactly as series
// (`name` or `name{label="value"}`) on /metrics.
func (p *proc) metric(series string) (float64, error) {
	code, body, err := p.get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %d", p.name, code)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics: %w %s", p.name, errNoSample, series)
}

// errNoSample is the error of metric for a series not on /metrics.
var errNoSample = errors.New("no sample")

func isNoSample(err error) bool { return errors.Is(err, errNoSample) }

// syncBuffer is a bytes.Buffer safe for the writes of exec's copying
// goroutines and the test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n lines written.
func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
