package kube

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/peerdns/peerdns/resolver"
)

func TestMergeService(t *testing.T) {
	http := namedPort("http", corev1.ProtocolTCP, 80)
	tests := []struct {
		name   string
		slices []sliceSpec
		want   string // formatService
	}{
		{
			name: "several slices of one service merge",
			slices: []sliceSpec{
				{name: "web-a", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.0.0.1"), readyEP("web-1", "10.0.0.2"))},
				{name: "web-b", ports: ports(http), endpoints: endpoints(readyEP("web-2", "10.0.0.3"))},
			},
			want: "ports=http/tcp/80 eps=web-0[10.0.0.1],web-1[10.0.0.2],web-2[10.0.0.3]",
		},
		{
			name: "dual stack slices merge into one endpoint per hostname",
			slices: []sliceSpec{
				{name: "web-v4", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.0.0.1"), readyEP("web-1", "10.0.0.2"))},
				{name: "web-v6", addressType: discoveryv1.AddressTypeIPv6, ports: ports(http), endpoints: endpoints(readyEP("web-0", "fd00::1"), readyEP("web-1", "fd00::2"))},
			},
			want: "ports=http/tcp/80 eps=web-0[10.0.0.1,fd00::1],web-1[10.0.0.2,fd00::2]",
		},
		{
			name: "dual stack without hostname keeps one endpoint per address",
			slices: []sliceSpec{
				{name: "web-v4", endpoints: endpoints(readyEP("", "10.0.0.1"))},
				{name: "web-v6", addressType: discoveryv1.AddressTypeIPv6, endpoints: endpoints(readyEP("", "fd00::1"))},
			},
			want: "ports= eps=-[10.0.0.1],-[fd00::1]",
		},
		{
			name: "an endpoint listed in two slices is one endpoint, ready if any copy is",
			slices: []sliceSpec{
				{name: "web-a", endpoints: endpoints(readyEP("web-0", "10.0.0.1"), endpointSpec{hostname: "web-1", addrs: []string{"10.0.0.2"}, ready: ptr(false)}.build())},
				{name: "web-b", endpoints: endpoints(readyEP("web-0", "10.0.0.1"), readyEP("web-1", "10.0.0.2"), readyEP("", "10.0.0.9"))},
				{name: "web-c", endpoints: endpoints(readyEP("", "10.0.0.9"))},
			},
			want: "ports= eps=-[10.0.0.9],web-0[10.0.0.1],web-1[10.0.0.2]",
		},
		{
			name: "terminating endpoints are not ready unless ready is explicitly true",
			slices: []sliceSpec{{name: "web-a", endpoints: endpoints(
				endpointSpec{hostname: "web-0", addrs: []string{"10.0.0.1"}, ready: ptr(false), terminating: ptr(true)}.build(),
				endpointSpec{hostname: "web-1", addrs: []string{"10.0.0.2"}, terminating: ptr(true)}.build(),
				// publishNotReadyAddresses: the controller keeps ready=true.
				endpointSpec{hostname: "web-2", addrs: []string{"10.0.0.3"}, ready: ptr(true), terminating: ptr(true)}.build(),
			)}},
			want: "ports= eps=web-0[10.0.0.1]!,web-1[10.0.0.2]!,web-2[10.0.0.3]",
		},
		{
			name: "absent conditions mean ready",
			slices: []sliceSpec{{name: "web-a", endpoints: endpoints(
				endpointSpec{hostname: "web-0", addrs: []string{"10.0.0.1"}}.build(),
				endpointSpec{hostname: "web-1", addrs: []string{"10.0.0.2"}, terminating: ptr(false)}.build(),
				endpointSpec{hostname: "web-2", addrs: []string{"10.0.0.3"}, ready: ptr(false)}.build(),
			)}},
			want: "ports= eps=web-0[10.0.0.1],web-1[10.0.0.2],web-2[10.0.0.3]!",
		},
		{
			name: "a hostname with a ready and a not-ready address keeps them apart",
			slices: []sliceSpec{{name: "web-a", endpoints: endpoints(
				endpointSpec{hostname: "web-0", addrs: []string{"10.0.0.1"}, ready: ptr(false), terminating: ptr(true)}.build(),
				readyEP("web-0", "10.0.0.7"),
			)}},
			want: "ports= eps=web-0[10.0.0.7],web-0[10.0.0.1]!",
		},
		{
			name: "FQDN slices are ignored",
			slices: []sliceSpec{
				{name: "web-a", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.0.0.1"))},
				{name: "web-fqdn", addressType: discoveryv1.AddressTypeFQDN, ports: ports(namedPort("other", corev1.ProtocolTCP, 81)), endpoints: endpoints(readyEP("ext", "example.com"))},
			},
			want: "ports=http/tcp/80 eps=web-0[10.0.0.1]",
		},
		{
			name: "ports are the union, named and unnamed, protocol in lower case",
			slices: []sliceSpec{
				{name: "web-a", ports: ports(http, namedPort("dns", corev1.ProtocolUDP, 53), namedPort("", corev1.ProtocolSCTP, 9000)), endpoints: endpoints(readyEP("web-0", "10.0.0.1"))},
				{name: "web-b", ports: ports(http, namedPort("dns", corev1.ProtocolTCP, 53),
					discoveryv1.EndpointPort{Name: ptr("noproto"), Port: ptr[int32](8080)}, // protocol defaults to TCP
					discoveryv1.EndpointPort{Name: ptr("all")},                             // no number: unusable
					discoveryv1.EndpointPort{Name: ptr("big"), Port: ptr[int32](70000)},
				), endpoints: endpoints(readyEP("web-1", "10.0.0.2"))},
			},
			want: "ports=:sctp/9000,dns/tcp/53,dns/udp/53,http/tcp/80,noproto/tcp/8080 eps=web-0[10.0.0.1]{:sctp/9000,dns/udp/53,http/tcp/80},web-1[10.0.0.2]{dns/tcp/53,http/tcp/80,noproto/tcp/8080}",
		},
		{
			// A rollout that changed the container port of a named
			// targetPort: the controller keeps the two numbers in two slices.
			name: "ports belong to the slice that lists the endpoint",
			slices: []sliceSpec{
				{name: "web-a", ports: ports(namedPort("http", corev1.ProtocolTCP, 8080)), endpoints: endpoints(readyEP("rp-0", "10.0.0.1"))},
				{name: "web-b", ports: ports(namedPort("http", corev1.ProtocolTCP, 9090)), endpoints: endpoints(readyEP("rp-1", "10.0.0.2"))},
			},
			want: "ports=http/tcp/8080,http/tcp/9090 eps=rp-0[10.0.0.1]{http/tcp/8080},rp-1[10.0.0.2]{http/tcp/9090}",
		},
		{
			name: "an endpoint in two slices with different ports has both",
			slices: []sliceSpec{
				{name: "web-a", ports: ports(namedPort("http", corev1.ProtocolTCP, 8080)), endpoints: endpoints(readyEP("rp-0", "10.0.0.1"), readyEP("rp-1", "10.0.0.2"))},
				{name: "web-b", ports: ports(namedPort("http", corev1.ProtocolTCP, 9090)), endpoints: endpoints(readyEP("rp-1", "10.0.0.2"))},
			},
			want: "ports=http/tcp/8080,http/tcp/9090 eps=rp-0[10.0.0.1]{http/tcp/8080},rp-1[10.0.0.2]",
		},
		{
			name: "endpoints without a usable address are dropped",
			slices: []sliceSpec{{name: "web-a", endpoints: endpoints(
				endpointSpec{hostname: "web-0"}.build(),
				endpointSpec{hostname: "web-1", addrs: []string{"not-an-ip"}}.build(),
				readyEP("web-2", "10.0.0.3"),
			)}},
			want: "ports= eps=web-2[10.0.0.3]",
		},
		{
			name:   "a slice with no endpoints gives a service with none",
			slices: []sliceSpec{{name: "web-a", ports: ports(http)}},
			want:   "ports= eps=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []*discoveryv1.EndpointSlice
			for _, s := range tt.slices {
				s.namespace, s.service = "ns", "web"
				objs = append(objs, s.build())
			}
			svc := mergeService(serviceKey{"ns", "web"}, objs)
			if svc.Namespace != "ns" || svc.Name != "web" {
				t.Errorf("service = %s/%s, want ns/web", svc.Namespace, svc.Name)
			}
			if got := formatService(svc); got != tt.want {
				t.Errorf("merged:\n got %s\nwant %s", got, tt.want)
			}
			// The order of the slices in the cache must not matter.
			for i, j := 0, len(objs)-1; i < j; i, j = i+1, j-1 {
				objs[i], objs[j] = objs[j], objs[i]
			}
			if diff := cmp.Diff(svc, mergeService(serviceKey{"ns", "web"}, objs), addrComparer); diff != "" {
				t.Errorf("merge depends on slice order (-forward +reversed):\n%s", diff)
			}
		})
	}
}

func TestMergeServiceShape(t *testing.T) {
	objs := []*discoveryv1.EndpointSlice{
		sliceSpec{namespace: "ns", name: "a", service: "web", ports: ports(namedPort("http", corev1.ProtocolTCP, 80)), endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}.build(),
		sliceSpec{namespace: "ns", name: "b", service: "web", addressType: discoveryv1.AddressTypeIPv6, ports: ports(namedPort("http", corev1.ProtocolTCP, 80)), endpoints: endpoints(readyEP("web-0", "fd00::1"))}.build(),
	}
	want := resolver.Service{
		Namespace: "ns",
		Name:      "web",
		Endpoints: []resolver.Endpoint{{Hostname: "web-0", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}, Ready: true, Ports: []resolver.Port{{Name: "http", Protocol: "tcp", Port: 80}}}},
	}
	if diff := cmp.Diff(want, mergeService(serviceKey{"ns", "web"}, objs), addrComparer); diff != "" {
		t.Errorf("mergeService (-want +got):\n%s", diff)
	}
}

// BenchmarkMergeService merges a 1,000-endpoint dual-stack service kept in
// 20 slices, what every change to one of its slices costs.
func BenchmarkMergeService(b *testing.B) {
	var objs []*discoveryv1.EndpointSlice
	for i := range 10 {
		var v4, v6 []discoveryv1.Endpoint
		for j := range 100 {
			n := i*100 + j
			host := fmt.Sprintf("web-%d", n)
			v4 = append(v4, readyEP(host, fmt.Sprintf("10.0.%d.%d", n/250, n%250+1)))
			v6 = append(v6, readyEP(host, fmt.Sprintf("fd00::%x", n+1)))
		}
		p := ports(namedPort("http", corev1.ProtocolTCP, 80))
		objs = append(objs,
			sliceSpec{namespace: "ns", name: fmt.Sprintf("web-v4-%d", i), service: "web", ports: p, endpoints: v4}.build(),
			sliceSpec{namespace: "ns", name: fmt.Sprintf("web-v6-%d", i), service: "web", addressType: discoveryv1.AddressTypeIPv6, ports: p, endpoints: v6}.build(),
		)
	}
	b.ReportAllocs()
	for b.Loop() {
		mergeService(serviceKey{"ns", "web"}, objs)
	}
}
