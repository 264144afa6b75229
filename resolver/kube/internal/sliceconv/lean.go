package sliceconv

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Shared condition values, so lean slices do not allocate one bool per
// endpoint. They are never written through.
var (
	condTrue  = func() *bool { b := true; return &b }()
	condFalse = func() *bool { b := false; return &b }()
)

// Lean is the informer's transform of an EndpointSlice: a copy that holds
// only what DNS needs: name, namespace, resourceVersion, the service-name
// label, the trigger-time annotation, the address type, the ports and, per
// endpoint, the addresses, hostname and the ready and terminating
// conditions. Everything else (managedFields, other labels and
// annotations, targetRef, nodeName, zone, hints, serving, appProtocol) is
// dropped, so the cache of 100k endpoints costs little more than their
// addresses. FQDN slices keep no endpoints: DNS ignores them. Endpoints
// without an address are dropped.
//
// The copy shares with the decoded object only what it keeps: strings, each
// endpoint's Addresses slice and Hostname pointer, and each port's Name,
// Protocol and Port pointers. The rest (ObjectMeta, the Endpoints array,
// conditions, targetRefs, managedFields) is garbage at once; conditions
// point to shared constants. Lean is idempotent.
func Lean(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	lean := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:            s.Name,
			Namespace:       s.Namespace,
			ResourceVersion: s.ResourceVersion,
		},
		AddressType: s.AddressType,
	}
	if v, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
		lean.Labels = map[string]string{discoveryv1.LabelServiceName: v}
	}
	if v, ok := s.Annotations[corev1.EndpointsLastChangeTriggerTime]; ok {
		lean.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: v}
	}
	if len(s.Ports) > 0 {
		lean.Ports = make([]discoveryv1.EndpointPort, len(s.Ports))
		for i, p := range s.Ports {
			lean.Ports[i] = discoveryv1.EndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		}
	}
	if s.AddressType == discoveryv1.AddressTypeFQDN {
		return lean
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
	return lean
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
