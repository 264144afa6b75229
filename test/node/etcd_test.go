package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/seed"
	"github.com/peerdns/peerdns/internal/testtools"
)

// etcdCanaryImage is etcd's "next version" for the rolling update: the same
// binary under another name, so the pods' template changes.
const etcdCanaryImage = "localhost/peerdns/etcd:canary"

// TestEtcdOnNode runs the seed's database on a real node: a StatefulSet of
// three etcd members that bootstrap with --discovery-srv from peerdns's
// peer view, through the cluster DNS, each on its own PersistentVolume.
func TestEtcdOnNode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end on a real node; skipped with -short")
	}
	s := &scenario{helm: testtools.Path(t, "helm")}
	// Made before the node starts, so it is removed after the node has
	// stopped and nothing writes to it any more.
	dataDir := t.TempDir()
	begin := time.Now()
	s.cp = controlplane.StartT(t, controlplane.Options{Node: true, StubZones: map[string]string{seed.StubZone: seed.PeerDNSIP}})
	t.Logf("control plane and node ready in %v", time.Since(begin).Round(time.Millisecond))
	var err error
	if s.client, err = kubernetes.NewForConfig(s.cp.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	s.Cluster = &seed.Cluster{CP: s.cp, Client: s.client}
	s.charts = t.TempDir()
	if err := seed.CopyCharts(s.charts); err != nil {
		t.Fatal(err)
	}
	if err := seed.EtcdDataDirs(dataDir, seed.EtcdReplicas); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"images are built and imported", func(t *testing.T) {
			canary := s.cp.EtcdImage()
			canary.Ref = etcdCanaryImage
			if err := s.cp.LoadImages(t.Context(), append(seed.Images(imageTag), append(seed.EtcdImages(s.cp), canary)...)...); err != nil {
				t.Fatal(err)
			}
		}},
		{"peerdns is installed by its chart", s.installPeerDNS},
		{"etcd bootstraps 3 members from the peer view", func(t *testing.T) {
			start := time.Now()
			s.helmRun(t, seed.InstallEtcd(filepath.Join(s.charts, "etcd"), dataDir, imageTag)...)
			wait(t, "3 etcd members healthy", 180*time.Second, s.EtcdHealthy(seed.EtcdReplicas))
			t.Logf("install to a healthy 3-member etcd: %v", time.Since(start).Round(time.Millisecond))
			for i := range seed.EtcdReplicas {
				logs, err := s.client.CoreV1().Pods(seed.Namespace).GetLogs(seed.EtcdPodName(i), &corev1.PodLogOptions{Container: "srvwait"}).DoRaw(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s's srvwait:\n%s", seed.EtcdPodName(i), logs)
			}
			s.etcdAgentsAgree(t)
		}},
		{"the Service's labels are on its EndpointSlices", func(t *testing.T) {
			wait(t, "EndpointSlices of etcd labelled as the Service", 30*time.Second, s.SliceLabelsCopied(seed.EtcdService))
		}},
		{"a key written on one member is read on another", func(t *testing.T) {
			s.etcdPut(t, seed.EtcdPodName(0), "seed", "v1")
			wait(t, "etcd-2 reads seed=v1", 30*time.Second, s.EtcdHas(seed.EtcdPodName(2), "seed", "v1"))
		}},
		{"a deleted member comes back with its data", func(t *testing.T) { s.etcdMemberDeleted(t, dataDir) }},
		{"the StatefulSet deleted and recreated restarts from its volumes", s.etcdRecreated},
		{"a partitioned rolling update keeps a majority healthy", s.etcdRollingUpdate},
	}
	for _, step := range steps {
		start := time.Now()
		if !t.Run(step.name, step.run) {
			return
		}
		t.Logf("%s: %v", step.name, time.Since(start).Round(time.Millisecond))
	}
}

func (s *scenario) etcdPut(t *testing.T, pod, key, value string) {
	t.Helper()
	p, err := s.client.CoreV1().Pods(seed.Namespace).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EtcdPut(t.Context(), *p, key, value); err != nil {
		t.Fatal(err)
	}
}

// etcdMemberDeleted deletes etcd-1: the StatefulSet recreates it under the
// same name on the same claim, and it rejoins as the member it was (the
// member list is unchanged), the key written before still there. Its data
// is on the node, in its PersistentVolume's directory under dataDir.
func (s *scenario) etcdMemberDeleted(t *testing.T, dataDir string) {
	name := seed.EtcdPodName(1)
	ctx := t.Context()
	wal := filepath.Join(dataDir, name, "data", "member", "wal")
	if _, err := os.ReadDir(wal); err != nil {
		t.Fatalf("%s's data is not in its volume: %v", name, err)
	}
	pod0, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.EtcdPodName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.EtcdMembers(ctx, *pod0)
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.CoreV1().Pods(seed.Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, name+" recreated and Ready", 120*time.Second, s.Recreated(name, old.UID))
	wait(t, "3 etcd members healthy", 60*time.Second, s.EtcdHealthy(seed.EtcdReplicas))
	p, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.EtcdMembers(ctx, *p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("member list changed (-before +after):\n%s", diff)
	}
	wait(t, name+" reads seed=v1", 30*time.Second, s.EtcdHas(name, "seed", "v1"))
	s.etcdAgentsAgree(t)
}

