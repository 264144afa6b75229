package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
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

// scenario is the running cluster of TestSeedOnNode.
type scenario struct {
	cp     *controlplane.ControlPlane
	client kubernetes.Interface
	helm   string
	dig    string
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

// TestSeedOnNode is the seed's story on a real node, step by step; each
// step needs the previous ones, so the first failure ends the test.
func TestSeedOnNode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end on a real node; skipped with -short")
	}
	// StartT skips (or under PEERDNS_REQUIRE_TOOLS=1 fails) where this
	// machine cannot run a node.
	s := &scenario{helm: testtools.Path(t, "helm"), dig: testtools.Path(t, "dig")}
	begin := time.Now()
	s.cp = controlplane.StartT(t, controlplane.Options{Node: true, StubZones: map[string]string{seed.StubZone: seed.PeerDNSIP}})
	t.Logf("control plane and node ready in %v", time.Since(begin).Round(time.Millisecond))
	var err error
	if s.client, err = kubernetes.NewForConfig(s.cp.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	s.charts = copyCharts(t)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"images are built and imported", s.loadImages},
		{"peerdns is installed by its chart", s.installPeerDNS},
		{"web pods start in order", s.installSeed},
		{"cluster DNS answers the stub zone from inside a pod", s.digFromPod},
		{"the peer view lists a member before it is ready", s.peerViewUnready},
		{"agents reach quorum", func(t *testing.T) { s.waitQuorum(t, 3, 3) }},
		{"Prometheus discovers the agents and shows quorum", s.prometheusShowsQuorum},
		{"scale to 5 and back to 2", s.scale},
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

// copyCharts copies the charts the test installs into a temporary
// directory (seed.CopyCharts).
func copyCharts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := seed.CopyCharts(dir); err != nil {
		t.Fatal(err)
	}
	return dir
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
	s.waitPods(t, seed.PeerDNSNamespace, "app.kubernetes.io/name=peerdns", 1, 90*time.Second)
}

// installSeed installs the seed and checks OrderedReady: each pod is
// created only once the one before it was Ready, in the order of the API
// server's watch (timestamps have second resolution, and a pod's Ready
// time moves when its readiness flaps).
func (s *scenario) installSeed(t *testing.T) {
	log := s.watchPods(t)
	s.helmRun(t, "install", "seed", filepath.Join(s.charts, "seed"), "--namespace", seed.Namespace)
	s.waitPods(t, seed.Namespace, "app=nginx", 3, 120*time.Second)
	log.stop(t)
	for i := 1; i < 3; i++ {
		if err := log.createdAfterReady(fmt.Sprintf("web-%d", i), fmt.Sprintf("web-%d", i-1)); err != nil {
			t.Error(err)
		}
	}
}

func readySince(p corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// digFromPod asks the cluster DNS, from web-0's network namespace, for
// the seed's names in the stub zone, as the seed's `dig` does.
func (s *scenario) digFromPod(t *testing.T) {
	pods := listPods(t, s.client, seed.Namespace, "app=nginx")
	ips := map[string]string{}
	for _, p := range pods {
		ips[p.Name] = p.Status.PodIP
	}
	svc := "nginx.default.svc.peerdns.internal."
	var want []string
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		want = append(want, fmt.Sprintf("%s 5 IN SRV 0 33 7946 %s.%s", svc, name, svc), fmt.Sprintf("%s 5 IN SRV 0 33 80 %s.%s", svc, name, svc))
	}
	sort.Strings(want)
	testtools.Eventually(t, "dig SRV "+svc, 30*time.Second, func() error {
		got, err := s.digIn(t, pods[0], "SRV", svc)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("answer (-want +got):\n%s", diff)
		}
		return nil
	})
	for name, ip := range ips {
		host := name + "." + svc
		got, err := s.digIn(t, pods[0], "A", host)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{fmt.Sprintf("%s 5 IN A %s", host, ip)}, got); diff != "" {
			t.Errorf("dig A %s (-want +got):\n%s", host, diff)
		}
	}
}

