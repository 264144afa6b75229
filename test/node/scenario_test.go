package node

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/seed"
	"github.com/peerdns/peerdns/internal/testtools"
)

const (
	imageTag = "e2e"
	// canaryImage is the web server's next version, rolled out to web-1
	// only; the agents gossip the version (NODE_VERSION).
	canaryImage = "localhost/peerdns/seedweb:canary"
)

// scenario is the running cluster of TestSeedOnNode. Its checks are
// package seed's, which the demo (hack/demo) waits on too.
type scenario struct {
	*seed.Cluster
	cp     *controlplane.ControlPlane
	client kubernetes.Interface
	helm   string
	charts string // a copy of the charts the test installs
}

func (s *scenario) helmRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), s.helm, append(args, "--kubeconfig", s.cp.Kubeconfig())...)
	cmd.Env = seed.HelmEnv(filepath.Join(s.charts, ".helm"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wait fails the test unless check passes within limit.
func wait(t *testing.T, what string, limit time.Duration, check seed.Check) {
	t.Helper()
	testtools.Eventually(t, what, limit, func() error { return check(t.Context()) })
}

// TestSeedOnNode is the seed's story on a real node, step by step; each
// step needs the previous ones, so the first failure ends the test.
func TestSeedOnNode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end on a real node; skipped with -short")
	}
	// StartT skips (or under PEERDNS_REQUIRE_TOOLS=1 fails) where this
	// machine cannot run a node.
	s := &scenario{helm: testtools.Path(t, "helm")}
	dig := testtools.Path(t, "dig")
	begin := time.Now()
	s.cp = controlplane.StartT(t, controlplane.Options{Node: true, StubZones: map[string]string{seed.StubZone: seed.PeerDNSIP}})
	t.Logf("control plane and node ready in %v", time.Since(begin).Round(time.Millisecond))
	var err error
	if s.client, err = kubernetes.NewForConfig(s.cp.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	s.Cluster = &seed.Cluster{CP: s.cp, Client: s.client, Dig: dig}
	s.charts = t.TempDir()
	if err := seed.CopyCharts(s.charts); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"images are built and imported", s.loadImages},
		{"peerdns is installed by its chart", s.installPeerDNS},
		{"web pods start in order", s.installSeed},
		{"cluster DNS answers the stub zone from inside a pod", s.digFromPod},
		{"the peer view lists a member before it is ready", s.peerViewUnready},
		{"agents reach quorum", func(t *testing.T) { wait(t, "3 agents alive with quorum", 60*time.Second, s.Quorum(3, 3)) }},
		{"Prometheus discovers the agents and shows quorum", s.prometheusShowsQuorum},
		{"kubectl scale to 5, helm upgrade back to 2: nothing restarts", s.scale},
		{"deleted web-1 is readmitted", s.deletePod},
		{"partitioned rolling update shows the canary", s.canary},
	}
	for _, step := range steps {
		start := time.Now()
		if !t.Run(step.name, step.run) {
			return
		}
		t.Logf("%s: %v", step.name, time.Since(start).Round(time.Millisecond))
	}
}

func (s *scenario) loadImages(t *testing.T) {
	err := s.cp.LoadImages(t.Context(), append(seed.Images(imageTag),
		controlplane.Image{Ref: canaryImage, Package: "./internal/controlplane/cmd/seedweb"})...)
	if err != nil {
		t.Fatal(err)
	}
}

func (s *scenario) installPeerDNS(t *testing.T) {
	s.helmRun(t, seed.InstallPeerDNS(filepath.Join(s.charts, "peerdns"), imageTag)...)
	wait(t, "peerdns Ready", 90*time.Second, s.PodsReady(seed.PeerDNSNamespace, seed.PeerDNSSelector, 1))
}

// installSeed installs the seed and checks OrderedReady: each pod is
// created only once the one before it was Ready (seed.PodLog).
func (s *scenario) installSeed(t *testing.T) {
	log := s.watchPods(t)
	s.helmRun(t, seed.InstallSeed(filepath.Join(s.charts, "seed"), imageTag)...)
	wait(t, "3 seed pods Ready", 120*time.Second, s.PodsReady(seed.Namespace, seed.Selector, 3))
	s.stopLog(t, log)
	if err := log.InOrder(0, 3); err != nil {
		t.Error(err)
	}
}

// digFromPod asks the cluster DNS, from a seed pod's network namespace,
// for the seed's names in the stub zone, as the seed's `dig` does.
func (s *scenario) digFromPod(t *testing.T) {
	wait(t, "dig SRV "+seed.SvcName, 30*time.Second, s.ServiceSRV(3))
	wait(t, "dig A of each pod", 30*time.Second, s.PodAddresses)
}

