package charts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/testtools"
)

// kpsSelector is the selector kube-prometheus-stack's Prometheus picks
// ServiceMonitors, PodMonitors and PrometheusRules by, with its default
// values (serviceMonitorSelectorNilUsesHelmValues and its siblings true):
// `matchLabels: {release: <its release name>}`, here "kps".
var kpsSelector = labels.SelectorFromSet(labels.Set{"release": "kps"})

func stringLabels(obj map[string]any) labels.Set {
	set := labels.Set{}
	for k, v := range labelsOf(obj) {
		s, _ := v.(string)
		set[k] = s
	}
	return set
}

// TestKubePrometheusStackSelects: with prometheusRelease set to the
// kube-prometheus-stack release's name, its Prometheus selects every monitor
// and rule the charts render; without it, none, which is why the values
// say so.
func TestKubePrometheusStackSelects(t *testing.T) {
	tests := []struct{ chart, values string }{
		{peerdnsChart, "serviceMonitor: {enabled: true}\nprometheusRule: {enabled: true}\n"},
		{peeragentChart, "example: {enabled: true}\npodMonitor: {enabled: true}\nprometheusRule: {enabled: true}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.chart, func(t *testing.T) {
			for _, release := range []string{"", "kps"} {
				r := render(t, tt.chart, tt.values+"prometheusRelease: \""+release+"\"\n")
				objs := append(append(append([]map[string]any{}, r.serviceMonitors...), r.podMonitors...), r.prometheusRules...)
				if len(objs) != 2 {
					t.Fatalf("rendered %d monitors and rules, want 2", len(objs))
				}
				for _, obj := range objs {
					got := kpsSelector.Matches(stringLabels(obj))
					if got != (release == "kps") {
						t.Errorf("prometheusRelease %q: selector %s matches %v labels %v: %v", release, kpsSelector, obj["kind"], labelsOf(obj), got)
					}
				}
			}
		})
	}
	// The object's own labels win over prometheusRelease.
	r := render(t, peerdnsChart, "prometheusRelease: kps\nserviceMonitor: {enabled: true, labels: {release: other}}\n")
	if l := labelsOf(only(t, "ServiceMonitor", r.serviceMonitors)); l["release"] != "other" {
		t.Errorf("ServiceMonitor labels %v: want serviceMonitor.labels' release=other", l)
	}
}

// TestOneScrapePerAgent: two databases in one namespace, each a release
// depending on peeragent with its PodMonitor enabled, scrape each agent
// once: each PodMonitor selects its own release's pods only.
func TestOneScrapePerAgent(t *testing.T) {
	type release struct {
		monitor map[string]any
		pods    labels.Set
	}
	var releases []release
	for _, name := range []string{"orders", "users"} {
		out, err := runHelm(t, "template", name, peeragentChart, "--kube-version", kubeVersion(t),
			"--namespace", "db", "--values", valuesFile(t, "example: {enabled: true}\npodMonitor: {enabled: true}\n"))
		if err != nil {
			t.Fatal(err)
		}
		r := decode(t, out)
		releases = append(releases, release{
			monitor: only(t, "PodMonitor", r.podMonitors),
			pods:    only(t, "StatefulSet", r.statefulSets).Spec.Template.Labels,
		})
	}
	for i, a := range releases {
		spec, _ := a.monitor["spec"].(map[string]any)
		raw, err := yaml.Marshal(spec["selector"])
		if err != nil {
			t.Fatal(err)
		}
		var sel struct {
			MatchLabels map[string]string `json:"matchLabels"`
		}
		if err := yaml.UnmarshalStrict(raw, &sel); err != nil {
			t.Fatalf("selector %s: %v", raw, err)
		}
		selector := labels.SelectorFromSet(sel.MatchLabels)
		for j, b := range releases {
			if got := selector.Matches(b.pods); got != (i == j) {
				t.Errorf("PodMonitor %d (selector %s) selects the pods %v of release %d: %v", i, selector, b.pods, j, got)
			}
		}
	}
}

// alertsOf returns the rendered PrometheusRule's rules by alert name.
func alertsOf(t *testing.T, r *rendered) map[string]map[string]any {
	t.Helper()
	rule := only(t, "PrometheusRule", r.prometheusRules)
	spec, _ := rule["spec"].(map[string]any)
	groups, _ := spec["groups"].([]any)
	if len(groups) != 1 {
		t.Fatalf("groups %v, want one", groups)
	}
	g, _ := groups[0].(map[string]any)
	rules, _ := g["rules"].([]any)
	out := map[string]map[string]any{}
	for _, r := range rules {
		m, _ := r.(map[string]any)
		out[m["alert"].(string)] = m
	}
	return out
}

