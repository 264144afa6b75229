package controlplane

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/peerdns/peerdns/internal/proc"
)

// TestControlPlane shares one control plane, with controllers, among its
// subtests, which run in order: the last one stops it.
func TestControlPlane(t *testing.T) {
	begin := time.Now()
	cp := StartT(t, Options{Controllers: true})
	t.Logf("control plane with controllers started in %v", time.Since(begin).Round(time.Millisecond))
	admin := newClient(t, cp.AdminConfig())

	t.Run("admin lists namespaces", func(t *testing.T) {
		list, err := admin.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ns := range list.Items {
			names = append(names, ns.Name)
		}
		for _, want := range []string{"default", "kube-system"} {
			if !slices.Contains(names, want) {
				t.Errorf("namespaces %v lack %q", names, want)
			}
		}
	})

	t.Run("admin kubeconfig file", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newClient(t, cfg).CoreV1().Secrets("kube-system").List(t.Context(), metav1.ListOptions{}); err != nil {
			t.Errorf("admin from %s cannot list secrets: %v", cp.Kubeconfig(), err)
		}
	})

	t.Run("service account may only do what its rules allow", func(t *testing.T) {
		cfg, err := cp.ServiceAccountConfig(t.Context(), "peerdns", "reader", sliceReader)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "reader.kubeconfig")
		if err := cp.WriteKubeconfig(cfg, path); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig %s: mode %v, err %v; want 0600", path, st.Mode().Perm(), err)
		}
		fromFile, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		for name, cfg := range map[string]*rest.Config{"config": cfg, "kubeconfig file": fromFile} {
			t.Run(name, func(t *testing.T) {
				assertSliceReaderOnly(t, newClient(t, cfg))
			})
		}
	})

	t.Run("seed gets Ready pods and an EndpointSlice with hostnames", func(t *testing.T) {
		ctx := t.Context()
		const ns = "seed"
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := LoadSeed(ctx, admin, ns); err != nil {
			t.Fatal(err)
		}
		t.Logf("seed published in %v", time.Since(start).Round(time.Millisecond))
		podCIDR := netip.MustParsePrefix(PodCIDR)

		pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var gotPods []string
		for _, p := range pods.Items {
			gotPods = append(gotPods, p.Name+" "+string(p.Status.Phase)+" ready="+strconv.FormatBool(podReady(&p))+
				" node="+p.Spec.NodeName+" ip-in-pod-cidr="+strconv.FormatBool(inPrefix(podCIDR, p.Status.PodIP)))
		}
		wantPods := []string{
			"web-0 Running ready=true node=" + FakeNodeName + " ip-in-pod-cidr=true",
			"web-1 Running ready=true node=" + FakeNodeName + " ip-in-pod-cidr=true",
		}
		if diff := cmp.Diff(wantPods, gotPods); diff != "" {
			t.Errorf("pods (-want +got):\n%s", diff)
		}

		sliceList, err := admin.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + SeedService,
		})
		if err != nil {
			t.Fatal(err)
		}
		var gotEndpoints []string
		for _, s := range sliceList.Items {
			for _, ep := range s.Endpoints {
				gotEndpoints = append(gotEndpoints, deref(ep.Hostname)+" ready="+strconv.FormatBool(deref(ep.Conditions.Ready))+
					" addresses-in-pod-cidr="+strconv.FormatBool(len(ep.Addresses) > 0 && inPrefix(podCIDR, ep.Addresses...)))
			}
		}
		wantEndpoints := []string{"web-0 ready=true addresses-in-pod-cidr=true", "web-1 ready=true addresses-in-pod-cidr=true"}
		if diff := cmp.Diff(wantEndpoints, gotEndpoints, cmpSorted); diff != "" {
			t.Errorf("endpoints of %s/%s (-want +got):\n%s", ns, SeedService, diff)
		}
	})

	t.Run("API server restart keeps data and tokens", func(t *testing.T) {
		ctx := t.Context()
		reader, err := cp.ServiceAccountConfig(ctx, "peerdns", "restart-reader", sliceReader)
		if err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "survivor"}, Data: map[string]string{"k": "v"}}
		if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cp.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		t.Logf("API server stopped in %v", time.Since(start).Round(time.Millisecond))
		if _, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{}); err == nil {
			t.Error("get during the outage succeeded")
		}
		start = time.Now()
		if err := cp.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("API server started again in %v", time.Since(start).Round(time.Millisecond))
		got, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(cm.Data, got.Data); diff != "" {
			t.Errorf("config map after restart (-want +got):\n%s", diff)
		}
		if _, err := newClient(t, reader).DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("service-account token issued before the restart: %v", err)
		}
	})

	t.Run("etcd compaction expires watches from older versions", func(t *testing.T) {
		ctx := t.Context()
		cms := admin.CoreV1().ConfigMaps("default")
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "compacted"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		oldRV := cm.ResourceVersion
		cm.Data = map[string]string{"changed": "yes"}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cp.CompactEtcd(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("compacted etcd in %v", time.Since(start).Round(time.Millisecond))
		if err := watchFrom(ctx, cms, oldRV); !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Errorf("watch from resource version %s after compaction: %v; want 410 Gone or Expired", oldRV, err)
		}
		if got, err := cms.Get(ctx, "compacted", metav1.GetOptions{}); err != nil || got.Data["changed"] != "yes" {
			t.Errorf("latest config map after compaction: %v, %v", got, err)
		}
	})

	t.Run("stop leaves no process and no directory", func(t *testing.T) {
		procs := cp.processesStarted()
		dir := cp.Dir()
		if err := cp.Stop(); err != nil {
			t.Fatal(err)
		}
		assertNothingLeft(t, procs, dir)
		if err := cp.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

// sliceReader is peerdns's own permission: list and watch EndpointSlices.
var sliceReader = []rbacv1.PolicyRule{{
	APIGroups: []string{discoveryv1.GroupName},
	Resources: []string{"endpointslices"},
	Verbs:     []string{"list", "watch"},
}}

// assertSliceReaderOnly checks that client may list EndpointSlices in every
// namespace and is refused (403) anything else.
func assertSliceReaderOnly(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	if _, err := client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list endpointslices: %v", err)
	}
	refused := map[string]func() error{
		"list secrets": func() error {
			_, err := client.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
			return err
		},
		"get an endpointslice": func() error {
			_, err := client.DiscoveryV1().EndpointSlices("default").Get(ctx, "x", metav1.GetOptions{})
			return err
		},
		"create an endpointslice": func() error {
			_, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "x"},
				AddressType: discoveryv1.AddressTypeIPv4,
			}, metav1.CreateOptions{})
			return err
		},
	}
	for name, call := range refused {
		if err := call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v; want 403 Forbidden", name, err)
		}
	}
}

