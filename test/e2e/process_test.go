package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	childproc "github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/promcheck"
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
	*childproc.Process
	name string
	web  string // base URL of its HTTP server
}

// startProc starts cmd's program, labelled name in the logs, and kills it
// (SIGKILL) in t.Cleanup. The kernel kills it too if the test binary dies
// first.
func startProc(t *testing.T, name, web string, cmd *exec.Cmd) *proc {
	t.Helper()
	c, err := childproc.Start(name, cmd.Path, cmd.Args[1:], filepath.Join(t.TempDir(), "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: c, name: name, web: web}
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("last output of %s:\n%s", name, p.Tail(30))
		}
	})
	return p
}

// kill sends SIGKILL, as a crash or an OOM kill would end it, and waits
// until it has exited.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Error(err)
	}
}

// stop sends SIGTERM, as the kubelet does to a deleted pod, and waits
// until the process has exited; it fails the test if it did not exit within
// limit or exited with an error.
func (p *proc) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
		if p.ExitCode() != 0 {
			t.Errorf("%s exited with %v after SIGTERM\n%s", p.name, p.Err(), p.Tail(20))
		}
	case <-time.After(limit):
		t.Fatalf("%s still running %v after SIGTERM", p.name, limit)
	}
}

// exited reports an error if the process is no longer running.
func (p *proc) exited() error {
	if p.Exited() {
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.Err(), p.Tail(20)) //nolint:errorlint // nil after a clean exit: %v prints <nil>, %w would print %!w(<nil>)
	}
	return nil
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

// metric returns the value of series (`name` or `name{label="value"}`,
// labels sorted by name) on /metrics.
func (p *proc) metric(series string) (float64, error) {
	if err := p.exited(); err != nil {
		return 0, err
	}
	m, err := promcheck.Scrape(context.Background(), httpClient, p.web+"/metrics")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	return m.Get(series)
}

func isNoSample(err error) bool { return errors.Is(err, promcheck.ErrNoSample) }
