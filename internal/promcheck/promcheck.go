// Package promcheck reads and checks metrics endpoints with the real
// Prometheus tools: Scrape parses one with the Prometheus text parser (for
// tests, the demo and the benchmarks); for tests, promtool's linter and a
// Prometheus server that scrapes them and answers queries.
package promcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/testtools"
)

// Lint fetches the metrics at url and fails the test with promtool's
// findings when `promtool check metrics` has any.
func Lint(t testing.TB, url string) {
	t.Helper()
	promtool := testtools.Path(t, "promtool")
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = resp.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics %s: %v\n%s", url, err, out)
	}
}

// Prometheus is a Prometheus server scraping some targets.
type Prometheus struct {
	api string
}

// Start runs Prometheus scraping targets (host:port, /metrics) every
// 200 ms, and stops it when the test ends.
func Start(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin := testtools.Path(t, "prometheus")
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	config := fmt.Sprintf("global: {scrape_interval: 200ms, scrape_timeout: 150ms}\nscrape_configs:\n  - job_name: test\n    static_configs: [{targets: [%s]}]\n", strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testtools.FreePort(t, "127.0.0.1")))
	p, err := proc.Start("prometheus", bin, []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	}, filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.Tail(60))
		}
	})
	return &Prometheus{api: "http://" + addr}
}

// Query evaluates an instant query and returns the value of its single
// series; an error when there is not exactly one.
func (p *Prometheus) Query(ctx context.Context, expr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.api+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("query %s: %w", expr, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %s: %s", expr, body.Error)
	}
	if len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %d series, want 1", expr, len(body.Data.Result))
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// WaitFor polls expr until it equals want or the deadline passes.
func (p *Prometheus) WaitFor(t testing.TB, expr string, want float64, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		v, err := p.Query(ctx, expr)
		if err == nil && v == want {
			return
		}
		if err == nil {
			err = fmt.Errorf("%s = %v", expr, v)
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus: want %s = %v: %v", expr, want, last)
		case <-time.After(100 * time.Millisecond): // polling interval
		}
	}
}
