package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
)

// Agent processes follow their StatefulSet through a real kube-apiserver,
// with a service account that may read only that StatefulSet: a scale-up
// adds a voter once its pod has been up for the stabilization time; an API
// outage keeps the size; a scale-down whose removed pod crashed commits
// only once the StatefulSet's status says the pod is gone.
func TestFollowsTheStatefulSet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes and a control plane")
	}
	cp := controlplane.StartT(t, controlplane.Options{})
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	const ns = "db"
	saConfig, err := cp.ServiceAccountConfig(ctx, ns, "web", []rbacv1.PolicyRule{{
		APIGroups: []string{"apps"}, Resources: []string{"statefulsets"},
		ResourceNames: []string{"web"}, Verbs: []string{"get", "list", "watch"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(saConfig, kubeconfig); err != nil {
		t.Fatal(err)
	}
	sts := admin.AppsV1().StatefulSets(ns)
	three := int32(3)
	labels := map[string]string{"app": "web"}
	if _, err := sts.Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &three, ServiceName: "web",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller runs here: the test writes what it would.
	setStatus := func(pods int32) {
		t.Helper()
		s, err := sts.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Status.ObservedGeneration, s.Status.Replicas = s.Generation, pods
		if _, err := sts.UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scale := func(n int32) {
		t.Helper()
		sc, err := sts.GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc.Spec.Replicas = n
		if _, err := sts.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(3)

	const srvName = "_gossip._tcp.web.test"
	gossip := map[string]int{}
	targets := map[string]int{}
	for i := range 4 {
		name := fmt.Sprintf("web-%d", i)
		gossip[name] = freePort(t)
		targets[name+".web.test"] = gossip[name]
	}
	dnsAddr := serveZone(t, srvName, targets)
	t.Setenv("POD_NAMESPACE", ns)
	start := func(name string) *proc {
		return startProc(t, name,
			"--node.name="+name,
			"--cluster.expected=1",
			"--cluster.source=kubernetes",
			"--kubeconfig="+kubeconfig,
			"--cluster.stabilization-time=1s",
			fmt.Sprintf("--gossip.listen-address=127.0.0.1:%d", gossip[name]),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)),
			"--peers.srv="+srvName,
			"--peers.dns-server="+dnsAddr,
			"--peers.refresh-min-interval=50ms",
			"--gossip.profile=local",
			"--gossip.probe-interval=200ms",
			"--gossip.probe-timeout=100ms",
		)
	}
	var agents []*proc
	for i := range 3 {
		agents = append(agents, start(fmt.Sprintf("web-%d", i)))
	}
	all := func(what string, series string, want float64, procs ...*proc) {
		t.Helper()
		for _, p := range procs {
			eventually(t, p.name+" "+what, wantMetric(p, series, want))
		}
	}
	all("follows 3 replicas", "peeragent_voters", 3, agents...)
	all("has quorum", "peeragent_has_quorum", 1, agents...)

	// Scale up: web-3 starts as a learner and votes once stable.
	scale(4)
	web3 := start("web-3")
	agents = append(agents, web3)
	began := time.Now()
	all("four voters", "peeragent_voters", 4, agents...)
	t.Logf("web-3 a voter on all four %v after it started", time.Since(began).Round(time.Millisecond))
	all("voter", "peeragent_voter", 1, web3)

	// An API outage keeps the size.
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the outage is seen", func() error {
		v, err := agents[0].metric("peeragent_expected_source_errors_total")
		if err != nil {
			return err
		}
		if v == 0 {
			return fmt.Errorf("no size source error counted yet")
		}
		return nil
	})
	for _, p := range agents {
		for series, want := range map[string]float64{"peeragent_voters": 4, "peeragent_expected_members": 4, "peeragent_has_quorum": 1} {
			if err := wantMetric(p, series, want)(); err != nil {
				t.Errorf("during the outage: %v", err)
			}
		}
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}

	// Scale down, and web-3 crashes instead of leaving: the shrink stays
	// in flight until the StatefulSet's status confirms its pod is gone.
	survivors := agents[:3]
	scale(3)
	all("the shrink in flight", "peeragent_config_transition", 1, survivors...)
	if code := web3.signal(t, syscall.SIGKILL); code != -1 {
		t.Errorf("web-3 exit code after SIGKILL = %d, want -1", code)
	}
	all("web-3 dead", `peeragent_members{state="dead"}`, 1, survivors...)
	for _, p := range survivors {
		if err := wantMetric(p, "peeragent_config_transition", 1)(); err != nil {
			t.Errorf("before the status confirms: %v", err)
		}
	}
	setStatus(3)
	confirmed := time.Now()
	all("the shrink committed", "peeragent_config_transition", 0, survivors...)
	t.Logf("shrink committed on all three %v after the status confirmed", time.Since(confirmed).Round(time.Millisecond))
	all("three voters", "peeragent_voters", 3, survivors...)
	all("has quorum", "peeragent_has_quorum", 1, survivors...)
}
