package sliceconv

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/peerdns/peerdns/resolver"
)

// TestHugeSliceRecords checks what FuzzSliceRecords checks (whose inputs
// rarely hold more than a few dozen endpoints) for slices of the largest size
// the endpointslice controller writes (1,000 endpoints,
// --max-endpoints-per-slice): a dual-stack service of 1,000 pods, 100 of
// which a third slice lists again with another number for the http port,
// stored after its IPv4 slice alone. Every name the service publishes is
// asked for every type, with every EDNS size; the SRV answer of the bare
// service name is over 64 KiB, so TCP answers are cut too.
func TestHugeSliceRecords(t *testing.T) {
	v4, v6, moved := newSlice(0, discoveryv1.AddressTypeIPv4), newSlice(1, discoveryv1.AddressTypeIPv6), newSlice(2, discoveryv1.AddressTypeIPv4)
	v4.Ports = []discoveryv1.EndpointPort{port("http", 8080), port("metrics", 9090)}
	v6.Ports = v4.Ports
	moved.Ports = []discoveryv1.EndpointPort{port("http", 8081), port("metrics", 9090)}
	for i := range 1000 {
		h := fmt.Sprintf("web-%d", i)
		v4.Endpoints = append(v4.Endpoints, readyEndpoint(h, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)))
		v6.Endpoints = append(v6.Endpoints, readyEndpoint(h, fmt.Sprintf("fd00::1:%x", i)))
		if i%10 == 0 {
			moved.Endpoints = append(moved.Endpoints, readyEndpoint(h, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)))
		}
	}
	objs := []*discoveryv1.EndpointSlice{Lean(v4), Lean(v6), Lean(moved)}
	checkSliceRecords(t, objs, objs[:1], func(svc resolver.Service) []fuzzQuestion {
		var qs []fuzzQuestion
		seen := map[string]bool{}
		for _, n := range fuzzNames(svc) {
			if seen[n.name] {
				continue
			}
			seen[n.name] = true
			for ti, typ := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY} {
				if n.reverse && ti < 3 {
					typ = dns.TypePTR
				}
				i := len(qs)
				name := n.name
				if i%3 == 0 {
					name = mixCase(name, byte(i))
				}
				qs = append(qs, fuzzQuestion{dns.Question{Name: name, Qtype: typ, Qclass: dns.ClassINET}, fuzzEDNS[i%len(fuzzEDNS)]})
			}
		}
		return qs
	})
}

func port(name string, n int32) discoveryv1.EndpointPort {
	tcp := corev1.ProtocolTCP
	return discoveryv1.EndpointPort{Name: &name, Protocol: &tcp, Port: &n}
}

func readyEndpoint(hostname, addr string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{addr},
		Hostname:   &hostname,
		Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Terminating: ptr(false)},
	}
}
