package charts_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/controlplane"
)

// TestChartsApplyToAPIServer sends what the charts render to a real
// kube-apiserver as a server-side dry-run apply with strict field
// validation. The API server validates what typed decoding cannot: native
// sidecar rules (probes are allowed on an init container only with
// restartPolicy Always), selectors against labels, port names, RBAC
// references.
func TestChartsApplyToAPIServer(t *testing.T) {
	helmBinary(t) // skip before starting a control plane when helm is missing
	cp := controlplane.StartT(t, controlplane.Options{})
	cfg := cp.AdminConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Dry runs need the namespaces to exist.
	for _, ns := range []string{releaseNamespace, "db"} {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// apply sends every rendered object and returns the errors by kind.
	apply := func(t *testing.T, r *rendered) map[string]error {
		t.Helper()
		errs := map[string]error{}
		for _, doc := range r.docs {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
				t.Fatal(err)
			}
			gvk := obj.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatalf("%s: %v", gvk, err)
			}
			var res dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
			if mapping.Scope.Name() == "namespace" {
				ns := obj.GetNamespace()
				if ns == "" {
					ns = releaseNamespace
				}
				res = dyn.Resource(mapping.Resource).Namespace(ns)
			}
			body, err := json.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			force := true
			_, err = res.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
				FieldManager:    "charts-test",
				Force:           &force,
				DryRun:          []string{metav1.DryRunAll},
				FieldValidation: metav1.FieldValidationStrict,
			})
			if err != nil {
				errs[gvk.Kind+" "+obj.GetName()] = err
			}
		}
		return errs
	}

	tests := []struct {
		name, chart, values string
	}{
		// The ServiceMonitor set is left out: it needs the
		// prometheus-operator's CRDs.
		{"peerdns defaults", peerdnsChart, peerdnsValueSets["defaults"]},
		{"peerdns one namespace", peerdnsChart, peerdnsValueSets["one namespace"]},
		{"peerdns hard anti-affinity", peerdnsChart, peerdnsValueSets["hard anti-affinity, three replicas, minAvailable"]},
		{"peerdns several zones and a pinned IP", peerdnsChart, peerdnsValueSets["several zones and a pinned IP"]},
		{"peeragent example", peeragentChart, peeragentValueSets["example"]},
		{"peeragent example through peerdns", peeragentChart, peeragentValueSets["example through peerdns, given keys, no readiness gate"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.chart, tt.values)
			if len(r.docs) == 0 {
				t.Fatal("rendered nothing")
			}
			for obj, err := range apply(t, r) {
				t.Errorf("apply %s: %v", obj, err)
			}
		})
	}

	// Guards against a dry run that checks nothing.
	t.Run("the API server rejects an invalid object", func(t *testing.T) {
		r := render(t, peerdnsChart, `securityContext: {runAsUser: -1}`)
		errs := apply(t, r)
		if errs["Deployment r-peerdns"] == nil {
			t.Errorf("a Deployment running as user -1 was accepted; errors: %v", errs)
		}
	})
}
