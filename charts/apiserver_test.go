package charts_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// TestChartsApplyToAPIServer sends what the charts render to a real
// kube-apiserver as a server-side dry-run apply with strict field
// validation, then installs some for real (see "installed"). The API
// server validates what typed decoding cannot: native sidecar rules (probes
// are allowed on an init container only with restartPolicy Always),
// selectors against labels, port names, RBAC references.
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
	a := newApplier(ctx, t, cfg)
	apply := a.apply

	tests := []struct {
		name, chart, values string
	}{
		// The monitoring sets are installed below, once the
		// prometheus-operator's CRDs exist.
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
			for obj, err := range apply(t, r, true) {
				t.Errorf("apply %s: %v", obj, err)
			}
		})
	}

	// Guards against a dry run that checks nothing.
	t.Run("the API server rejects an invalid object", func(t *testing.T) {
		r := render(t, peerdnsChart, `securityContext: {runAsUser: -1}`)
		errs := apply(t, r, true)
		if errs["Deployment r-peerdns"] == nil {
			t.Errorf("a Deployment running as user -1 was accepted; errors: %v", errs)
		}
	})

	// Installed for real: every object applied, read back and compared, the
	// prometheus-operator's objects against minimal CRDs of their kinds, and
	// the service accounts' rights asked of the API server with kubectl.
	t.Run("installed", func(t *testing.T) {
		createMonitoringCRDs(ctx, t, a.dyn)
		a.mapper.Reset() // forget the discovery that predates the CRDs

		installs := []struct {
			name, chart, values, namespace string
		}{
			{"peerdns with monitoring", peerdnsChart, peerdnsValueSets["monitoring"], releaseNamespace},
			{"peerdns for one namespace", peerdnsChart, peerdnsValueSets["one namespace"], "dns-db"},
			{"peerdns reading services", peerdnsChart, peerdnsValueSets["read services"] + "fullnameOverride: peerdns-svc\n", "dns-svc"},
			{"peeragent example with monitoring", peeragentChart, peeragentValueSets["example with monitoring"], releaseNamespace},
			// A name of its own: the ClusterRoleBinding is cluster-scoped.
			{"peerdns with a web config", peerdnsChart, peerdnsValueSets["web config with TLS and probe headers"] + "fullnameOverride: peerdns-web\n", "dns-web"},
			{"peeragent example with a web config", peeragentChart, peeragentValueSets["example with web config"], "dns-web"},
		}
		for _, ns := range []string{"dns-db", "dns-svc", "monitoring", "dns-web"} {
			if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, in := range installs {
			t.Run(in.name, func(t *testing.T) {
				r := render(t, in.chart, in.values, "--namespace", in.namespace)
				for obj, err := range apply(t, r, false) {
					t.Errorf("apply %s: %v", obj, err)
				}
				kinds := map[string]int{}
				for _, doc := range r.docs {
					sent, res := a.resource(t, doc)
					kinds[sent.GetKind()]++
					got, err := res.Get(ctx, sent.GetName(), metav1.GetOptions{})
					if err != nil {
						t.Errorf("read back %s %s: %v", sent.GetKind(), sent.GetName(), err)
						continue
					}
					for _, d := range missingFields(sent.Object, got.Object, "") {
						t.Errorf("%s %s/%s read back differs: %s", sent.GetKind(), got.GetNamespace(), sent.GetName(), d)
					}
				}
				t.Logf("installed and read back %v", kinds)
			})
		}

		kubectl := testtools.Path(t, "kubectl")
		canI := func(t *testing.T, sa, verb, resource, namespace string) string {
			t.Helper()
			args := []string{"--kubeconfig", cp.Kubeconfig(), "auth", "can-i", verb, resource, "--as", sa}
			if namespace == "" {
				args = append(args, "--all-namespaces")
			} else {
				args = append(args, "--namespace", namespace)
			}
			// can-i exits 1 for "no": the answer is on stdout either way.
			out, err := exec.Command(kubectl, args...).Output()
			answer := strings.TrimSpace(string(out))
			if answer != "yes" && answer != "no" {
				t.Fatalf("kubectl %s: %q, %v", strings.Join(args, " "), answer, err)
			}
			return answer
		}
		const epSlices = "endpointslices.discovery.k8s.io"
		rights := []struct {
			sa, verb, resource, namespace, want string
		}{
			// Cluster-wide: list and watch EndpointSlices, nothing else.
			{"dns-system:r-peerdns", "list", epSlices, "", "yes"},
			{"dns-system:r-peerdns", "watch", epSlices, "", "yes"},
			{"dns-system:r-peerdns", "get", epSlices, "db", "no"},
			{"dns-system:r-peerdns", "create", epSlices, "db", "no"},
			{"dns-system:r-peerdns", "list", "services", "", "no"},
			{"dns-system:r-peerdns", "list", "pods", "", "no"},
			{"dns-system:r-peerdns", "list", "endpoints", "", "no"},
			{"dns-system:r-peerdns", "get", "secrets", releaseNamespace, "no"},
			// watchNamespace: db, and db only.
			{"dns-db:r-peerdns", "list", epSlices, "db", "yes"},
			{"dns-db:r-peerdns", "watch", epSlices, "db", "yes"},
			{"dns-db:r-peerdns", "list", epSlices, "default", "no"},
			{"dns-db:r-peerdns", "list", epSlices, "", "no"},
			// readServices: Services too, list and watch only.
			{"dns-svc:peerdns-svc", "list", "services", "", "yes"},
			{"dns-svc:peerdns-svc", "watch", "services", "", "yes"},
			{"dns-svc:peerdns-svc", "get", "services", "db", "no"},
			{"dns-svc:peerdns-svc", "list", "endpoints", "", "no"},
			// The example's pods run as the namespace's default account,
			// which the chart grants nothing: not even its own gossip keys.
			{"dns-system:default", "get", "secrets", releaseNamespace, "no"},
			{"dns-system:default", "list", "pods", releaseNamespace, "no"},
		}
		for _, rt := range rights {
			sa := "system:serviceaccount:" + rt.sa
			t.Run(rt.sa+" "+rt.verb+" "+rt.resource+" in "+cmp.Or(rt.namespace, "all namespaces"), func(t *testing.T) {
				if got := canI(t, sa, rt.verb, rt.resource, rt.namespace); got != rt.want {
					t.Errorf("kubectl auth can-i %s %s as %s: %s, want %s", rt.verb, rt.resource, sa, got, rt.want)
				}
			})
		}
	})
}