// watchFrom opens a watch at resourceVersion and returns the error it
// fails with: from the call, or as its first event.
func watchFrom(ctx context.Context, cms interface {
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}, resourceVersion string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: resourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			return errors.New("watch closed without an event")
		}
		if ev.Type == watch.Error {
			return apierrors.FromObject(ev.Object)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newClient(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func inPrefix(prefix netip.Prefix, addrs ...string) bool {
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !prefix.Contains(ip) {
			return false
		}
	}
	return true
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

var cmpSorted = cmp.Transformer("sorted", func(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
})

// assertNothingLeft checks that every process is gone with its whole group,
// that the test binary has no child left, and that dir was removed.
func assertNothingLeft(t *testing.T, procs []*proc.Process, dir string) {
	t.Helper()
	if len(procs) == 0 {
		t.Error("no process was recorded")
	}
	for _, p := range procs {
		if !p.Exited() {
			t.Errorf("%s (pid %d) still running", p.Name, p.Pid())
		}
		if proc.GroupAlive(p.Pid()) {
			t.Errorf("process group of %s (%d) still has members", p.Name, p.Pid())
		}
	}
	if kids := childrenOf(t, os.Getpid()); len(kids) > 0 {
		t.Errorf("the test binary still has children: %v", kids)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (stat: %v)", dir, err)
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Log("no /proc: cannot list child processes")
		return nil
	}
	var kids []string
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so split after
		// its closing parenthesis.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) >= 2 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, strings.TrimSpace(s[:end+1]))
		}
	}
	return kids
}
