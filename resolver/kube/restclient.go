package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// ServiceClient lists and watches the Services of one namespace, or of all
// namespaces. client-go's typed core/v1 ServiceInterface (and its fake)
// implements it.
type ServiceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.ServiceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// restLister is the SliceClient or ServiceClient the Watcher builds from a
// rest.Config: the two requests client-go's generated client makes for List
// and Watch of one resource, on a REST client whose scheme holds only that
// resource's group version.
//
// Why not the generated clients: they register every built-in API group in
// client-go's shared scheme (k8s.io/client-go/kubernetes/scheme), so every
// type of every group is linked in, and a binary that also links
// text/template (kingpin's usage) keeps every exported method of each. That
// was about 11 MB of the 38.6 MB stripped peerdns binary.
type restLister[L runtime.Object] struct {
	client    *rest.RESTClient
	params    runtime.ParameterCodec
	namespace string
	resource  string
	newList   func() L
}

// restResource names what a restLister lists.
type restResource struct {
	gv       schema.GroupVersion
	apiPath  string // "/api" for the core group, else "/apis"
	resource string
	register func(*runtime.Scheme) error
}

var (
	sliceResource   = restResource{discoveryv1.SchemeGroupVersion, "/apis", "endpointslices", discoveryv1.AddToScheme}
	serviceResource = restResource{corev1.SchemeGroupVersion, "/api", "services", corev1.AddToScheme}
)

func newRESTSlices(cfg *rest.Config, namespace string) (*restLister[*discoveryv1.EndpointSliceList], error) {
	return newRESTLister(cfg, namespace, sliceResource, func() *discoveryv1.EndpointSliceList { return &discoveryv1.EndpointSliceList{} })
}

func newRESTServices(cfg *rest.Config, namespace string) (*restLister[*corev1.ServiceList], error) {
	return newRESTLister(cfg, namespace, serviceResource, func() *corev1.ServiceList { return &corev1.ServiceList{} })
}

// newRESTLister builds the client of r for namespace ("" for all) from cfg,
// which it does not modify.
func newRESTLister[L runtime.Object](cfg *rest.Config, namespace string, r restResource, newList func() L) (*restLister[L], error) {
	scheme := runtime.NewScheme()
	if err := r.register(scheme); err != nil {
		return nil, fmt.Errorf("register %s: %w", r.gv, err)
	}
	c := rest.CopyConfig(cfg)
	gv := r.gv
	c.GroupVersion = &gv
	c.APIPath = r.apiPath
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &restLister[L]{client: client, params: runtime.NewParameterCodec(scheme), namespace: namespace, resource: r.resource, newList: newList}, nil
}

func (l *restLister[L]) request(opts *metav1.ListOptions) *rest.Request {
	r := l.client.Get().Namespace(l.namespace).Resource(l.resource).VersionedParams(opts, l.params)
	if opts.TimeoutSeconds != nil {
		r = r.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	return r
}

// List is GET <apiPath>/<group version>[/namespaces/<ns>]/<resource>.
func (l *restLister[L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	list := l.newList()
	if err := l.request(&opts).Do(ctx).Into(list); err != nil {
		var none L
		return none, err
	}
	return list, nil
}

// Watch is the same GET with ?watch=true.
func (l *restLister[L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return l.request(&opts).Watch(ctx)
}
