// Package charts_test checks the Helm charts under charts/ with the pinned helm:
// they lint strictly, their schemas reject bad values, and what they render
// decodes strictly into Kubernetes API types and says what the programs need.
package charts_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/testtools"
)

var update = flag.Bool("update", false, "rewrite the charts' README values tables from values.yaml")

// releaseNamespace is the namespace every test renders into.
const releaseNamespace = "dns-system"

// helmBinary finds the pinned helm that `make controlplane` builds.
func helmBinary(t *testing.T) string {
	t.Helper()
	return testtools.Path(t, "helm")
}

// TestHelmFound fails, where other tests skip, when helm is missing: almost
// every check of this package renders the charts with helm, and without this
// `go test ./charts` would print ok for a package that checked little more
// than the values tables.
func TestHelmFound(t *testing.T) {
	bin, err := testtools.Bin()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(bin, "helm")
	if _, err := os.Stat(p); err != nil {
		if p, err = exec.LookPath("helm"); err != nil {
			t.Fatalf("helm not found in %s or $PATH, so every chart check that renders with helm was skipped: run `make controlplane`", bin)
		}
	}
	t.Logf("helm: %s", p)
}

// kubeVersion is the Kubernetes version the charts are rendered for: the one
// the project pins in hack/versions.env. helm built with `go install` would
// otherwise assume v1.20, below the charts' kubeVersion.
func kubeVersion(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "hack", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "KUBERNETES_VERSION="); ok {
			return v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatal("hack/versions.env has no KUBERNETES_VERSION")
	return ""
}

// runHelm runs helm with its cache, config and data in a temporary directory,
// so tests neither read nor write the user's helm state. It returns stdout,
// and an error holding stdout and stderr (lint reports on stdout).
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// valuesFile writes values (YAML) to a file for helm's --values. Not under
// t.TempDir: its path holds the test's name, and helm splits --values at
// commas.
func valuesFile(t *testing.T, values string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "peerdns-chart-values-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(p, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lint runs `helm lint --strict` on chart with the given values (YAML).
func lint(t *testing.T, chart, values string) error {
	t.Helper()
	_, err := runHelm(t, "lint", "--strict", "--kube-version", kubeVersion(t),
		"--namespace", releaseNamespace, "--values", valuesFile(t, values), chart)
	return err
}

// template renders chart as release "r" with the given values (YAML) and
// returns helm's error, if any, unparsed.
func template(t *testing.T, chart, values string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"template", "r", chart, "--kube-version", kubeVersion(t),
		"--namespace", releaseNamespace, "--values", valuesFile(t, values)}, extra...)
	return runHelm(t, args...)
}

// rendered holds the objects a chart rendered, decoded strictly: a field
// name the API types do not have fails the decoding.
type rendered struct {
	deployments         []appsv1.Deployment
	statefulSets        []appsv1.StatefulSet
	services            []corev1.Service
	serviceAccounts     []corev1.ServiceAccount
	secrets             []corev1.Secret
	configMaps          []corev1.ConfigMap
	clusterRoles        []rbacv1.ClusterRole
	clusterRoleBindings []rbacv1.ClusterRoleBinding
	roles               []rbacv1.Role
	roleBindings        []rbacv1.RoleBinding
	pdbs                []policyv1.PodDisruptionBudget
	// serviceMonitors are prometheus-operator objects, whose Go types the
	// module does not depend on: kept as plain maps.
	serviceMonitors []map[string]any
	podMonitors     []map[string]any
	prometheusRules []map[string]any
	// testPods are the `helm test` hooks, which helm install does not
	// create: kept out of docs, their raw documents in hooks.
	testPods []corev1.Pod
	hooks    [][]byte
	// docs are the raw documents, in order, for tests that send them on.
	docs [][]byte
}

