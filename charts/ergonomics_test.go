package charts_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// umbrellaChart copies testdata/umbrella, with the two charts it depends on
// where its file:// references expect them, into a temporary directory,
// runs `helm dependency build` there and returns the umbrella's path.
func umbrellaChart(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, peerdnsChart, filepath.Join(dir, "peerdns"))
	copyDir(t, peeragentChart, filepath.Join(dir, "peeragent"))
	umbrella := filepath.Join(dir, "testdata", "umbrella")
	copyDir(t, filepath.Join("testdata", "umbrella"), umbrella)
	if _, err := runHelm(t, "dependency", "build", umbrella); err != nil {
		t.Fatal(err)
	}
	return umbrella
}

// TestUmbrellaChart: a parent chart sets `enabled` (its dependency's
// condition) and `global` in both charts' values, which their strict schemas
// accept; `condition: peerdns.enabled` turns peerdns off; the sidecar
// renders from a peeragent dependency under an alias, with the alias's
// values and the peeragent chart's version.
func TestUmbrellaChart(t *testing.T) {
	chart := umbrellaChart(t)
	t.Run("both on", func(t *testing.T) {
		r := render(t, chart, "")
		if n := len(r.deployments); n != 1 {
			t.Errorf("rendered %d Deployments, want peerdns's", n)
		}
		sts := only(t, "StatefulSet", r.statefulSets)
		agent := sts.Spec.Template.Spec.InitContainers
		if len(agent) != 1 {
			t.Fatalf("init containers %v, want the sidecar", agent)
		}
		if want := "ghcr.io/peerdns/peeragent:" + chartMeta(t, peeragentChart).AppVersion; agent[0].Image != want {
			t.Errorf("sidecar image %s, want %s", agent[0].Image, want)
		}
		if missing := missingArgs(agent[0].Args, "--cluster.source=kubernetes", "--peers.srv=_gossip._tcp.orders.dns-system.peers.peerdns.internal"); len(missing) != 0 {
			t.Errorf("sidecar args %q lack %q", agent[0].Args, missing)
		}
		// The alias's own templates render too: its gossip-key Secret,
		// which the sidecar mounts.
		secret := only(t, "Secret", r.secrets)
		var mounted string
		for _, v := range sts.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				mounted = v.Secret.SecretName
			}
		}
		if mounted != secret.Name {
			t.Errorf("sidecar mounts Secret %q, the alias renders %q", mounted, secret.Name)
		}
	})
	t.Run("peerdns off", func(t *testing.T) {
		r := render(t, chart, "peerdns: {enabled: false}\n")
		if n := len(r.deployments) + len(r.clusterRoles); n != 0 {
			t.Errorf("peerdns.enabled=false rendered %d Deployments and ClusterRoles", n)
		}
		only(t, "StatefulSet", r.statefulSets)
	})
	t.Run("lint", func(t *testing.T) {
		if err := lint(t, chart, ""); err != nil {
			t.Error(err)
		}
	})
}