// applier sends rendered documents to an API server.
type applier struct {
	ctx    context.Context
	mapper *restmapper.DeferredDiscoveryRESTMapper
	dyn    dynamic.Interface
}

func newApplier(ctx context.Context, t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{ctx: ctx, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dyn: dyn}
}

// apply sends every rendered object with a server-side apply (a dry run, or
// for real) and returns the errors by kind and name.
func (a *applier) apply(t *testing.T, r *rendered, dryRun bool) map[string]error {
	t.Helper()
	errs := map[string]error{}
	for _, doc := range r.docs {
		obj, res := a.resource(t, doc)
		body, err := json.Marshal(obj.Object)
		if err != nil {
			t.Fatal(err)
		}
		opts := metav1.PatchOptions{
			FieldManager:    "charts-test",
			Force:           ptr(true),
			FieldValidation: metav1.FieldValidationStrict,
		}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := res.Patch(a.ctx, obj.GetName(), types.ApplyPatchType, body, opts); err != nil {
			errs[obj.GetKind()+" "+obj.GetName()] = err
		}
	}
	return errs
}

// resource decodes one rendered document and returns it with the dynamic
// client for its resource (in its namespace, or releaseNamespace).
func (a *applier) resource(t *testing.T, doc []byte) (*unstructured.Unstructured, dynamic.ResourceInterface) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
		t.Fatal(err)
	}
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return obj, a.dyn.Resource(mapping.Resource)
	}
	ns := obj.GetNamespace()
	if ns == "" {
		ns = releaseNamespace
	}
	return obj, a.dyn.Resource(mapping.Resource).Namespace(ns)
}

// missingFields lists every field of sent that got lacks or holds with
// another value; fields the API server adds (defaults, status, metadata)
// are not differences. Both are compared in their JSON form.
func missingFields(sent, got any, path string) []string {
	switch s := sent.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: sent an object, read back %v", path, got)}
		}
		var diffs []string
		for k, v := range s {
			diffs = append(diffs, missingFields(v, g[k], path+"."+k)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			return []string{fmt.Sprintf("%s: sent %v, read back %v", path, sent, got)}
		}
		var diffs []string
		for i := range s {
			diffs = append(diffs, missingFields(s[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return diffs
	default:
		sj, _ := json.Marshal(sent)
		gj, _ := json.Marshal(got)
		if string(sj) != string(gj) {
			return []string{fmt.Sprintf("%s: sent %s, read back %s", path, sj, gj)}
		}
		return nil
	}
}

// createMonitoringCRDs creates minimal CRDs for the prometheus-operator kinds
// the charts render: the names and scope the operator's CRDs have, with a
// schema that keeps every field. The API server then stores the objects; it
// does not check them against the operator's real schema.
func createMonitoringCRDs(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule"} {
		plural := strings.ToLower(kind) + "s"
		name := plural + ".monitoring.coreos.com"
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": name},
			"spec": map[string]any{
				"group": "monitoring.coreos.com",
				"scope": "Namespaced",
				"names": map[string]any{"kind": kind, "listKind": kind + "List", "plural": plural, "singular": strings.ToLower(kind)},
				"versions": []any{map[string]any{
					"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type":                                 "object",
						"x-kubernetes-preserve-unknown-fields": true,
					}},
				}},
			},
		}}
		if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		testtools.Eventually(t, name+" established", 30*time.Second, func() error {
			got, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conditions {
				if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("conditions %v", conditions)
		})
	}
}

// TestMissingFields guards the read-back comparison against one that
// accepts anything.
func TestMissingFields(t *testing.T) {
	sent := map[string]any{"a": 1, "b": []any{"x", map[string]any{"c": true}}, "d": "same"}
	got := map[string]any{"a": 2, "b": []any{"x", map[string]any{}}, "d": "same", "added": "by the server"}
	want := []string{".a: sent 1, read back 2", ".b[1].c: sent true, read back null"}
	diffs := missingFields(sent, got, "")
	slices.Sort(diffs)
	if !slices.Equal(diffs, want) {
		t.Errorf("missingFields = %q, want %q", diffs, want)
	}
}
