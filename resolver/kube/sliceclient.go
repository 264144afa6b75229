package kube

import (
	"context"
	"fmt"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// SliceClient lists and watches the EndpointSlices of one namespace, or of
// all namespaces. client-go's typed discovery/v1 EndpointSliceInterface (and
// its fake) implements it.
type SliceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*discoveryv1.EndpointSliceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// restSlices is the SliceClient the Watcher builds from a rest.Config: the
// two requests client-go's generated discovery/v1 client makes for List and
// Watch, on a REST client whose scheme holds only discovery.k8s.io/v1.
//
// Why not the generated client: it registers every built-in API group in
// client-go's shared scheme (k8s.io/client-go/kubernetes/scheme), so every
// type of every group is linked in, and a binary that also links
// text/template (kingpin's usage) keeps every exported method of each. That
// was about 11 MB of the 38.6 MB stripped peerdns binary.
type restSlices struct {
	client    *rest.RESTClient
	params    runtime.ParameterCodec
	namespace string
}

// newRESTSlices builds the client for namespace ("" for all) from cfg, which
// it does not modify.
func newRESTSlices(cfg *rest.Config, namespace string) (*restSlices, error) {
	scheme := runtime.NewScheme()
	if err := discoveryv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register discovery/v1: %w", err)
	}
	c := rest.CopyConfig(cfg)
	gv := discoveryv1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &restSlices{client: client, params: runtime.NewParameterCodec(scheme), namespace: namespace}, nil
}

func (s *restSlices) request(opts *metav1.ListOptions) *rest.Request {
	r := s.client.Get().Namespace(s.namespace).Resource("endpointslices").VersionedParams(opts, s.params)
	if opts.TimeoutSeconds != nil {
		r = r.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	return r
}

// List is GET /apis/discovery.k8s.io/v1[/namespaces/<ns>]/endpointslices.
func (s *restSlices) List(ctx context.Context, opts metav1.ListOptions) (*discoveryv1.EndpointSliceList, error) {
	list := &discoveryv1.EndpointSliceList{}
	if err := s.request(&opts).Do(ctx).Into(list); err != nil {
		return nil, err
	}
	return list, nil
}

// Watch is the same GET with ?watch=true.
func (s *restSlices) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return s.request(&opts).Watch(ctx)
}
