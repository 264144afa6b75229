package kube

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
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

// Shared condition values, so lean slices do not allocate one bool per
// endpoint. They are never written through.
var (
	condTrue  = func() *bool { b := true; return &b }()
	condFalse = func() *bool { b := false; return &b }()
)

// leanSlice is the informer's transform. It replaces an EndpointSlice with a
// copy that holds only what DNS needs: name, namespace, resourceVersion, the
// service-name label, the trigger-time annotation, the address type, the
// ports and, per endpoint, the addresses, hostname and the ready and
// terminating conditions. Everything else (managedFields, other labels and
// annotations, targetRef, nodeName, zone, hints, serving, appProtocol) is
// dropped, so the cache of 100k endpoints costs little more than their
// addresses. FQDN slices keep no endpoints: DNS ignores them. Endpoints
// without an address are dropped.
//
// The copy shares no memory with the decoded object except strings, so the
// rest of the decoded object is garbage at once. leanSlice is idempotent, as
// client-go requires, and returns anything that is not an EndpointSlice
// (such as a tombstone) unchanged.
func leanSlice(obj any) (any, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj, nil
	}
	lean := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:            s.Name,
			Namespace:       s.Namespace,
			ResourceVersion: s.ResourceVersion,
		},
		AddressType: s.AddressType,
	}
	if v, ok := s.Labels[labelServiceName]; ok {
		lean.Labels = map[string]string{labelServiceName: v}
	}
	if v, ok := s.Annotations[annotationTriggerTime]; ok {
		lean.Annotations = map[string]string{annotationTriggerTime: v}
	}
	if len(s.Ports) > 0 {
		lean.Ports = make([]discoveryv1.EndpointPort, len(s.Ports))
		for i, p := range s.Ports {
			lean.Ports[i] = discoveryv1.EndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		}
	}
	if s.AddressType == discoveryv1.AddressTypeFQDN {
		return lean, nil
	}
	n := 0
	for i := range s.Endpoints {
		if len(s.Endpoints[i].Addresses) > 0 {
			n++
		}
	}
	if n > 0 {
		lean.Endpoints = make([]discoveryv1.Endpoint, 0, n)
	}
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		if len(ep.Addresses) == 0 {
			continue
		}
		lean.Endpoints = append(lean.Endpoints, discoveryv1.Endpoint{
			Addresses: ep.Addresses,
			Hostname:  ep.Hostname,
			Conditions: discoveryv1.EndpointConditions{
				Ready:       shareCond(ep.Conditions.Ready),
				Terminating: shareCond(ep.Conditions.Terminating),
			},
		})
	}
	return lean, nil
}

func shareCond(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return condTrue
	default:
		return condFalse
	}
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
