package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The objects every server is measured on, in namespace benchNamespace.
const (
	benchNamespace = "bench"
	scaleNamespace = "scale"
	zone           = "cluster.local."
	portName       = "web"
	portNumber     = 80

	svcSmall  = "s3"    // 3 endpoints
	svcMedium = "s100"  // 100 endpoints
	svcLarge  = "s1000" // 1,000 endpoints in slices of sliceMax
	svcProg   = "prog"  // 3 endpoints, rewritten by the programming measurement

	sliceMax = 100 // endpoints per slice, as the endpointslice controller writes them
)

// benchService is one headless service of the fixed set.
type benchService struct {
	name      string
	endpoints int
	// net is the /16 its endpoint addresses come from: 10.<net>.0.0.
	net byte
}

var benchServices = []benchService{
	{name: svcSmall, endpoints: 3, net: 1},
	{name: svcMedium, endpoints: 100, net: 2},
	{name: svcLarge, endpoints: 1000, net: 3},
	{name: svcProg, endpoints: 3, net: 4},
}

// fqdn is the service's name under the zone; host, when set, is an
// endpoint's hostname.
func fqdn(namespace, service, host string) string {
	name := service + "." + namespace + ".svc." + zone
	if host != "" {
		name = host + "." + name
	}
	return name
}

func srvName(namespace, service string) string {
	return "_" + portName + "._tcp." + fqdn(namespace, service, "")
}

func hostname(i int) string { return fmt.Sprintf("web-%d", i) }

// endpointAddr is the address of endpoint i of a service in 10.<net>/16.
// The API server rejects loopback addresses in EndpointSlices; these are
// never contacted.
func endpointAddr(net byte, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, net, byte(i / 250), byte(i%250 + 1)})
}

func headlessService(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Ports:     []corev1.ServicePort{{Name: portName, Port: portNumber, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// endpointSlices returns the slices of a service with n endpoints, at most
// sliceMax per slice, labelled as the endpointslice controller labels the
// slices of a headless service (peerdns watches only those).
func endpointSlices(namespace, service string, n int, addr func(i int) netip.Addr) []*discoveryv1.EndpointSlice {
	var slices []*discoveryv1.EndpointSlice
	for first := 0; first < n; first += sliceMax {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: namespace,
				Name:      fmt.Sprintf("%s-%d", service, first/sliceMax),
				Labels: map[string]string{
					discoveryv1.LabelServiceName: service,
					discoveryv1.LabelManagedBy:   "peerdns-bench",
					corev1.IsHeadlessService:     "",
				},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{
				Name:     ptr.To(portName),
				Port:     ptr.To[int32](portNumber),
				Protocol: ptr.To(corev1.ProtocolTCP),
			}},
		}
		for i := first; i < min(n, first+sliceMax); i++ {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{addr(i).String()},
				Hostname:   ptr.To(hostname(i)),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		slices = append(slices, s)
	}
	return slices
}

func createNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// createService creates a headless service and its slices.
func createService(ctx context.Context, client kubernetes.Interface, svc *corev1.Service, slices []*discoveryv1.EndpointSlice) error {
	if _, err := client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	for _, s := range slices {
		if _, err := client.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}

// loadBenchServices creates the fixed set of services.
func loadBenchServices(ctx context.Context, client kubernetes.Interface) error {
	if err := createNamespace(ctx, client, benchNamespace); err != nil {
		return err
	}
	for _, bs := range benchServices {
		slices := endpointSlices(benchNamespace, bs.name, bs.endpoints, func(i int) netip.Addr { return endpointAddr(bs.net, i) })
		if err := createService(ctx, client, headlessService(benchNamespace, bs.name), slices); err != nil {
			return err
		}
	}
	return nil
}

// scaleLoad is what loadScale created.
type scaleLoad struct {
	services  int // services created with all their endpoints
	took      time.Duration
	budgetHit bool
}

// scaleAddr is endpoint j of scale service i: 10.100.0.0 onwards, 16
// addresses per service.
func scaleAddr(i, j int) netip.Addr {
	n := 100<<16 + i*16 + j + 1
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

func scaleServiceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// loadScale creates n headless services with endpoints each in namespace
// scaleNamespace, with workers creates in flight, until done or budget
// has passed. progress is called now and then with the count so far.
func loadScale(ctx context.Context, client kubernetes.Interface, n, endpoints, workers int, budget time.Duration, progress func(done int)) (scaleLoad, error) {
	if err := createNamespace(ctx, client, scaleNamespace); err != nil {
		return scaleLoad{}, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				name := scaleServiceName(i)
				slices := endpointSlices(scaleNamespace, name, endpoints, func(j int) netip.Addr { return scaleAddr(i, j) })
				if err := createService(ctx, client, headlessService(scaleNamespace, name), slices); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				if d := done.Add(1); d%1000 == 0 && progress != nil {
					progress(int(d))
				}
			}
		})
	}
	wg.Wait()
	load := scaleLoad{services: int(done.Load()), took: time.Since(start)}
	if firstErr != nil {
		return load, firstErr
	}
	if load.services < n {
		if err := context.Cause(ctx); err != nil && ctx.Err() == context.DeadlineExceeded {
			load.budgetHit = true
		} else if err != nil {
			return load, err
		}
	}
	return load, nil
}
