package charts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDocsWebPortName checks that the agent's web port has one name in the
// chart and in every example of the docs: the PodMonitor scrapes the ports
// of that name, so an example with another name is never scraped.
func TestDocsWebPortName(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(peeragentChart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Web struct {
			Port     int    `json:"port"`
			PortName string `json:"portName"`
		} `json:"web"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	// Port names in the examples' flow-style YAML: the container port on
	// the agent's web port, and the port the probes get.
	containerPort := regexp.MustCompile(`\{name: ([a-z0-9-]+), containerPort: 9470[,}]`)
	probePort := regexp.MustCompile(`httpGet: \{path: /[a-z]+, port: ([a-z0-9-]+)\}`)
	for _, doc := range []string{"../README.md", "../docs/peeragent.md", "peeragent/README.md"} {
		t.Run(doc, func(t *testing.T) {
			text, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, re := range []*regexp.Regexp{containerPort, probePort} {
				for _, m := range re.FindAllStringSubmatch(string(text), -1) {
					found++
					if m[1] != values.Web.PortName {
						t.Errorf("%q names the web port %q; the chart names it %q", m[0], m[1], values.Web.PortName)
					}
				}
			}
			t.Logf("%d port names checked", found)
		})
	}
	if values.Web.Port != 9470 {
		t.Errorf("web.port = %d; this test looks for 9470 in the docs", values.Web.Port)
	}
}