// TestAlertsTuned: prometheusRule.alerts leaves an alert out, changes its
// duration and its labels (severity included), and refuses a name that is
// not an alert; what is rendered still passes promtool.
func TestAlertsTuned(t *testing.T) {
	promtool := testtools.Path(t, "promtool")
	r := render(t, peeragentChart, `
prometheusRule:
  enabled: true
  alerts:
    PeerAgentViewsDisagree: {enabled: false}
    PeerAgentQuorumLost: {for: 3m}
    PeerAgentMembersGone: {labels: {severity: warning, team: db}}
    PeerAgentRejectingMembers: {enabled: true}
`)
	alerts := alertsOf(t, r)
	if _, ok := alerts["PeerAgentViewsDisagree"]; ok {
		t.Error("PeerAgentViewsDisagree rendered with enabled: false")
	}
	if _, ok := alerts["PeerAgentRejectingMembers"]; !ok {
		t.Error("PeerAgentRejectingMembers left out with enabled: true")
	}
	if got := alerts["PeerAgentQuorumLost"]["for"]; got != "3m" {
		t.Errorf("PeerAgentQuorumLost for = %v, want 3m", got)
	}
	if diff := cmp.Diff(map[string]any{"severity": "warning", "team": "db"}, alerts["PeerAgentMembersGone"]["labels"]); diff != "" {
		t.Errorf("PeerAgentMembersGone labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"severity": "warning"}, alerts["PeerAgentNoFailureTolerance"]["labels"]); diff != "" {
		t.Errorf("an untuned alert's labels changed (-want +got):\n%s", diff)
	}

	// promtool checks the rendered group as a rule file.
	spec, _ := only(t, "PrometheusRule", r.prometheusRules)["spec"].(map[string]any)
	raw, err := yaml.Marshal(map[string]any{"groups": spec["groups"]})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}

	_, err = template(t, peerdnsChart, "prometheusRule: {enabled: true, alerts: {PeerDNSDwon: {enabled: false}}}\n")
	wantHelmError(t, err, "prometheusRule.alerts.PeerDNSDwon: no such alert in the peerdns group")
	_, err = template(t, peerdnsChart, "prometheusRule: {enabled: true, alerts: {PeerDNSDown: {for: soon}}}\n")
	wantHelmError(t, err, "for")
}

// TestRunbookURLs: the runbooks linked are those of the chart's version: at
// a release's tag, at a development build's commit, or under
// prometheusRule.runbookURL.
func TestRunbookURLs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "peerdns")
	copyDir(t, peerdnsChart, dir)
	chartYAML := filepath.Join(dir, "Chart.yaml")
	raw, err := os.ReadFile(chartYAML)
	if err != nil {
		t.Fatal(err)
	}
	dev := strings.Replace(string(raw), `appVersion: "`+chartMeta(t, peerdnsChart).AppVersion+`"`, `appVersion: "v0.9.0-dev-gabc123456789"`, 1)
	if dev == string(raw) {
		t.Fatal("Chart.yaml's appVersion line not found")
	}
	if err := os.WriteFile(chartYAML, []byte(dev), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, chart, values, want string }{
		{"release", peerdnsChart, "", "https://github.com/peerdns/peerdns/blob/" + chartMeta(t, peerdnsChart).AppVersion + "/docs/runbooks.md#peerdnsdown"},
		{"development build", dir, "", "https://github.com/peerdns/peerdns/blob/abc123456789/docs/runbooks.md#peerdnsdown"},
		{"own copy", peerdnsChart, "runbookURL: https://wiki.example.com/peerdns", "https://wiki.example.com/peerdns#peerdnsdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.chart, "prometheusRule: {enabled: true, "+tt.values+"}\n")
			ann, _ := alertsOf(t, r)["PeerDNSDown"]["annotations"].(map[string]any)
			if ann["runbook_url"] != tt.want {
				t.Errorf("runbook_url = %v, want %s", ann["runbook_url"], tt.want)
			}
		})
	}
}

// TestNotesWarnWithoutReleaseLabel: the install notes say when the monitors
// carry no release label, the one mistake that fails without a word.
func TestNotesWarnWithoutReleaseLabel(t *testing.T) {
	const warning = "No release label"
	tests := []struct {
		chart, values string
		warn          bool
	}{
		{peerdnsChart, "serviceMonitor: {enabled: true}\n", true},
		{peerdnsChart, "serviceMonitor: {enabled: true}\nprometheusRelease: kps\n", false},
		{peerdnsChart, "serviceMonitor: {enabled: true, labels: {release: kps}}\n", false},
		{peerdnsChart, "", false},
		{peeragentChart, "podMonitor: {enabled: true}\n", true},
		{peeragentChart, "podMonitor: {enabled: true}\nprometheusRelease: kps\n", false},
	}
	for _, tt := range tests {
		notes := renderNotes(t, tt.chart, tt.values)
		if got := strings.Contains(notes, warning); got != tt.warn {
			t.Errorf("%s with %q: notes warn %v, want %v:\n%s", tt.chart, tt.values, got, tt.warn, notes)
		}
	}
}