// peerViewUnready adds a pod behind Service nginx whose readiness probe
// never passes (not one of web's: the StatefulSet does not adopt it): the
// peer view's SRV lists it, the svc view's does not. It is removed again.
func (s *scenario) peerViewUnready(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: seed.Namespace, Name: "unready", Labels: map[string]string{"app": seed.Service}},
		Spec: corev1.PodSpec{
			Hostname:                      "unready",
			Subdomain:                     seed.Service,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers: []corev1.Container{{
				Name: "nginx", Image: controlplane.SeedWebImage, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: seed.WebPort}, {Name: "gossip", ContainerPort: seed.GossipPort}},
				// Nothing listens on 81.
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(81)}}, PeriodSeconds: 1},
			}},
		},
	}
	if _, err := s.client.CoreV1().Pods(seed.Namespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		if err := s.client.CoreV1().Pods(seed.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
		testtools.Eventually(t, "pod unready gone", 60*time.Second, func() error { return s.Gone(pod.Name)(ctx) })
	})
	wait(t, "the peer view lists unready, the svc view does not", 60*time.Second, s.PeerViewOnly(pod.Name))
	p, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !seed.ReadySince(*p).IsZero() {
		t.Fatalf("pod unready is Ready")
	}
}

// scale resizes the seed as an autoscaler or an operator would, with
// `kubectl scale`, then back with `helm upgrade`: nothing in the pod
// template depends on the size, so neither rolls or restarts a pod. The
// agents follow the StatefulSet: web-3 and web-4 join as learners and
// become voters; on the way down the removed ordinals leave the voting set
// once they are gone.
func (s *scenario) scale(t *testing.T) {
	for _, step := range []struct {
		n      int
		resize func()
	}{
		{5, func() { s.kubectlRun(t, "scale", "statefulset", seed.StatefulSet, "--replicas=5") }},
		{2, func() { s.helmRun(t, seed.UpgradeSeed(filepath.Join(s.charts, "seed"), "replicas=2")...) }},
	} {
		n := step.n
		pods, err := s.Pods(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		log := s.watchPods(t)
		step.resize()
		wait(t, "StatefulSet web at "+itoa(n)+" pods", 180*time.Second, s.Rollout(n, 0))
		s.stopLog(t, log)
		if err := log.InOrder(len(pods), n); err != nil {
			t.Error(err)
		}
		wait(t, "dig SRV lists web-0 … web-"+itoa(n-1), 30*time.Second, s.WebSRV(n))
		wait(t, itoa(n)+" agents alive, "+itoa(n)+" voters, with quorum", 90*time.Second, s.Quorum(n, n))
		if err := s.NotRestarted(pods, n)(t.Context()); err != nil {
			t.Errorf("resized to %d: %v", n, err)
		}
	}
}

// kubectlRun runs kubectl against the node's control plane.
func (s *scenario) kubectlRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testtools.Path(t, "kubectl"), append(args, "--kubeconfig", s.cp.Kubeconfig(), "--namespace", seed.Namespace)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// deletePod deletes web-1: the StatefulSet recreates it under the same
// name, perhaps at a new address; DNS serves the new address and every
// agent counts it alive again.
func (s *scenario) deletePod(t *testing.T) {
	web1 := seed.PodName(1)
	old, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), web1, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.CoreV1().Pods(seed.Namespace).Delete(t.Context(), web1, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, web1+" recreated and Ready", 90*time.Second, s.Recreated(web1, old.UID))
	wait(t, "dig A answers each pod's address", 30*time.Second, s.PodAddresses)
	wait(t, "2 agents alive with quorum", 60*time.Second, s.Quorum(2, 2))
}

// canary rolls the web server to a new version with partition 1, on the
// two members scale left: web-1 gets the new version (its image and its
// app.kubernetes.io/version label, which its agent gossips), web-0 keeps
// the old one, and every agent counts the members by version. Then the
// partition drops to 0 and the roll completes.
func (s *scenario) canary(t *testing.T) {
	chart := filepath.Join(s.charts, "seed")
	s.helmRun(t, seed.UpgradeSeed(chart, "partition=1", "webImage="+canaryImage, "version=v2")...)
	wait(t, "StatefulSet web rolled out to web-1 only", 120*time.Second, s.Rollout(2, 1))
	pods, err := s.Pods(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantImage := map[string]string{seed.PodName(0): controlplane.SeedWebImage, seed.PodName(1): canaryImage}
	for _, p := range pods {
		if !slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Image == wantImage[p.Name] }) {
			t.Errorf("%s does not run %s", p.Name, wantImage[p.Name])
		}
	}
	wait(t, "members by version v1 1, v2 1", 60*time.Second, s.ByVersion(map[string]float64{"v1": 1, "v2": 1}))
	s.helmRun(t, seed.UpgradeSeed(chart, "partition=0")...)
	wait(t, "StatefulSet web rolled out", 120*time.Second, s.Rollout(2, 0))
	wait(t, "members by version v1 0, v2 2", 60*time.Second, s.ByVersion(map[string]float64{"v1": 0, "v2": 2}))
	wait(t, "2 agents alive with quorum", 60*time.Second, s.Quorum(2, 2))
}

// watchPods starts a seed.PodLog, stopped when the test ends at the latest.
func (s *scenario) watchPods(t *testing.T) *seed.PodLog {
	t.Helper()
	log, err := s.WatchPods(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stopLog(t, log) })
	return log
}

func (s *scenario) stopLog(t *testing.T, log *seed.PodLog) {
	t.Helper()
	if err := log.Stop(); err != nil {
		t.Error(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