// TestHelmTestPods: `helm test` runs a pod that resolves a name through the
// chart's Service: peerdns's the SOA of its first zone, asked of the
// Service; peeragent's (with the example) the SRV name the example's agents
// look each other up by, one record per member. Running them needs a node
// (test/node); here they are rendered, and the API server dry-runs them in
// TestChartsApplyToAPIServer.
func TestHelmTestPods(t *testing.T) {
	env := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, e := range c.Env {
			m[e.Name] = e.Value
		}
		return m
	}
	t.Run("peerdns", func(t *testing.T) {
		r := render(t, peerdnsChart, "zones: [db.example., 10.in-addr.arpa.]\n")
		pod := only(t, "test Pod", r.testPods)
		svc := only(t, "Service", r.services)
		c := only(t, "container", pod.Spec.Containers)
		want := map[string]string{"SERVER": svc.Name + "." + releaseNamespace + ".svc", "PORT": "53", "ZONE": "db.example."}
		if diff := cmp.Diff(want, env(c)); diff != "" {
			t.Errorf("test pod env (-want +got):\n%s", diff)
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			t.Errorf("the Service's selector %v selects the test pod (labels %v): it would be sent queries", svc.Spec.Selector, pod.Labels)
		}
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever || !strings.Contains(strings.Join(c.Command, " "), `grep -q "status: NOERROR"`) {
			t.Errorf("test pod restartPolicy %s, command %q: want Never and a check of the answer's status", pod.Spec.RestartPolicy, c.Command)
		}
		if n := len(render(t, peerdnsChart, "tests: {enabled: false}\n").testPods); n != 0 {
			t.Errorf("tests.enabled=false rendered %d test pods", n)
		}
	})
	t.Run("peeragent", func(t *testing.T) {
		if n := len(render(t, peeragentChart, "").testPods); n != 0 {
			t.Errorf("without the example: %d test pods, want none (nothing of this chart to resolve)", n)
		}
		r := render(t, peeragentChart, "example: {enabled: true, replicas: 5}\npeers: {dnsServer: \"10.96.0.53:53\"}\n")
		pod := only(t, "test Pod", r.testPods)
		sts := only(t, "StatefulSet", r.statefulSets)
		var srv string
		for _, a := range sts.Spec.Template.Spec.InitContainers[0].Args {
			if v, ok := strings.CutPrefix(a, "--peers.srv="); ok {
				srv = v
			}
		}
		want := map[string]string{"SRV": srv + ".", "MEMBERS": "5", "SERVER": "@10.96.0.53", "PORT": "53"}
		if diff := cmp.Diff(want, env(only(t, "container", pod.Spec.Containers))); diff != "" {
			t.Errorf("test pod env (-want +got):\n%s", diff)
		}
	})
}

// TestPeerdnsExtraVolumes: extraVolumes and extraVolumeMounts reach the
// pod beside the chart's own volumes (web-config, transfer-key), whose
// names they may not take.
func TestPeerdnsExtraVolumes(t *testing.T) {
	r := render(t, peerdnsChart, `
webConfig: {secretName: web}
transfer: {tsigKey: {secretName: xfr-key}}
extraVolumes: [{name: ca, configMap: {name: cluster-ca}}]
extraVolumeMounts: [{name: ca, mountPath: /etc/ca, readOnly: true}]
`)
	spec := only(t, "Deployment", r.deployments).Spec.Template.Spec
	var vols, mounts []string
	for _, v := range spec.Volumes {
		vols = append(vols, v.Name)
	}
	for _, m := range peerdnsContainer(t, r).VolumeMounts {
		mounts = append(mounts, m.Name+":"+m.MountPath)
	}
	if diff := cmp.Diff([]string{"web-config", "transfer-key", "ca"}, vols); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web-config:/etc/peerdns/web-config", "transfer-key:/etc/peerdns/transfer", "ca:/etc/ca"}, mounts); diff != "" {
		t.Errorf("volume mounts (-want +got):\n%s", diff)
	}
	for _, name := range []string{"web-config", "transfer-key"} {
		_, err := template(t, peerdnsChart, "extraVolumes: [{name: "+name+", emptyDir: {}}]\n")
		wantHelmError(t, err, "extraVolumes")
	}
}

// TestExampleNeedsNoPublishNotReadyAddresses: the example's agents find each
// other in peerdns's peer view, which lists members before they are Ready,
// so its Service does not publish not-ready addresses; only with
// peers.view: svc, the cluster DNS's ready names, does it have to.
func TestExampleNeedsNoPublishNotReadyAddresses(t *testing.T) {
	for _, tt := range []struct {
		values string
		want   bool
	}{
		{"example: {enabled: true}\n", false},
		{"example: {enabled: true}\npeers: {view: svc, domain: cluster.local}\n", true},
	} {
		svc := only(t, "Service", render(t, peeragentChart, tt.values).services)
		if svc.Spec.PublishNotReadyAddresses != tt.want {
			t.Errorf("%q: publishNotReadyAddresses %v, want %v", tt.values, svc.Spec.PublishNotReadyAddresses, tt.want)
		}
	}
}
