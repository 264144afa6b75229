package kube

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// What Config.ReadServices adds: a second slice watch and a Service watch.
const (
	// selectUnlabelled selects, on the server, the slices the first watch
	// (labelHeadless) misses and a headless Service may have: those with a
	// service but without the headless label, except the endpointslice
	// controller's, which it labels whenever the Service is headless (its
	// unlabelled slices belong to Services with a cluster IP, most of a
	// cluster's slices, and are never served).
	selectUnlabelled = labelServiceName + ",!" + labelHeadless + "," +
		discoveryv1.LabelManagedBy + "!=endpointslice-controller.k8s.io"
	// selectHeadlessServices selects the headless Services on the server. A
	// Service's cluster IP is immutable but for a change of type to
	// ExternalName, which clears it: the watch then reports a delete.
	selectHeadlessServices = "spec.clusterIP=" + corev1.ClusterIPNone
)

// leanService is the Service informer's transform. The watch selects
// headless Services only, so all a Service is needed for is that it exists:
// it becomes its key, namespace/name (a cache.ExplicitKey, which the
// informer's store keys by itself), and 10,000 of them cost little more than
// their names (BenchmarkServiceCache). Anything else (a tombstone, a key
// already) is returned unchanged. It is idempotent.
func leanService(obj any) (any, error) {
	if s, ok := obj.(*corev1.Service); ok {
		return cache.ExplicitKey(serviceKey{namespace: s.Namespace, name: s.Name}.String()), nil
	}
	return obj, nil
}

// serviceKeyOf returns the key of the Service obj, a lean one or one in a
// tombstone.
func serviceKeyOf(obj any) (serviceKey, bool) {
	if t, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
		obj = t.Obj
	}
	switch s := obj.(type) {
	case cache.ExplicitKey:
		ns, name, ok := strings.Cut(string(s), "/")
		return serviceKey{namespace: ns, name: name}, ok
	case *corev1.Service:
		return serviceKey{namespace: s.Namespace, name: s.Name}, true
	}
	return serviceKey{}, false
}

// headless reports whether the Service k is known, and so headless. Only
// called with ReadServices.
func (w *Watcher) headless(k serviceKey) bool {
	_, ok, err := w.services.GetIndexer().GetByKey(k.String())
	return err == nil && ok
}

// serviceHandler receives the Service informer's events: a Service that
// appears or goes changes whether its unlabelled slices are served.
type serviceHandler struct{ w *Watcher }

func (h serviceHandler) OnAdd(obj any, _ bool) {
	if k, ok := serviceKeyOf(obj); ok {
		h.w.markDirty(k, time.Time{}, false)
	}
}

// OnUpdate ignores updates: the watch selects headless Services, and one
// that stops being headless leaves the selection, a delete.
func (h serviceHandler) OnUpdate(_, _ any) {}

func (h serviceHandler) OnDelete(obj any) {
	if k, ok := serviceKeyOf(obj); ok {
		h.w.markDirty(k, time.Time{}, false)
		return
	}
	h.w.markAll()
}
