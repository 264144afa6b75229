package kube

import (
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/peerdns/peerdns/resolver"
	"github.com/peerdns/peerdns/resolver/kube/internal/sliceconv"
)

// mergeService builds the resolver's view of service k from all its slices
// (sliceconv.Service).
func mergeService(k serviceKey, objs []*discoveryv1.EndpointSlice) resolver.Service {
	return sliceconv.Service(k.namespace, k.name, objs)
}
