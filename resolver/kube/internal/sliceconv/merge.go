// Package sliceconv converts EndpointSlices into the resolver's services:
// the lean copy the informer keeps, and the merge of a service's slices.
// It imports no client-go, so its tests and fuzz targets link only the API
// types and the resolver.
package sliceconv

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/peerdns/peerdns/resolver"
)

// Service builds the resolver's view of service namespace/name from all its
// slices.
//
//   - FQDN slices are ignored.
//   - Ports belong to a slice, not to the service: the endpointslice
//     controller puts endpoints whose named targetPort resolves to different
//     numbers (a rollout that changes the container port, a pod without the
//     port) into different slices. So every endpoint carries the ports of
//     the slice that lists it, deduplicated by (name, protocol, port),
//     protocol in lower case (an absent protocol is TCP). Ports without a
//     number or outside 1–65535 are dropped. Service.Ports stays empty.
//   - Endpoints are deduplicated by (hostname, address) across slices, as the
//     EndpointSlice API asks of consumers: the controller may list an
//     endpoint in two slices while it moves it. A duplicate is ready when any
//     copy is ready (the copies differ only for the moment of the move), and
//     has the union of the copies' ports: each (port, endpoint) pair a slice
//     lists is published once. This is what a consumer that answers per
//     slice (CoreDNS) publishes, without its duplicates.
//   - Addresses of one hostname and one readiness are then grouped into one
//     Endpoint with the union of their ports, so a dual-stack pod (an IPv4
//     and an IPv6 slice) is one endpoint with both addresses. Addresses
//     without a hostname stay one endpoint each: the resolver names each by
//     its dashed form anyway.
//   - Unparseable addresses, and addresses with a zone, are dropped.
//
// The result is sorted (ports by name, protocol, number; endpoints by
// hostname, then readiness, then address) so equal inputs give equal outputs
// whatever the order of the slices. Endpoints with equal ports share one
// Ports array.
func Service(namespace, name string, objs []*discoveryv1.EndpointSlice) resolver.Service {
	svc := resolver.Service{Namespace: namespace, Name: name}

	type hostAddr struct {
		hostname string
		addr     netip.Addr
	}
	type state struct {
		ready bool
		ports []resolver.Port
	}
	seen := map[hostAddr]state{}
	for _, s := range objs {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		ports := slicePorts(s)
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			r := endpointReady(ep.Conditions)
			var hostname string
			if ep.Hostname != nil {
				hostname = *ep.Hostname
			}
			for _, a := range ep.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil || addr.Zone() != "" {
					continue // a zone ("fe80::1%eth0") means nothing off the node
				}
				ha := hostAddr{hostname, addr.Unmap()}
				st, ok := seen[ha]
				if !ok {
					seen[ha] = state{ready: r, ports: ports}
					continue
				}
				seen[ha] = state{ready: st.ready || r, ports: UnionPorts(st.ports, ports)}
			}
		}
	}

	type entry struct {
		hostAddr
		state
	}
	entries := make([]entry, 0, len(seen))
	for ha, st := range seen {
		entries = append(entries, entry{ha, st})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := strings.Compare(a.hostname, b.hostname); c != 0 {
			return c
		}
		if a.ready != b.ready {
			if a.ready {
				return -1
			}
			return 1
		}
		return a.addr.Compare(b.addr)
	})
	// Every endpoint's Addrs is a window on one array, in entries' order:
	// one allocation instead of one per endpoint.
	addrs := make([]netip.Addr, len(entries))
	svc.Endpoints = make([]resolver.Endpoint, 0, len(entries))
	for i, e := range entries {
		addrs[i] = e.addr
		if n := len(svc.Endpoints); n > 0 && e.hostname != "" {
			last := &svc.Endpoints[n-1]
			if last.Hostname == e.hostname && last.Ready == e.ready {
				start := i - len(last.Addrs)
				last.Addrs = addrs[start : i+1 : i+1]
				last.Ports = UnionPorts(last.Ports, e.ports)
				continue
			}
		}
		svc.Endpoints = append(svc.Endpoints, resolver.Endpoint{
			Hostname: e.hostname,
			Addrs:    addrs[i : i+1 : i+1],
			Ready:    e.ready,
			Ports:    e.ports,
		})
	}
	return svc
}

// slicePorts are the usable ports of slice s, deduplicated and sorted.
func slicePorts(s *discoveryv1.EndpointSlice) []resolver.Port {
	var ports []resolver.Port
	for _, p := range s.Ports {
		if port, ok := leanPort(p); ok && !slices.Contains(ports, port) {
			ports = append(ports, port)
		}
	}
	slices.SortFunc(ports, ComparePort)
	return ports
}

// UnionPorts returns the sorted union of the sorted sets a and b: a itself
// when b adds nothing, so endpoints of one slice keep sharing its array.
func UnionPorts(a, b []resolver.Port) []resolver.Port {
	if slices.Equal(a, b) {
		return a
	}
	u := slices.Concat(a, b)
	slices.SortFunc(u, ComparePort)
	u = slices.Compact(u)
	if slices.Equal(u, a) {
		return a
	}
	return u
}

// ComparePort orders ports by name, protocol and number.
func ComparePort(a, b resolver.Port) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// endpointReady says whether an endpoint may receive traffic. An explicit
// ready condition wins: the endpointslice controller sets ready=true for a
// terminating pod only when the service publishes not-ready addresses, and
// that choice is the service owner's. An absent ready condition means ready
// (the API asks consumers to read unknown as ready), unless the endpoint is
// terminating.
func endpointReady(c discoveryv1.EndpointConditions) bool {
	if c.Ready != nil {
		return *c.Ready
	}
	return c.Terminating == nil || !*c.Terminating
}

// leanPort converts a slice port. ok is false for a port without a usable
// number.
func leanPort(p discoveryv1.EndpointPort) (port resolver.Port, ok bool) {
	if p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
		return resolver.Port{}, false
	}
	proto := corev1.ProtocolTCP
	if p.Protocol != nil && *p.Protocol != "" {
		proto = *p.Protocol
	}
	port = resolver.Port{Protocol: strings.ToLower(string(proto)), Port: uint16(*p.Port)}
	if p.Name != nil {
		port.Name = *p.Name
	}
	return port, true
}