// peerViewUnready adds a pod behind Service nginx whose readiness probe
// never passes (not one of web's: the StatefulSet does not adopt it): the
// peer view's SRV lists it, the svc view's does not. It is removed again.
func (s *scenario) peerViewUnready(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: seed.Namespace, Name: "unready", Labels: map[string]string{"app": "nginx"}},
		Spec: corev1.PodSpec{
			Hostname:                      "unready",
			Subdomain:                     "nginx",
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers: []corev1.Container{{
				Name: "nginx", Image: controlplane.SeedWebImage, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 80}, {Name: "gossip", ContainerPort: 7946}},
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
		testtools.Eventually(t, "pod unready gone", 60*time.Second, func() error {
			_, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return nil
			case err != nil:
				return err
			}
			return errors.New("still there")
		})
	})
	web0, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hasUnready := func(records []string) bool {
		return slices.ContainsFunc(records, func(r string) bool { return strings.HasSuffix(r, " unready.nginx.default.peers.peerdns.internal.") })
	}
	testtools.Eventually(t, "the peer view lists unready", 60*time.Second, func() error {
		got, err := s.digIn(t, *web0, "SRV", "_gossip._tcp.nginx.default.peers.peerdns.internal.")
		if err != nil {
			return err
		}
		if !hasUnready(got) {
			return fmt.Errorf("no unready in %v", got)
		}
		return nil
	})
	p, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !readySince(*p).IsZero() {
		t.Fatalf("pod unready is Ready")
	}
	got, err := s.digIn(t, *web0, "SRV", "_web._tcp.nginx.default.svc.peerdns.internal.")
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, "unready.") }) {
		t.Errorf("the svc view lists the unready pod: %v", got)
	}
}

// digIn runs dig in pod's network namespace against the cluster DNS and
// returns the answer section, one normalised record per line, sorted.
func (s *scenario) digIn(t *testing.T, pod corev1.Pod, qtype, name string) ([]string, error) {
	t.Helper()
	cmd, err := s.cp.PodNetworkCommand(t.Context(), &pod, s.dig, "@"+controlplane.ClusterDNSIP, "+noall", "+answer", "+tries=1", "+time=2", qtype, name)
	if err != nil {
		return nil, err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dig %s %s: %w: %s", qtype, name, err, out)
	}
	var records []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], ";") {
			records = append(records, strings.Join(f, " "))
		}
	}
	sort.Strings(records)
	return records, nil
}

// waitQuorum waits until every seed pod's agent reports members alive and
// quorum held with expected members.
func (s *scenario) waitQuorum(t *testing.T, alive, expected int) {
	t.Helper()
	testtools.Eventually(t, fmt.Sprintf("%d agents alive with quorum", alive), 60*time.Second, func() error {
		pods := listPods(t, s.client, seed.Namespace, "app=nginx")
		if len(pods) != alive {
			return fmt.Errorf("%d pods, want %d", len(pods), alive)
		}
		for _, p := range pods {
			m, err := seed.Scrape(t.Context(), p.Status.PodIP)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			want := map[string]float64{
				`peeragent_members{state="alive"}`: float64(alive),
				`peeragent_expected_members`:       float64(expected),
				`peeragent_has_quorum`:             1,
			}
			for k, v := range want {
				if m[k] != v {
					return fmt.Errorf("%s: %s = %v, want %v", p.Name, k, m[k], v)
				}
			}
		}
		return nil
	})
}

// scale resizes the seed the way its chart is meant to be resized: the
// chart's replicas is both the StatefulSet's and the agents'
// --cluster.expected, so changing it rolls every pod to the new expected
// size (docs/peeragent.md, "Changing N"). `kubectl scale` alone would
// leave the template at 3, and an agent named web-3 refuses to start
// outside the expected set web-0 … web-2.
func (s *scenario) scale(t *testing.T) {
	for _, n := range []int{5, 2} {
		before := len(listPods(t, s.client, seed.Namespace, "app=nginx"))
		log := s.watchPods(t)
		s.helmRun(t, "upgrade", "seed", filepath.Join(s.charts, "seed"), "--namespace", seed.Namespace,
			"--reuse-values", "--set", fmt.Sprintf("replicas=%d", n))
		s.waitRollout(t, n, 0, 180*time.Second)
		log.stop(t)
		for i := before; i < n; i++ {
			if err := log.createdAfterReady(fmt.Sprintf("web-%d", i), fmt.Sprintf("web-%d", i-1)); err != nil {
				t.Error(err)
			}
		}
		for i := n; i < before-1; i++ {
			if err := log.deletedAfterGone(fmt.Sprintf("web-%d", i), fmt.Sprintf("web-%d", i+1)); err != nil {
				t.Error(err)
			}
		}
		s.waitSRV(t, n)
		s.waitQuorum(t, n, n)
	}
}

// waitSRV waits until the cluster DNS lists exactly web-0 … web-(n-1) for
// the seed's web port: the ready members, in the svc view.
func (s *scenario) waitSRV(t *testing.T, n int) {
	t.Helper()
	svc := "nginx.default.svc.peerdns.internal."
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("_web._tcp.%s 5 IN SRV 0 %d 80 web-%d.%s", svc, 100/n, i, svc))
	}
	testtools.Eventually(t, fmt.Sprintf("dig SRV lists web-0 … web-%d", n-1), 30*time.Second, func() error {
		pods := listPods(t, s.client, seed.Namespace, "app=nginx")
		if len(pods) == 0 {
			return fmt.Errorf("no pods")
		}
		got, err := s.digIn(t, pods[0], "SRV", "_web._tcp."+svc)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("answer (-want +got):\n%s", diff)
		}
		return nil
	})
}

