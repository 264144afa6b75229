// Package kubesize is peeragent's size source on Kubernetes: it watches
// one StatefulSet by name and reports its spec.replicas as the target
// size. It is the only part of the agent that imports client-go, so the
// discovery package builds and tests without it.
//
// It needs get, list and watch on that one StatefulSet, which an RBAC Role
// grants with resourceNames: the list and watch carry the field selector
// metadata.name=<name> that such a rule requires.
package kubesize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/internal/kubeclient"
)

// statefulSets lists and watches StatefulSets of one namespace:
// kubeclient.Lister, or client-go's typed StatefulSetInterface.
type statefulSets interface {
	List(ctx context.Context, opts metav1.ListOptions) (*appsv1.StatefulSetList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// Source watches the StatefulSet Namespace/Name. Create it with New.
type Source struct {
	client    statefulSets
	health    *health
	namespace string
	name      string
	start     int
}

// New returns a Source for the StatefulSet namespace/name, reached with
// cfg (which it copies). start is the agent's ordinal start
// (--cluster.ordinal-start): a StatefulSet whose spec.ordinals.start
// differs is reported as an error, with its replicas still used.
func New(cfg *rest.Config, namespace, name string, start int) (*Source, error) {
	h := &health{}
	rc := rest.CopyConfig(cfg)
	rc.Wrap(h.wrap)
	// Not client-go's generated clientset: it links in every built-in API
	// group (see kubeclient.Lister), 9 MB of the agent's image.
	client, err := kubeclient.New(rc, namespace,
		kubeclient.Resource{GroupVersion: appsv1.SchemeGroupVersion, APIPath: "/apis", Name: "statefulsets", AddToScheme: appsv1.AddToScheme},
		func() *appsv1.StatefulSetList { return &appsv1.StatefulSetList{} })
	if err != nil {
		return nil, fmt.Errorf("statefulset client: %w", err)
	}
	return &Source{client: client, health: h, namespace: namespace, name: name, start: start}, nil
}

// health reports failed requests to the API server. workaround: the
// informer retries a refused connection without calling its watch error
// handler, so an outage is only visible in the transport.
type health struct {
	mu      sync.Mutex
	errs    func(error)
	lastErr string
}

func (h *health) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		switch {
		case err != nil:
			h.fail(err)
		case resp.StatusCode >= 500:
			h.fail(fmt.Errorf("%s", resp.Status))
		default:
			h.ok()
		}
		return resp, err
	})
}

// fail reports err once per run of identical errors.
func (h *health) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err.Error() == h.lastErr || h.errs == nil {
		return
	}
	h.lastErr = err.Error()
	h.errs(fmt.Errorf("%w: API server: %w", discovery.ErrSize, err))
}

func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = ""
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var _ discovery.SizeSource = (*Source)(nil)

// Target is the StatefulSet's size as the agent needs it: spec.replicas
// (1 when unset, as the API defaults it), and Confirmed once the
// controller has observed this generation and counts no more pods than
// spec.replicas (status.replicas counts the pods it owns, terminating ones
// included), so no pod beyond the set exists.
func Target(s *appsv1.StatefulSet) discovery.Target {
	replicas := 1
	if s.Spec.Replicas != nil {
		replicas = int(*s.Spec.Replicas)
	}
	return discovery.Target{
		Replicas: replicas,
		Confirmed: s.Status.ObservedGeneration >= s.Generation &&
			int(s.Status.Replicas) <= replicas,
	}
}

func ordinalStart(s *appsv1.StatefulSet) int {
	if s.Spec.Ordinals == nil {
		return 0
	}
	return int(s.Spec.Ordinals.Start)
}

// Run watches the StatefulSet until ctx is done. It reports each change of
// the target; a deleted StatefulSet, a failed list or watch, or an API
// outage reports an error and keeps the last target (the informer keeps
// retrying with backoff).
func (s *Source) Run(ctx context.Context, update func(discovery.Target), errs func(error)) {
	if errs == nil {
		errs = func(error) {}
	}
	// Report each error once in a row: the informer retries with backoff
	// and would repeat a refused list every few seconds.
	var emu sync.Mutex
	lastErr := ""
	report := errs
	errs = func(err error) {
		emu.Lock()
		defer emu.Unlock()
		if err.Error() == lastErr {
			return
		}
		lastErr = err.Error()
		report(err)
	}
	s.health.mu.Lock()
	s.health.errs = errs
	s.health.mu.Unlock()
	byName := fields.OneTermEqualSelector("metadata.name", s.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return s.client.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return s.client.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, &appsv1.StatefulSet{}, cache.SharedIndexInformerOptions{})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return // a watch closed or expired: the informer reopens or relists
		}
		errs(fmt.Errorf("%w: watch statefulset %s/%s: %w", discovery.ErrSize, s.namespace, s.name, err))
	})
	var mu sync.Mutex
	var last *discovery.Target
	observe := func(obj any) {
		sts, ok := obj.(*appsv1.StatefulSet)
		if !ok || sts.Name != s.name {
			return
		}
		if got := ordinalStart(sts); got != s.start {
			errs(fmt.Errorf("%w: statefulset %s/%s has ordinals.start %d, the agent %d", discovery.ErrSize, s.namespace, s.name, got, s.start))
		}
		t := Target(sts)
		mu.Lock()
		defer mu.Unlock()
		if last != nil && *last == t {
			return
		}
		last = &t
		emu.Lock()
		lastErr = ""
		emu.Unlock()
		update(t)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(any) {
			errs(fmt.Errorf("%w: statefulset %s/%s deleted; keeping the last size", discovery.ErrSize, s.namespace, s.name))
		},
	})
	inf.RunWithContext(ctx)
}

// RESTConfig loads the client configuration: the kubeconfig file at path,
// or with an empty path the pod's service account.
func RESTConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("load in-cluster configuration: %w", err)
	}
	return cfg, nil
}
