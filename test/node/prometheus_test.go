package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/seed"
	"github.com/peerdns/peerdns/internal/testtools"
)

// prometheusConfig scrapes every pod port named agent-web (the peeragent
// chart's web port, as its PodMonitor does) of the pods the API server
// lists in the seed's namespace. The agent runs as a native sidecar, an
// init container: the pod role lists those too.
const prometheusConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: peeragent
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: %q
        namespaces:
          names: [%q]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_container_port_name]
        regex: agent-web
        action: keep
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
`

// startPrometheus runs the pinned Prometheus (hack/controlplane.sh; Debian's
// is built without kubernetes_sd_configs, see docs/node-e2e.md) on this
// machine, which reaches the pods through the node, discovering them with
// a ServiceAccount that may only list and watch pods. It returns the
// address of its HTTP API.
func (s *scenario) startPrometheus(t *testing.T) string {
	t.Helper()
	bin := testtools.Path(t, "prometheus")
	dir := t.TempDir()
	cfg, err := s.cp.ServiceAccountConfig(t.Context(), "monitoring", "prometheus",
		[]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "prometheus.kubeconfig")
	if err := s.cp.WriteKubeconfig(cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, prometheusConfig, kubeconfig, seed.Namespace), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testtools.FreePort(t, "127.0.0.1"))
	p, err := proc.Start("prometheus", bin, []string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	}, filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", p.LogPath, p.Tail(20))
		}
		if err := p.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	testtools.Eventually(t, "Prometheus ready", 60*time.Second, func() error {
		if p.Exited() {
			return fmt.Errorf("prometheus exited: %w\n%s", p.Err(), p.Tail(20))
		}
		_, err := promGet(t.Context(), "http://"+addr+"/-/ready")
		return err
	})
	return addr
}

// prometheusShowsQuorum waits until Prometheus's query API answers
// peeragent_has_quorum 1 for each of the seed's pods.
func (s *scenario) prometheusShowsQuorum(t *testing.T) {
	addr := s.startPrometheus(t)
	want := []string{"web-0 1", "web-1 1", "web-2 1"}
	testtools.Eventually(t, "Prometheus shows peeragent_has_quorum 1 for web-0 … web-2", 60*time.Second, func() error {
		got, err := promQuery(t.Context(), addr, "peeragent_has_quorum")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("query result (-want +got):\n%s", diff)
		}
		return nil
	})
}

// promQuery runs an instant query and returns "<pod> <value>" per series,
// sorted.
func promQuery(ctx context.Context, addr, query string) ([]string, error) {
	b, err := promGet(ctx, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("query %s: status %s: %s", query, resp.Status, b)
	}
	var out []string
	for _, r := range resp.Data.Result {
		out = append(out, fmt.Sprintf("%s %v", r.Metric["pod"], r.Value[1]))
	}
	slices.Sort(out)
	return out, nil
}

func promGet(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return b, nil
}
