package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// ServiceClient lists and watches the Services of one namespace, or of all
// namespaces. client-go's typed core/v1 ServiceInterface (and its fake)
// implements it.
type ServiceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.ServiceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// restServices is the ServiceClient the Watcher builds from a rest.Config,
// on a REST client whose scheme holds only core/v1, for the reason
// restSlices gives.
type restServices struct {
	client    *rest.RESTClient
	params    runtime.ParameterCodec
	namespace string
}

func newRESTServices(cfg *rest.Config, namespace string) (*restServices, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register core/v1: %w", err)
	}
	c := rest.CopyConfig(cfg)
	gv := corev1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/api"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &restServices{client: client, params: runtime.NewParameterCodec(scheme), namespace: namespace}, nil
}

func (s *restServices) request(opts *metav1.ListOptions) *rest.Request {
	r := s.client.Get().Namespace(s.namespace).Resource("services").VersionedParams(opts, s.params)
	if opts.TimeoutSeconds != nil {
		r = r.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	return r
}

// List is GET /api/v1[/namespaces/<ns>]/services.
func (s *restServices) List(ctx context.Context, opts metav1.ListOptions) (*corev1.ServiceList, error) {
	list := &corev1.ServiceList{}
	if err := s.request(&opts).Do(ctx).Into(list); err != nil {
		return nil, err
	}
	return list, nil
}

// Watch is the same GET with ?watch=true.
func (s *restServices) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return s.request(&opts).Watch(ctx)
}
