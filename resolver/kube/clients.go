package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/peerdns/peerdns/internal/kubeclient"
)

// SliceClient lists and watches the EndpointSlices of one namespace, or of
// all namespaces. client-go's typed discovery/v1 EndpointSliceInterface (and
// its fake) implements it.
type SliceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*discoveryv1.EndpointSliceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// ServiceClient lists and watches the Services of one namespace, or of all
// namespaces. client-go's typed core/v1 ServiceInterface (and its fake)
// implements it.
type ServiceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.ServiceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// newRESTSlices and newRESTServices are the clients the Watcher builds
// from a rest.Config (see kubeclient.Lister for why not the generated ones).
func newRESTSlices(cfg *rest.Config, namespace string) (SliceClient, error) {
	return kubeclient.New(cfg, namespace,
		kubeclient.Resource{GroupVersion: discoveryv1.SchemeGroupVersion, APIPath: "/apis", Name: "endpointslices", AddToScheme: discoveryv1.AddToScheme},
		func() *discoveryv1.EndpointSliceList { return &discoveryv1.EndpointSliceList{} })
}

func newRESTServices(cfg *rest.Config, namespace string) (ServiceClient, error) {
	return kubeclient.New(cfg, namespace,
		kubeclient.Resource{GroupVersion: corev1.SchemeGroupVersion, APIPath: "/api", Name: "services", AddToScheme: corev1.AddToScheme},
		func() *corev1.ServiceList { return &corev1.ServiceList{} })
}
