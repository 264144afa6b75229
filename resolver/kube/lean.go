package kube

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/peerdns/peerdns/resolver/kube/internal/sliceconv"
)

// Well-known names this package relies on.
const (
	// labelServiceName names the service a slice belongs to.
	labelServiceName = discoveryv1.LabelServiceName
	// labelHeadless is set by the endpointslice controller on the slices of
	// headless services; the watch selects on its existence.
	labelHeadless = corev1.IsHeadlessService
	// annotationTriggerTime is the time of the pod or service change that
	// caused the slice's last update, in RFC 3339 with nanoseconds.
	annotationTriggerTime = corev1.EndpointsLastChangeTriggerTime
)

// leanSlice is the informer's transform: sliceconv.Lean for an
// EndpointSlice, anything else (such as a tombstone) unchanged. It is
// idempotent, as client-go requires.
func leanSlice(obj any) (any, error) {
	if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
		return sliceconv.Lean(s), nil
	}
	return obj, nil
}

// serviceKey identifies a service.
type serviceKey struct {
	namespace, name string
}

func (k serviceKey) String() string { return k.namespace + "/" + k.name }

// serviceIndex is the informer index of slices by service, with keys
// "<namespace>/<service-name label>".
const serviceIndex = "service"

// indexByService is the IndexFunc of serviceIndex. Slices without the
// service-name label are not indexed, and so never served.
func indexByService(obj any) ([]string, error) {
	k, ok := serviceOf(obj)
	if !ok {
		return nil, nil
	}
	return []string{k.String()}, nil
}

// serviceOf returns the service that the slice obj belongs to. obj may be a
// tombstone holding a slice. ok is false when obj is not a slice or has no
// service-name label.
func serviceOf(obj any) (k serviceKey, ok bool) {
	if t, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
		obj = t.Obj
	}
	s, isSlice := obj.(*discoveryv1.EndpointSlice)
	if !isSlice {
		return serviceKey{}, false
	}
	name := s.Labels[labelServiceName]
	if name == "" {
		return serviceKey{}, false
	}
	return serviceKey{namespace: s.Namespace, name: name}, true
}

// triggerTime returns the slice's last-change-trigger-time annotation, or
// false when it is absent or malformed.
func triggerTime(s *discoveryv1.EndpointSlice) (time.Time, bool) {
	v, ok := s.Annotations[annotationTriggerTime]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