// etcdAgentsAgree checks that the sidecars' view agrees with etcd's healthy
// 3 members: 3 alive of 3, with quorum, and etcd still healthy after.
func (s *scenario) etcdAgentsAgree(t *testing.T) {
	t.Helper()
	wait(t, "3 etcd agents alive with quorum", 60*time.Second, s.EtcdQuorum(seed.EtcdReplicas, seed.EtcdReplicas))
	if err := s.EtcdHealthy(seed.EtcdReplicas)(t.Context()); err != nil {
		t.Errorf("the agents hold quorum, etcd does not: %v", err)
	}
}

// etcdRecreated deletes StatefulSet etcd with its pods, keeping the claims
// (a StatefulSet's default retention), and creates it again as it was: the
// members restart from their volumes, no new cluster bootstraps (the
// member list is unchanged) and the key is still there.
func (s *scenario) etcdRecreated(t *testing.T) {
	ctx := t.Context()
	pod0, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.EtcdPodName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.EtcdMembers(ctx, *pod0)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := s.client.AppsV1().StatefulSets(seed.Namespace).Get(ctx, seed.EtcdStatefulSet, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foreground := metav1.DeletePropagationForeground
	if err := s.client.AppsV1().StatefulSets(seed.Namespace).Delete(ctx, sts.Name, metav1.DeleteOptions{PropagationPolicy: &foreground}); err != nil {
		t.Fatal(err)
	}
	wait(t, "etcd pods gone", 120*time.Second, s.PodsGone(seed.EtcdSelector))
	again := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: sts.Name, Labels: sts.Labels, Annotations: sts.Annotations},
		Spec:       sts.Spec,
	}
	if _, err := s.client.AppsV1().StatefulSets(seed.Namespace).Create(ctx, again, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, "3 etcd members healthy", 180*time.Second, s.EtcdHealthy(seed.EtcdReplicas))
	pod0, err = s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.EtcdPodName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.EtcdMembers(ctx, *pod0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("member list changed (-before +after):\n%s", diff)
	}
	for i := range seed.EtcdReplicas {
		wait(t, seed.EtcdPodName(i)+" reads seed=v1", 30*time.Second, s.EtcdHas(seed.EtcdPodName(i), "seed", "v1"))
	}
	s.etcdAgentsAgree(t)
}

// etcdRollingUpdate rolls the members to another image, first etcd-2 alone
// (partition 2), then the others, sampling every member's /health
// throughout: a majority answers true at every sample, and at the end the
// same 3 members hold the key.
func (s *scenario) etcdRollingUpdate(t *testing.T) {
	ctx := t.Context()
	pod0, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.EtcdPodName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.EtcdMembers(ctx, *pod0)
	if err != nil {
		t.Fatal(err)
	}
	samples, fewest := 0, seed.EtcdReplicas
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := s.EtcdHealthyCount(ctx); err == nil {
				samples++
				fewest = min(fewest, n)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	chart := filepath.Join(s.charts, "etcd")
	s.helmRun(t, seed.UpgradeEtcd(chart, "partition=2", "image="+etcdCanaryImage)...)
	old := controlplane.EtcdImageRef
	wait(t, "etcd-2 alone runs the canary", 120*time.Second, s.EtcdRunning(map[string]string{
		seed.EtcdPodName(0): old, seed.EtcdPodName(1): old, seed.EtcdPodName(2): etcdCanaryImage}))
	wait(t, "3 etcd members healthy", 60*time.Second, s.EtcdHealthy(seed.EtcdReplicas))
	s.helmRun(t, seed.UpgradeEtcd(chart, "partition=0")...)
	wait(t, "every member runs the canary", 180*time.Second, s.EtcdRunning(map[string]string{
		seed.EtcdPodName(0): etcdCanaryImage, seed.EtcdPodName(1): etcdCanaryImage, seed.EtcdPodName(2): etcdCanaryImage}))
	wait(t, "3 etcd members healthy", 60*time.Second, s.EtcdHealthy(seed.EtcdReplicas))
	close(stop)
	<-done
	t.Logf("%d samples of /health?serializable=true during the roll; fewest healthy members %d of %d", samples, fewest, seed.EtcdReplicas)
	if quorum := seed.EtcdReplicas/2 + 1; samples == 0 || fewest < quorum {
		t.Errorf("%d samples, fewest healthy members %d, want at least %d throughout", samples, fewest, quorum)
	}
	pod0, err = s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.EtcdPodName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.EtcdMembers(ctx, *pod0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("member list changed (-before +after):\n%s", diff)
	}
	for i := range seed.EtcdReplicas {
		wait(t, seed.EtcdPodName(i)+" reads seed=v1", 30*time.Second, s.EtcdHas(seed.EtcdPodName(i), "seed", "v1"))
	}
	s.etcdAgentsAgree(t)
}
