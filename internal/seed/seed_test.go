package seed_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/seed"
	"github.com/peerdns/peerdns/internal/testtools"
)

// The seed chart (test/node/testdata/seed) and the kwok mode's objects
// (controlplane.SeedObjects) are one seed: the names, selector and ports
// the checks of package seed ask about.
func TestChartIsTheSeed(t *testing.T) {
	helm := testtools.Path(t, "helm")
	dir := t.TempDir()
	if err := seed.CopyCharts(dir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), helm, "template", "seed", filepath.Join(dir, "seed"), "--namespace", seed.Namespace)
	cmd.Env = seed.HelmEnv(filepath.Join(dir, ".helm"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var svc corev1.Service
	var sts appsv1.StatefulSet
	for _, doc := range strings.Split(string(out), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Service":
			err = yaml.Unmarshal([]byte(doc), &svc)
		case "StatefulSet":
			err = yaml.Unmarshal([]byte(doc), &sts)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	kwokSvc, kwokSts := controlplane.SeedObjects(seed.Namespace)
	for _, s := range []struct {
		what      string
		svc       *corev1.Service
		sts       *appsv1.StatefulSet
		wantPorts map[string]int32
	}{
		{what: "the chart", svc: &svc, sts: &sts, wantPorts: map[string]int32{"web": seed.WebPort, "gossip": seed.GossipPort}},
		{what: "the kwok mode", svc: kwokSvc, sts: kwokSts, wantPorts: map[string]int32{"web": seed.WebPort}},
	} {
		ports := map[string]int32{}
		for _, p := range s.svc.Spec.Ports {
			ports[p.Name] = p.Port
		}
		got := []string{s.svc.Name, s.sts.Name, s.sts.Spec.ServiceName, "app=" + s.svc.Spec.Selector["app"], "app=" + s.sts.Spec.Template.Labels["app"]}
		want := []string{seed.Service, seed.StatefulSet, seed.Service, seed.Selector, seed.Selector}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Service, StatefulSet, its serviceName, selectors (-want +got):\n%s", s.what, diff)
		}
		if diff := cmp.Diff(s.wantPorts, ports); diff != "" {
			t.Errorf("%s: Service ports (-want +got):\n%s", s.what, diff)
		}
	}
}
