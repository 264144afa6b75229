// Package kubeclient lists and watches one kind of Kubernetes object with a
// REST client whose scheme holds only that kind's group version, for both
// binaries: peerdns's EndpointSlices and Services, peeragent's StatefulSet.
package kubeclient

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Lister makes the two requests client-go's generated client makes for List
// and Watch of one resource, on a REST client whose scheme holds only that
// resource's group version. It implements the List and Watch half of a
// generated typed client (EndpointSliceInterface, ServiceInterface,
// StatefulSetInterface…), which is what an informer's ListWatch needs.
//
// Why not the generated clients: they register every built-in API group in
// client-go's shared scheme (k8s.io/client-go/kubernetes/scheme), so every
// type of every group is linked in, and a binary that also links
// text/template (kingpin's usage) keeps every exported method of each. That
// was about 11 MB of the 38.6 MB stripped peerdns binary.
type Lister[L runtime.Object] struct {
	client    *rest.RESTClient
	params    runtime.ParameterCodec
	namespace string
	resource  string
	newList   func() L
}

// Resource names what a Lister lists.
type Resource struct {
	GroupVersion schema.GroupVersion
	APIPath      string // "/api" for the core group, else "/apis"
	Name         string // the resource's plural, as in the URL: "endpointslices"
	AddToScheme  func(*runtime.Scheme) error
}

// New builds the Lister of r for namespace ("" for all) from cfg, which it
// does not modify; newList returns an empty list object of r's kind.
func New[L runtime.Object](cfg *rest.Config, namespace string, r Resource, newList func() L) (*Lister[L], error) {
	scheme := runtime.NewScheme()
	if err := r.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register %s: %w", r.GroupVersion, err)
	}
	c := rest.CopyConfig(cfg)
	gv := r.GroupVersion
	c.GroupVersion = &gv
	c.APIPath = r.APIPath
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &Lister[L]{client: client, params: runtime.NewParameterCodec(scheme), namespace: namespace, resource: r.Name, newList: newList}, nil
}

func (l *Lister[L]) request(opts *metav1.ListOptions) *rest.Request {
	r := l.client.Get().Namespace(l.namespace).Resource(l.resource).VersionedParams(opts, l.params)
	if opts.TimeoutSeconds != nil {
		r = r.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	return r
}

// List is GET <apiPath>/<group version>[/namespaces/<ns>]/<resource>.
func (l *Lister[L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	list := l.newList()
	if err := l.request(&opts).Do(ctx).Into(list); err != nil {
		var none L
		return none, err
	}
	return list, nil
}

// Watch is the same GET with ?watch=true.
func (l *Lister[L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return l.request(&opts).Watch(ctx)
}
