// Package monitoring holds the Prometheus alerting rules and Grafana
// dashboards shipped with peerdns and peeragent; its tests check them with
// the real promtool and against the metrics the programs export.
package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/testtools"
)

func TestAlertRules(t *testing.T) {
	promtool := testtools.Path(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Errorf("promtool %v: %v\n%s", args, err, out)
			}
		})
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	return rf
}

const runbooks = "https://github.com/peerdns/peerdns/blob/main/docs/runbooks.md#"

// TestRunbooks checks that every alert links its own section of
// docs/runbooks.md, and that every alert section there is for an alert that
// exists.
func TestRunbooks(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok && strings.HasPrefix(name, "Peer") {
			sections = append(sections, name)
		}
	}
	var alerts []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if want := runbooks + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url = %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !slices.Contains(sections, r.Alert) {
				t.Errorf("%s: docs/runbooks.md has no section \"## %s\"", r.Alert, r.Alert)
			}
		}
	}
	for _, s := range sections {
		if !slices.Contains(alerts, s) {
			t.Errorf("docs/runbooks.md has a section for %s, which alerts.yml does not have", s)
		}
	}
}

var metricName = regexp.MustCompile(`\b(peerdns|peeragent)_[a-z_]+\b`)

// exportedMetrics lists the metrics in the README's tables, which are
// generated from the programs' registries.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if name, _, ok := strings.Cut(rest, "`"); ok && metricName.MatchString(name) {
				have[name] = true
			}
		}
	}
	if len(have) < 20 {
		t.Fatalf("found only %d metrics in README.md's tables", len(have))
	}
	return have
}

// checkMetrics reports every peerdns_/peeragent_ name in text that the
// programs do not export (histogram series by their family's name).
func checkMetrics(t *testing.T, what, text string, have map[string]bool) {
	t.Helper()
	for _, name := range metricName.FindAllString(text, -1) {
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && have[f] {
				family = f
			}
		}
		if !have[family] {
			t.Errorf("%s uses %s, which neither program exports", what, name)
		}
	}
}

func TestAlertsUseExportedMetrics(t *testing.T) {
	have := exportedMetrics(t)
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			checkMetrics(t, r.Alert, r.Expr, have)
			// An alert of one program's group watches that program only:
			// each chart installs its own group.
			for _, name := range metricName.FindAllString(r.Expr, -1) {
				if !strings.HasPrefix(name, g.Name+"_") {
					t.Errorf("%s in group %s uses %s", r.Alert, g.Name, name)
				}
			}
		}
	}
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboards checks the Grafana dashboards: valid JSON with a stable uid,
// panels with unique ids and a query each, queries on exported metrics only.
func TestDashboards(t *testing.T) {
	have := exportedMetrics(t)
	for _, name := range []string{"peerdns", "peeragent"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("dashboards", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var d dashboard
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			if d.UID != name || d.Title == "" {
				t.Errorf("uid %q, title %q: want uid %q (links to the dashboard survive a re-import) and a title", d.UID, d.Title, name)
			}
			var vars []string
			for _, v := range d.Templating.List {
				vars = append(vars, v.Name)
			}
			if !slices.Contains(vars, "datasource") {
				t.Errorf("variables %q: want a datasource variable, so the dashboard works with any Prometheus data source", vars)
			}
			ids := map[int]bool{}
			for _, p := range d.Panels {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, q := range p.Targets {
					if !strings.Contains(q.Expr, name+"_") {
						t.Errorf("panel %q queries %q, no %s metric", p.Title, q.Expr, name)
					}
					checkMetrics(t, "panel "+p.Title, q.Expr, have)
				}
			}
		})
	}
}
