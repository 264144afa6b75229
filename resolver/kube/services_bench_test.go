package kube

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkServiceCache measures what ReadServices adds to the heap for
// 10,000 headless Services: each decoded as the API server sends it (labels,
// an annotation, two ports, a selector, managed fields), made lean by the
// informer's transform and kept in an informer store. It reports the bytes
// retained per Service (heap after a GC, with the store, minus before).
func BenchmarkServiceCache(b *testing.B) {
	const n = 10_000
	var perService float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		store := cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc)
		for i := range n {
			lean, err := leanService(apiService(i))
			if err != nil {
				b.Fatal(err)
			}
			if err := store.Add(lean); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perService = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(store)
	}
	b.ReportMetric(perService, "bytes/service")
}

// apiService is a headless Service as a typical chart creates it.
func apiService(i int) *corev1.Service {
	name := fmt.Sprintf("db-%05d", i)
	labels := map[string]string{"app.kubernetes.io/name": "db", "app.kubernetes.io/instance": name, "helm.sh/chart": "db-1.2.3"}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: fmt.Sprintf("team-%03d", i%300), ResourceVersion: fmt.Sprint(100000 + i),
			UID: types.UID(fmt.Sprintf("3b6c1c1e-6a8e-4f7b-9c51-0d6f3a2b%04d", i%10000)), Labels: labels,
			Annotations: map[string]string{"meta.helm.sh/release-name": name},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsV1: metav1.NewFieldsV1(strings.Repeat("x", 600))}},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}, Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "client", Port: 5432, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP},
				{Name: "gossip", Port: 7946, TargetPort: intstr.FromString("gossip"), Protocol: corev1.ProtocolTCP},
			},
			PublishNotReadyAddresses: true,
		},
	}
}
