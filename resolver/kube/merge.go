package kube

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/peerdns/peerdns/resolver"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// mergeService builds the resolver's view of service k from all its slices.
//
//   - FQDN slices are ignored.
//   - Ports are the union over the slices, deduplicated by (name, protocol,
//     port), protocol in lower case (an absent protocol is TCP). Ports
//     without a number or outside 1–65535 are dropped.
//   - Endpoints are deduplicated by (hostname, address) across slices, as the
//     EndpointSlice API asks of consumers: the controller may list an
//     endpoint in two slices while it moves it. A duplicate is ready when any
//     copy is ready (the copies differ only for the moment of the move).
//   - Addresses of one hostname and one readiness are then grouped into one
//     Endpoint, so a dual-stack pod (an IPv4 and an IPv6 slice) is one
//     endpoint with both addresses. Addresses without a hostname stay one
//     endpoint each: the resolver names each by its dashed form anyway.
//   - Unparseable addresses are dropped.
//
// The result is sorted (ports by name, protocol, number; endpoints by
// hostname, then readiness, then address) so equal inputs give equal outputs
// whatever the order of the slices.
func mergeService(k serviceKey, objs []*discoveryv1.EndpointSlice) resolver.Service {
	svc := resolver.Service{Namespace: k.namespace, Name: k.name}

	type hostAddr struct {
		hostname string
		addr     netip.Addr
	}
	ready := map[hostAddr]bool{}
	for _, s := range objs {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, p := range s.Ports {
			if port, ok := leanPort(p); ok && !slices.Contains(svc.Ports, port) {
				svc.Ports = append(svc.Ports, port)
			}
		}
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			r := endpointReady(ep.Conditions)
			var hostname string
			if ep.Hostname != nil {
				hostname = *ep.Hostname
			}
			for _, a := range ep.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ha := hostAddr{hostname, addr.Unmap()}
				ready[ha] = ready[ha] || r
			}
		}
	}
	slices.SortFunc(svc.Ports, func(a, b resolver.Port) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
	})

	type entry struct {
		hostAddr
		ready bool
	}
	entries := make([]entry, 0, len(ready))
	for ha, r := range ready {
		entries = append(entries, entry{ha, r})
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
				continue
			}
		}
		svc.Endpoints = append(svc.Endpoints, resolver.Endpoint{
			Hostname: e.hostname,
			Addrs:    addrs[i : i+1 : i+1],
			Ready:    e.ready,
		})
	}
	return svc
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