// render renders chart with values and decodes every document. It fails the
// test when helm fails.
func render(t *testing.T, chart, values string, extra ...string) *rendered {
	t.Helper()
	out, err := template(t, chart, values, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func decode(t *testing.T, out string) *rendered {
	t.Helper()
	r := &rendered{}
	for _, doc := range splitDocuments(out) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("document without apiVersion/kind: %v\n%s", err, doc)
		}
		var err error
		if meta.APIVersion+" "+meta.Kind == "v1 Pod" {
			pod := strict[corev1.Pod](doc, &err)
			if err != nil {
				t.Fatalf("decode Pod: %v\n%s", err, doc)
			}
			if pod.Annotations["helm.sh/hook"] != "test" {
				t.Fatalf("rendered Pod %s, which is not a helm test hook:\n%s", pod.Name, doc)
			}
			r.testPods = append(r.testPods, pod)
			r.hooks = append(r.hooks, doc)
			continue
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			r.deployments = append(r.deployments, strict[appsv1.Deployment](doc, &err))
		case "apps/v1 StatefulSet":
			r.statefulSets = append(r.statefulSets, strict[appsv1.StatefulSet](doc, &err))
		case "v1 Service":
			r.services = append(r.services, strict[corev1.Service](doc, &err))
		case "v1 ServiceAccount":
			r.serviceAccounts = append(r.serviceAccounts, strict[corev1.ServiceAccount](doc, &err))
		case "v1 Secret":
			r.secrets = append(r.secrets, strict[corev1.Secret](doc, &err))
		case "v1 ConfigMap":
			r.configMaps = append(r.configMaps, strict[corev1.ConfigMap](doc, &err))
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			r.clusterRoles = append(r.clusterRoles, strict[rbacv1.ClusterRole](doc, &err))
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			r.clusterRoleBindings = append(r.clusterRoleBindings, strict[rbacv1.ClusterRoleBinding](doc, &err))
		case "rbac.authorization.k8s.io/v1 Role":
			r.roles = append(r.roles, strict[rbacv1.Role](doc, &err))
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			r.roleBindings = append(r.roleBindings, strict[rbacv1.RoleBinding](doc, &err))
		case "policy/v1 PodDisruptionBudget":
			r.pdbs = append(r.pdbs, strict[policyv1.PodDisruptionBudget](doc, &err))
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.serviceMonitors = append(r.serviceMonitors, strict[map[string]any](doc, &err))
		case "monitoring.coreos.com/v1 PodMonitor":
			r.podMonitors = append(r.podMonitors, strict[map[string]any](doc, &err))
		case "monitoring.coreos.com/v1 PrometheusRule":
			r.prometheusRules = append(r.prometheusRules, strict[map[string]any](doc, &err))
		default:
			t.Fatalf("rendered %s %s, which no test knows how to check:\n%s", meta.APIVersion, meta.Kind, doc)
		}
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", meta.Kind, err, doc)
		}
		r.docs = append(r.docs, doc)
	}
	return r
}

// strict decodes doc into a T, rejecting unknown and duplicate fields.
func strict[T any](doc []byte, errp *error) T {
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		*errp = err
	}
	return v
}

// splitDocuments splits a multi-document YAML stream, dropping documents that
// hold only comments or whitespace.
func splitDocuments(out string) [][]byte {
	var docs [][]byte
	for _, part := range strings.Split("\n"+out, "\n---") {
		empty := true
		for _, line := range strings.Split(part, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(part))
		}
	}
	return docs
}

// only returns the single element of objs, failing the test otherwise.
func only[T any](t *testing.T, what string, objs []T) T {
	t.Helper()
	if len(objs) != 1 {
		t.Fatalf("want exactly one %s, rendered %d", what, len(objs))
	}
	return objs[0]
}

// wantHelmError asserts that err is a helm failure whose output contains
// every one of wants.
func wantHelmError(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("helm succeeded; want an error mentioning %q", wants)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helm did not run: %v", err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("helm error does not mention %q:\n%v", w, err)
		}
	}
}

// copyDir copies the chart directory src to dst (regular files only).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// renderNotes renders chart's NOTES.txt with values. `helm template` never
// renders NOTES.txt, and `helm install --dry-run` needs a cluster to take the
// Kubernetes version from, so the test copies the chart and renders the notes
// as the data of a ConfigMap.
func renderNotes(t *testing.T, chart, values string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), filepath.Base(chart))
	copyDir(t, chart, dir)
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"_zz_notes.tpl": `{{- define "zz.notes" -}}` + string(notes) + `{{- end }}`,
		"zz_notes.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n{{ include \"zz.notes\" . | indent 4 }}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "templates", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := render(t, dir, values, "--show-only", "templates/zz_notes.yaml")
	return only(t, "notes ConfigMap", r.configMaps).Data["notes"]
}

// container returns the container named name in spec.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("pod has no container %q", name)
	return corev1.Container{}
}

// missingArgs returns the wanted args that args lacks.
func missingArgs(args []string, want ...string) []string {
	var missing []string
	for _, w := range want {
		found := false
		for _, a := range args {
			if a == w {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	return missing
}
