package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The seed is the project's example workload: the headless Service "nginx"
// (port 80, named "web") in front of the StatefulSet "web" with two
// replicas, so its pods are web-0.nginx and web-1.nginx.
const (
	SeedService     = "nginx"
	SeedStatefulSet = "web"
	SeedReplicas    = 2
)

// SeedObjects returns the seed's Service and StatefulSet in namespace. The
// pods select the fake node (Options.Controllers), where kwok runs them.
func SeedObjects(namespace string) (*corev1.Service, *appsv1.StatefulSet) {
	labels := map[string]string{"app": "nginx"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SeedService, Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  labels,
			Ports:     []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("web")}},
		},
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SeedStatefulSet},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: SeedService,
			Replicas:    ptr.To[int32](SeedReplicas),
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/hostname": FakeNodeName},
					Containers: []corev1.Container{{
						Name:  "nginx",
						Image: "nginx",
						Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 80}},
					}},
				},
			},
		},
	}
	return svc, sts
}

// LoadSeed creates the seed in namespace (which must exist) and waits until
// the endpointslice controller has published both pods, ready, with their
// hostnames. It needs a control plane started with Controllers.
func LoadSeed(ctx context.Context, client kubernetes.Interface, namespace string) error {
	svc, sts := SeedObjects(namespace)
	if _, err := client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("load seed: %w", err)
	}
	if _, err := client.AppsV1().StatefulSets(namespace).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("load seed: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		hosts, err := readyHostnames(ctx, client, namespace, SeedService)
		if err == nil && slices.Equal(hosts, []string{"web-0", "web-1"}) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load seed: endpoints of %s/%s: have ready %v: %w", namespace, SeedService, hosts, errors.Join(err, ctx.Err()))
		case <-tick.C:
		}
	}
}

// readyHostnames returns the sorted hostnames of the ready endpoints in the
// EndpointSlices of service.
func readyHostnames(ctx context.Context, client kubernetes.Interface, namespace, service string) ([]string, error) {
	list, err := client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.Hostname != nil && ptr.Deref(ep.Conditions.Ready, false) {
				hosts = append(hosts, *ep.Hostname)
			}
		}
	}
	slices.Sort(hosts)
	return hosts, nil
}
