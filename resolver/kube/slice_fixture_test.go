package kube

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sliceSpec describes an EndpointSlice for a test, by field name.
type sliceSpec struct {
	namespace, name string
	service         string // kubernetes.io/service-name; "" leaves the label out
	addressType     discoveryv1.AddressType
	ports           []discoveryv1.EndpointPort
	endpoints       []discoveryv1.Endpoint
	triggerTime     time.Time // zero: no annotation
	notHeadless     bool      // leave out service.kubernetes.io/headless
}

// build returns the slice, labelled as the endpointslice controller labels
// the slices of a headless service.
func (s sliceSpec) build() *discoveryv1.EndpointSlice {
	at := s.addressType
	if at == "" {
		at = discoveryv1.AddressTypeIPv4
	}
	// Not the endpointslice controller's name: a controller manager running
	// beside the tests must leave these slices alone.
	labels := map[string]string{discoveryv1.LabelManagedBy: "peerdns-tests"}
	if s.service != "" {
		labels[labelServiceName] = s.service
	}
	if !s.notHeadless {
		labels[labelHeadless] = ""
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.namespace,
			Name:      s.name,
			Labels:    labels,
		},
		AddressType: at,
		Ports:       s.ports,
		Endpoints:   s.endpoints,
	}
	if !s.triggerTime.IsZero() {
		es.Annotations = map[string]string{annotationTriggerTime: s.triggerTime.UTC().Format(time.RFC3339Nano)}
	}
	return es
}

// endpointSpec describes one endpoint; nil conditions are left out.
type endpointSpec struct {
	hostname    string
	addrs       []string
	ready       *bool
	terminating *bool
}

func (e endpointSpec) build() discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{
		Addresses:  e.addrs,
		Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.ready, Terminating: e.terminating},
	}
	if e.hostname != "" {
		ep.Hostname = &e.hostname
	}
	return ep
}

// readyEP is a ready endpoint as the controller writes it for a running pod.
func readyEP(hostname string, addrs ...string) discoveryv1.Endpoint {
	return endpointSpec{hostname: hostname, addrs: addrs, ready: ptr(true), terminating: ptr(false)}.build()
}

func endpoints(eps ...discoveryv1.Endpoint) []discoveryv1.Endpoint { return eps }

// namedPort is a port as the controller writes it.
func namedPort(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}

func ports(p ...discoveryv1.EndpointPort) []discoveryv1.EndpointPort { return p }

func ptr[T any](v T) *T { return &v }