// waitRollout waits until StatefulSet web has rolled out: n pods, all
// Ready, those from ordinal partition on at the update revision, those
// below at the current one, none terminating.
func (s *scenario) waitRollout(t *testing.T, n, partition int, limit time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testtools.Eventually(t, fmt.Sprintf("StatefulSet web rolled out to %d pods (partition %d)", n, partition), limit, func() error {
		sts, err := s.client.AppsV1().StatefulSets(seed.Namespace).Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if sts.Status.ObservedGeneration != sts.Generation {
			return fmt.Errorf("generation %d not observed yet", sts.Generation)
		}
		pods = listPods(t, s.client, seed.Namespace, "app=nginx")
		if len(pods) != n {
			return fmt.Errorf("%d pods, want %d", len(pods), n)
		}
		for i, p := range pods {
			want := sts.Status.UpdateRevision
			if i < partition {
				want = sts.Status.CurrentRevision
			}
			switch {
			case p.Name != fmt.Sprintf("web-%d", i):
				return fmt.Errorf("pod %s, want web-%d", p.Name, i)
			case p.DeletionTimestamp != nil:
				return fmt.Errorf("%s terminating", p.Name)
			case p.Labels["controller-revision-hash"] != want:
				return fmt.Errorf("%s at revision %s, want %s", p.Name, p.Labels["controller-revision-hash"], want)
			case readySince(p).IsZero():
				return fmt.Errorf("%s: %s, not Ready", p.Name, p.Status.Phase)
			}
		}
		return nil
	})
	return pods
}

// deletePod deletes web-1: the StatefulSet recreates it under the same
// name, perhaps at a new address; DNS serves the new address and every
// agent counts it alive again.
func (s *scenario) deletePod(t *testing.T) {
	old, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.CoreV1().Pods(seed.Namespace).Delete(t.Context(), "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var ip string
	testtools.Eventually(t, "web-1 recreated and Ready", 90*time.Second, func() error {
		p, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), "web-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID == old.UID {
			return fmt.Errorf("still the old pod")
		}
		if readySince(*p).IsZero() {
			return fmt.Errorf("not Ready")
		}
		ip = p.Status.PodIP
		return nil
	})
	t.Logf("web-1 was at %s, is at %s", old.Status.PodIP, ip)
	host := "web-1.nginx.default.svc.peerdns.internal."
	testtools.Eventually(t, "dig A "+host+" answers the new address", 30*time.Second, func() error {
		got, err := s.digIn(t, listPods(t, s.client, seed.Namespace, "app=nginx")[0], "A", host)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{fmt.Sprintf("%s 5 IN A %s", host, ip)}, got); diff != "" {
			return fmt.Errorf("answer (-want +got):\n%s", diff)
		}
		return nil
	})
	s.waitQuorum(t, 2, 2)
}

// canary rolls the web server to a new version with partition 1, on the
// two members scale left: web-1 gets the new version (its image and its
// app.kubernetes.io/version label, which its agent gossips), web-0 keeps
// the old one, and every agent counts the members by version. Then the
// partition drops to 0 and the roll completes.
func (s *scenario) canary(t *testing.T) {
	s.helmRun(t, "upgrade", "seed", filepath.Join(s.charts, "seed"), "--namespace", seed.Namespace, "--reuse-values",
		"--set", "partition=1", "--set", "webImage="+canaryImage, "--set", "version=v2")
	pods := s.waitRollout(t, 2, 1, 120*time.Second)
	wantImage := map[string]string{"web-0": controlplane.SeedWebImage, "web-1": canaryImage}
	for _, p := range pods {
		if !slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Image == wantImage[p.Name] }) {
			t.Errorf("%s does not run %s", p.Name, wantImage[p.Name])
		}
	}
	s.waitByVersion(t, map[string]float64{"v1": 1, "v2": 1})
	s.helmRun(t, "upgrade", "seed", filepath.Join(s.charts, "seed"), "--namespace", seed.Namespace, "--reuse-values",
		"--set", "partition=0")
	s.waitRollout(t, 2, 0, 120*time.Second)
	s.waitByVersion(t, map[string]float64{"v1": 0, "v2": 2})
	s.waitQuorum(t, 2, 2)
}

