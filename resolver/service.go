package resolver

import "net/netip"

// Service is what the resolver knows of one headless service: the merged,
// deduplicated view of all its EndpointSlices. It is a plain value; the
// resolver never sees Kubernetes objects.
type Service struct {
	// Namespace and Name identify the service, in lower case as Kubernetes
	// stores them.
	Namespace string
	Name      string
	// Ports are ports every endpoint has, besides its own Endpoint.Ports.
	// Only named ports get SRV records. A source whose ports differ between
	// endpoints (EndpointSlices: ports belong to a slice) leaves it empty
	// and sets Endpoint.Ports.
	Ports []Port
	// Endpoints are the endpoints that have at least one address, ready or
	// not. Ready ones are served under the service's names in the svc tree;
	// all of them are served under the peer view, the peers tree.
	Endpoints []Endpoint
}

// Port is one port of a service.
type Port struct {
	// Name is the port's name ("http"); empty for an unnamed port.
	Name string
	// Protocol is "tcp", "udp" or "sctp", in lower case.
	Protocol string
	// Port is the port number.
	Port uint16
}

// Endpoint is one endpoint of a service.
type Endpoint struct {
	// Hostname is the endpoint's hostname field (a StatefulSet pod's name,
	// "web-0"). Empty when the endpoint has none: each of its addresses is
	// then named by its dashed form ("10-1-0-5").
	Hostname string
	// Addrs are the endpoint's addresses, IPv4 and IPv6 merged.
	Addrs []netip.Addr
	// Ready is true when the endpoint may receive traffic. From
	// EndpointSlices (resolver/kube): its ready condition when it has one,
	// true even for a terminating endpoint (the endpointslice controller
	// sets that only for a Service that publishes not-ready addresses);
	// without one, true unless the endpoint is terminating.
	Ready bool
	// Ports are the endpoint's own ports (with Service.Ports): an SRV
	// record pairs a port only with the endpoints that have it. Endpoints
	// may share one array; the resolver never writes to it.
	Ports []Port
}
