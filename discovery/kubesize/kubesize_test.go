package kubesize

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

func TestTarget(t *testing.T) {
	three := int32(3)
	for _, tc := range []struct {
		name string
		sts  appsv1.StatefulSet
		want discovery.Target
	}{
		{
			name: "replicas unset defaults to 1",
			sts:  appsv1.StatefulSet{},
			want: discovery.Target{Replicas: 1, Confirmed: true},
		},
		{
			name: "generation not yet observed",
			sts: appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Generation: 2},
				Spec:       appsv1.StatefulSetSpec{Replicas: &three},
				Status:     appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3},
			},
			want: discovery.Target{Replicas: 3},
		},
		{
			name: "scale-down in progress: pods beyond the set remain",
			sts: appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Generation: 2},
				Spec:       appsv1.StatefulSetSpec{Replicas: &three},
				Status:     appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 5},
			},
			want: discovery.Target{Replicas: 3},
		},
		{
			name: "scale-down done",
			sts: appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Generation: 2},
				Spec:       appsv1.StatefulSetSpec{Replicas: &three},
				Status:     appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 3},
			},
			want: discovery.Target{Replicas: 3, Confirmed: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Target(&tc.sts)); diff != "" {
				t.Errorf("Target (-want +got):\n%s", diff)
			}
		})
	}
}

// recorder collects what a Source reports.
type recorder struct {
	mu      sync.Mutex
	targets []discovery.Target
	errs    []error
}

func (r *recorder) update(t discovery.Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets = append(r.targets, t)
}

func (r *recorder) err(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) last() (discovery.Target, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.targets) == 0 {
		return discovery.Target{}, 0, len(r.errs)
	}
	return r.targets[len(r.targets)-1], len(r.targets), len(r.errs)
}

func (r *recorder) want(want discovery.Target) func() error {
	return func() error {
		if got, n, _ := r.last(); n == 0 || got != want {
			return fmt.Errorf("last target %+v (%d reported), want %+v", got, n, want)
		}
		return nil
	}
}

// TestSourceAgainstAPIServer runs the Source against a real kube-apiserver
// with a service account that may only get, list and watch the one
// StatefulSet by name, as the chart's Role grants: it follows scaling,
// and keeps the last size through an API outage and a deletion.
func TestSourceAgainstAPIServer(t *testing.T) {
	cp := controlplane.StartT(t, controlplane.Options{})
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	const ns, name = "db", "web"
	saConfig, err := cp.ServiceAccountConfig(ctx, ns, "peeragent", []rbacv1.PolicyRule{{
		APIGroups:     []string{appsv1.GroupName},
		Resources:     []string{"statefulsets"},
		ResourceNames: []string{name},
		Verbs:         []string{"get", "list", "watch"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(saConfig, ns, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	sts := admin.AppsV1().StatefulSets(ns)
	replicas := func(n int32) *int32 { return &n }
	labels := map[string]string{"app": name}
	for _, n := range []string{name, "other"} {
		_, err := sts.Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: n},
			Spec: appsv1.StatefulSetSpec{
				Replicas:    replicas(3),
				ServiceName: n,
				Selector:    &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The account really is that narrow.
	if _, err := client.AppsV1().StatefulSets(ns).Get(ctx, "other", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("get another statefulset: err = %v, want Forbidden", err)
	}
	if _, err := client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list statefulsets without the name: err = %v, want Forbidden", err)
	}

	rec := &recorder{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		src.Run(runCtx, rec.update, rec.err)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	const wait = 30 * time.Second
	testtools.Eventually(t, "the first size", wait, rec.want(discovery.Target{Replicas: 3}))

	// The controller's status (no controller runs here: the test writes it).
	setStatus := func(pods int32) {
		t.Helper()
		s, err := sts.Get(ctx, name, metav1.GetOptions{})
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
		sc, err := sts.GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc.Spec.Replicas = n
		if _, err := sts.UpdateScale(ctx, name, sc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(3)
	testtools.Eventually(t, "confirmed at 3", wait, rec.want(discovery.Target{Replicas: 3, Confirmed: true}))
	scale(5)
	testtools.Eventually(t, "scaled to 5", wait, rec.want(discovery.Target{Replicas: 5}))
	setStatus(5)
	testtools.Eventually(t, "confirmed at 5", wait, rec.want(discovery.Target{Replicas: 5, Confirmed: true}))

	// An outage reports errors and no new size.
	_, reported, errsBefore := rec.last()
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	testtools.Eventually(t, "the outage is reported", wait, func() error {
		if _, _, n := rec.last(); n == errsBefore {
			return errors.New("no error reported yet")
		}
		return nil
	})
	if got, n, _ := rec.last(); n != reported || got != (discovery.Target{Replicas: 5, Confirmed: true}) {
		t.Fatalf("during the outage: last %+v, %d reported (was %d)", got, n, reported)
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	scale(4)
	testtools.Eventually(t, "scaled to 4 after the outage", wait, rec.want(discovery.Target{Replicas: 4}))

	// Deleting the StatefulSet keeps the last size.
	_, reported, errsBefore = rec.last()
	if err := sts.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testtools.Eventually(t, "the deletion is reported", wait, func() error {
		if _, _, n := rec.last(); n == errsBefore {
			return errors.New("no error reported yet")
		}
		return nil
	})
	if got, n, _ := rec.last(); n != reported || got.Replicas != 4 {
		t.Fatalf("after the deletion: last %+v, %d reported (was %d)", got, n, reported)
	}
}