// waitByVersion waits until every agent's peeragent_members_by_version
// has the given values (0 for a version that must be gone).
func (s *scenario) waitByVersion(t *testing.T, want map[string]float64) {
	t.Helper()
	testtools.Eventually(t, fmt.Sprintf("members by version %v", want), 60*time.Second, func() error {
		for _, p := range listPods(t, s.client, seed.Namespace, "app=nginx") {
			m, err := seed.Scrape(t.Context(), p.Status.PodIP)
			if err != nil {
				return err
			}
			for v, n := range want {
				key := fmt.Sprintf(`peeragent_members_by_version{version="%s"}`, v)
				if m[key] != n {
					return fmt.Errorf("%s: %s = %v, want %v", p.Name, key, m[key], n)
				}
			}
		}
		return nil
	})
}

// podEvent is one change of a seed pod, as a watch saw it.
type podEvent struct {
	typ      watch.EventType
	name     string
	uid      types.UID
	ready    bool
	deleting bool
}

// podLog records the seed's pod events in the order the API server
// serialised them, so that "created after" and "deleted after" are
// decided without comparing timestamps of second resolution.
type podLog struct {
	mu     sync.Mutex
	events []podEvent
	w      watch.Interface
	done   chan struct{}
	ended  bool // the watch ended before stop: events may be missing
}

// watchPods starts a podLog: the current pods first, as Added, then every
// change from the same resource version on.
func (s *scenario) watchPods(t *testing.T) *podLog {
	t.Helper()
	opts := metav1.ListOptions{LabelSelector: "app=nginx"}
	list, err := s.client.CoreV1().Pods(seed.Namespace).List(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l := &podLog{done: make(chan struct{})}
	for i := range list.Items {
		l.add(watch.Added, &list.Items[i])
	}
	opts.ResourceVersion = list.ResourceVersion
	if l.w, err = s.client.CoreV1().Pods(seed.Namespace).Watch(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(l.done)
		for ev := range l.w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				l.add(ev.Type, p)
			}
		}
		l.mu.Lock()
		l.ended = true
		l.mu.Unlock()
	}()
	t.Cleanup(func() { l.stop(t) })
	return l
}

func (l *podLog) add(typ watch.EventType, p *corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, podEvent{typ: typ, name: p.Name, uid: p.UID, ready: !readySince(*p).IsZero(), deleting: p.DeletionTimestamp != nil})
}

// stop ends the watch; it fails the test if the watch had ended by itself.
func (l *podLog) stop(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	ended, w := l.ended, l.w
	l.w = nil
	l.mu.Unlock()
	if w == nil {
		return
	}
	if ended {
		t.Error("the pod watch ended early: the order checks may miss events")
	}
	w.Stop()
	<-l.done
}

// index returns the position of the first event matching, or -1.
func (l *podLog) index(match func(podEvent) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.IndexFunc(l.events, match)
}

// createdAfterReady checks that pod name was first added only after a pod
// named prev had been seen Ready (OrderedReady creation).
func (l *podLog) createdAfterReady(name, prev string) error {
	created := l.index(func(e podEvent) bool { return e.name == name && e.typ == watch.Added })
	ready := l.index(func(e podEvent) bool { return e.name == prev && e.ready && !e.deleting })
	if created < 0 || ready < 0 || created < ready {
		return fmt.Errorf("%s created at event %d, %s first Ready at event %d: not in order", name, created, prev, ready)
	}
	return nil
}

// deletedAfterGone checks that pod name began terminating only after pod
// next was gone (OrderedReady scale-down, highest ordinal first).
func (l *podLog) deletedAfterGone(name, next string) error {
	deleting := l.index(func(e podEvent) bool { return e.name == name && (e.deleting || e.typ == watch.Deleted) })
	gone := l.index(func(e podEvent) bool { return e.name == next && e.typ == watch.Deleted })
	if deleting < 0 || gone < 0 || deleting < gone {
		return fmt.Errorf("%s began terminating at event %d, %s gone at event %d: not in order", name, deleting, next, gone)
	}
	return nil
}

func listPods(t *testing.T, client kubernetes.Interface, ns, selector string) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

// waitPods waits until exactly want pods match and all are Ready, and
// returns them sorted by name.
func (s *scenario) waitPods(t *testing.T, ns, selector string, want int, limit time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testtools.Eventually(t, fmt.Sprintf("%d pods %s Ready", want, selector), limit, func() error {
		pods = listPods(t, s.client, ns, selector)
		if len(pods) != want {
			return fmt.Errorf("%d pods, want %d", len(pods), want)
		}
		for _, p := range pods {
			if p.DeletionTimestamp != nil || readySince(p).IsZero() {
				return fmt.Errorf("%s: %s, not Ready: %+v", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
			}
		}
		return nil
	})
	return pods
}
