package charts_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// chartCopies are the files each chart carries from monitoring/: a chart can
// read only its own files (.Files.Get), so each keeps a copy, which
// TestMonitoringCopies keeps identical to the source.
var chartCopies = map[string]string{
	"peerdns/files/alerts.yml":       "../monitoring/alerts.yml",
	"peerdns/files/dashboard.json":   "../monitoring/dashboards/peerdns.json",
	"peeragent/files/alerts.yml":     "../monitoring/alerts.yml",
	"peeragent/files/dashboard.json": "../monitoring/dashboards/peeragent.json",
}

// TestMonitoringCopies checks the charts' copies of the alerts and the
// dashboards against monitoring/; -update rewrites them.
func TestMonitoringCopies(t *testing.T) {
	for dst, src := range chartCopies {
		t.Run(dst, func(t *testing.T) {
			want, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err == nil && bytes.Equal(got, want) {
				return
			}
			if *update {
				if err := os.WriteFile(dst, want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("%s differs from %s: run `go test ./charts -run TestMonitoringCopies -update`", dst, src)
		})
	}
}

// alertGroup returns the rule group name of monitoring/alerts.yml, as
// generic YAML.
func alertGroup(t *testing.T, name string) any {
	t.Helper()
	data, err := os.ReadFile("../monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []map[string]any `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		if g["name"] == name {
			return g
		}
	}
	t.Fatalf("monitoring/alerts.yml has no group %s", name)
	return nil
}

// labelsOf returns an object's metadata.labels from its generic form.
func labelsOf(obj map[string]any) map[string]any {
	meta, _ := obj["metadata"].(map[string]any)
	l, _ := meta["labels"].(map[string]any)
	return l
}

// atVersion returns group with every runbook_url moved from main to ref, as
// the charts render them.
func atVersion(t *testing.T, group any, ref string) any {
	t.Helper()
	raw, err := yaml.Marshal(group)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte("https://github.com/peerdns/peerdns/blob/main/docs/runbooks.md"), []byte("https://github.com/peerdns/peerdns/blob/"+ref+"/docs/runbooks.md"))
	var out any
	if err := yaml.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPrometheusRules: with prometheusRule.enabled each chart renders its
// own group of monitoring/alerts.yml and nothing else, each runbook_url at
// the chart's version (its appVersion's tag), not main.
func TestPrometheusRules(t *testing.T) {
	tests := []struct{ chart, values string }{
		{peerdnsChart, peerdnsValueSets["monitoring"]},
		{peeragentChart, peeragentValueSets["example with monitoring"]},
	}
	for _, tt := range tests {
		t.Run(tt.chart, func(t *testing.T) {
			rule := only(t, "PrometheusRule", render(t, tt.chart, tt.values).prometheusRules)
			if l := labelsOf(rule); l["release"] != "prom" {
				t.Errorf("PrometheusRule labels %v lack release=prom", l)
			}
			spec, _ := rule["spec"].(map[string]any)
			want := []any{atVersion(t, alertGroup(t, tt.chart), chartMeta(t, tt.chart).AppVersion)}
			if diff := cmp.Diff(want, spec["groups"]); diff != "" {
				t.Errorf("PrometheusRule groups differ from monitoring/alerts.yml's %s group at %s (-want +got):\n%s", tt.chart, chartMeta(t, tt.chart).AppVersion, diff)
			}
		})
	}
}

// TestGrafanaDashboards: with grafanaDashboard.enabled each chart renders a
// ConfigMap the Grafana sidecar loads, holding monitoring/dashboards/<chart>.json.
func TestGrafanaDashboards(t *testing.T) {
	tests := []struct {
		chart, values, namespace string
		annotations              map[string]string
	}{
		{peerdnsChart, peerdnsValueSets["monitoring"], "monitoring", map[string]string{"grafana_folder": "DNS"}},
		{peeragentChart, peeragentValueSets["example with monitoring"], releaseNamespace, nil},
	}
	for _, tt := range tests {
		t.Run(tt.chart, func(t *testing.T) {
			cm := only(t, "ConfigMap", render(t, tt.chart, tt.values).configMaps)
			if cm.Namespace != tt.namespace || cm.Labels["grafana_dashboard"] != "1" {
				t.Errorf("ConfigMap %s/%s labels %v: want namespace %s and grafana_dashboard=1 (the sidecar's default label)", cm.Namespace, cm.Name, cm.Labels, tt.namespace)
			}
			if diff := cmp.Diff(tt.annotations, cm.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
			want, err := os.ReadFile(filepath.Join("..", "monitoring", "dashboards", tt.chart+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var wantJSON, gotJSON any
			if err := json.Unmarshal(want, &wantJSON); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(cm.Data[tt.chart+".json"]), &gotJSON); err != nil {
				t.Fatalf("data[%s.json] is not JSON: %v", tt.chart, err)
			}
			if diff := cmp.Diff(wantJSON, gotJSON); diff != "" {
				t.Errorf("dashboard differs from monitoring/dashboards/%s.json (-want +got):\n%s", tt.chart, diff)
			}
		})
	}
}

// TestPeeragentPodMonitor: the PodMonitor scrapes the sidecar's web port by
// the name the sidecar gives it, and labels each target with its
// StatefulSet, which the alerts group by.
func TestPeeragentPodMonitor(t *testing.T) {
	r := render(t, peeragentChart, peeragentValueSets["example with monitoring"])
	pm := only(t, "PodMonitor", r.podMonitors)
	if l := labelsOf(pm); l["release"] != "prom" {
		t.Errorf("PodMonitor labels %v lack release=prom", l)
	}
	spec, _ := pm["spec"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/instance": "r"}}, spec["selector"]); diff != "" {
		t.Errorf("selector (-want +got): the default selects this release's pods; the port name picks the agents:\n%s", diff)
	}
	endpoints, _ := spec["podMetricsEndpoints"].([]any)
	if len(endpoints) != 1 {
		t.Fatalf("podMetricsEndpoints = %v, want one", endpoints)
	}
	ep, _ := endpoints[0].(map[string]any)
	agent := only(t, "StatefulSet", r.statefulSets).Spec.Template.Spec.InitContainers[0]
	var webPort string
	for _, p := range agent.Ports {
		if p.ContainerPort == 9470 {
			webPort = p.Name
		}
	}
	if ep["port"] != webPort || webPort != "agent-web" || ep["path"] != "/metrics" || ep["scrapeTimeout"] != "10s" {
		t.Errorf("endpoint %v, sidecar's web port %q: want port agent-web on both, path /metrics, scrapeTimeout 10s", ep, webPort)
	}
	wantRelabel := []any{map[string]any{
		"sourceLabels": []any{"__meta_kubernetes_pod_controller_kind", "__meta_kubernetes_pod_controller_name"},
		"regex":        "StatefulSet;(.+)",
		"targetLabel":  "statefulset",
		"replacement":  "$1",
		"action":       "replace",
	}}
	if diff := cmp.Diff(wantRelabel, ep["relabelings"]); diff != "" {
		t.Errorf("relabelings (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(agent.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" && e.Value == "48MiB" }) {
		t.Errorf("sidecar env %v lacks extraEnv's GOMEMLIMIT", agent.Env)
	}
}

func TestPeerdnsExtraEnv(t *testing.T) {
	c := peerdnsContainer(t, render(t, peerdnsChart, peerdnsValueSets["monitoring"]))
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" && e.Value == "200MiB" }) {
		t.Errorf("env %v lacks extraEnv's GOMEMLIMIT", c.Env)
	}
}
