package charts_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const peeragentChart = "peeragent"

// A valid 32-byte key, base64: what `openssl rand -base64 32` prints.
const testGossipKey = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="

var peeragentValueSets = map[string]string{
	"defaults": ``,
	"example":  `example: {enabled: true}`,
	"example through peerdns, given keys, no readiness gate": `
example: {enabled: true, replicas: 5}
peers: {domain: peerdns.internal., dnsServer: "10.96.0.53:53"}
gossipKeys: {keys: {primary: ` + testGossipKey + `, previous: ` + testGossipKey + `}}
readinessProbe: null
`,
	"example with web config": `
example: {enabled: true}
webConfig: {secretName: web, tls: true, probeHeaders: [{name: Authorization, value: Basic cDpz}]}
podMonitor: {enabled: true, tlsConfig: {insecureSkipVerify: true}, basicAuth: {username: {name: scrape, key: user}, password: {name: scrape, key: password}}}
`,
	"example without encryption": `
example: {enabled: true}
gossipKeys: {enabled: false}
`,
	"the cluster DNS alone": `
example: {enabled: true}
peers: {view: svc, domain: cluster.local}
`,
	"example with monitoring": `
example: {enabled: true}
podMonitor: {enabled: true, labels: {release: prom}, scrapeTimeout: 10s}
prometheusRule: {enabled: true, labels: {release: prom}}
grafanaDashboard: {enabled: true}
extraEnv: [{name: GOMEMLIMIT, value: 48MiB}]
`,
}

func TestPeeragentLint(t *testing.T) {
	for name, values := range peeragentValueSets {
		t.Run(name, func(t *testing.T) {
			if err := lint(t, peeragentChart, values); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestPeeragentDefaults: installed alone, the chart renders the gossip-key
// Secret a depending chart's pods mount, with a generated primary key.
func TestPeeragentDefaults(t *testing.T) {
	r := render(t, peeragentChart, "")
	if n := len(r.statefulSets) + len(r.services); n != 0 {
		t.Errorf("rendered %d StatefulSets and Services; the example must be off by default", n)
	}
	if n := len(r.podMonitors) + len(r.prometheusRules) + len(r.configMaps); n != 0 {
		t.Errorf("rendered %d PodMonitors, PrometheusRules and ConfigMaps; monitoring is opt-in", n)
	}
	s := only(t, "Secret", r.secrets)
	if s.Name != "r-peeragent-gossip-keys" {
		t.Errorf("Secret name = %q, want r-peeragent-gossip-keys", s.Name)
	}
	if len(s.Data) != 1 {
		t.Errorf("Secret holds %d keys, want one (primary)", len(s.Data))
	}
	// The file the agent reads holds the key in base64, as an operator's
	// `openssl rand -base64 32` would.
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(s.Data["primary"])))
	if err != nil || len(key) != 32 {
		t.Errorf("primary key file %q: want base64 of 32 bytes (err %v, %d bytes)", s.Data["primary"], err, len(key))
	}
}

// sidecarWant is what the sidecar should say for one rendering.
type sidecarWant struct {
	serviceName string
	replicas    int    // the StatefulSet's, which the sidecar must not carry
	expected    int    // --cluster.expected; 0: the default 1
	source      string // --cluster.source; "": kubernetes
	srv         string
	label       string // --cluster.label
	ordinal     int    // --cluster.ordinal-start, when not 0
	extraArgs   []string
	dnsServer   string // empty: no --peers.dns-server flag
	secretName  string // empty: no gossip encryption
}

// checkAPIToken checks that the sidecar alone gets an API token: the pod
// automounts none, the sidecar mounts a projected one where client-go's
// in-cluster configuration reads it.
func checkAPIToken(t *testing.T, sts appsv1.StatefulSet, agent *corev1.Container) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	if spec.ServiceAccountName == "" || spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("pod serviceAccountName %q automount %v: want a ServiceAccount and no automounted token", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	const dir = "/var/run/secrets/kubernetes.io/serviceaccount"
	i := slices.IndexFunc(agent.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
	if i < 0 {
		t.Fatalf("sidecar mounts no API token at %s: %+v", dir, agent.VolumeMounts)
	}
	j := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == agent.VolumeMounts[i].Name })
	if j < 0 || spec.Volumes[j].Projected == nil {
		t.Fatalf("API token volume %q is not a projected volume of the pod", agent.VolumeMounts[i].Name)
	}
	var files []string
	for _, src := range spec.Volumes[j].Projected.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			files = append(files, src.ServiceAccountToken.Path)
		case src.ConfigMap != nil:
			for _, it := range src.ConfigMap.Items {
				files = append(files, it.Path)
			}
		case src.DownwardAPI != nil:
			for _, it := range src.DownwardAPI.Items {
				files = append(files, it.Path)
			}
		}
	}
	slices.Sort(files)
	if diff := cmp.Diff([]string{"ca.crt", "namespace", "token"}, files); diff != "" {
		t.Errorf("API token volume files (-want +got):\n%s", diff)
	}
	for _, c := range spec.Containers {
		if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == agent.VolumeMounts[i].Name }) {
			t.Errorf("container %s mounts the sidecar's API token", c.Name)
		}
	}
}

// checkAgentRBAC checks the Role lets the sidecar read its own StatefulSet and
// nothing else, bound to the pods' ServiceAccount.
func checkAgentRBAC(t *testing.T, r *rendered, sts appsv1.StatefulSet) {
	t.Helper()
	role := only(t, "Role", r.roles)
	want := []rbacv1.PolicyRule{{
		APIGroups: []string{"apps"}, Resources: []string{"statefulsets"},
		ResourceNames: []string{sts.Name}, Verbs: []string{"get", "list", "watch"},
	}}
	if diff := cmp.Diff(want, role.Rules); diff != "" {
		t.Errorf("Role rules (-want +got):\n%s", diff)
	}
	rb := only(t, "RoleBinding", r.roleBindings)
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sts.Spec.Template.Spec.ServiceAccountName, Namespace: releaseNamespace}}
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || !cmp.Equal(wantSubjects, rb.Subjects) {
		t.Errorf("RoleBinding %+v binds %+v, want Role %s to %+v", rb.RoleRef, rb.Subjects, role.Name, wantSubjects)
	}
}

// checkSidecar checks that sts runs peeragent as a native sidecar with the
// contract flags, identity from the downward API, and the key mount.
func checkSidecar(t *testing.T, sts appsv1.StatefulSet, want sidecarWant) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	for _, c := range spec.Containers {
		if c.Name == "peeragent" {
			t.Errorf("peeragent is a regular container; it must be a native sidecar (init container)")
		}
	}
	var agent *corev1.Container
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == "peeragent" {
			agent = &spec.InitContainers[i]
		}
	}
	if agent == nil {
		t.Fatalf("no peeragent init container in %s", sts.Name)
	}
	if agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("peeragent restartPolicy = %v, want Always (a native sidecar)", agent.RestartPolicy)
	}

	wantArgs := []string{
		"--node.name=$(POD_NAME)",
		"--gossip.listen-address=:7946",
		"--gossip.advertise-address=$(POD_IP)",
		"--peers.srv=" + want.srv,
		"--cluster.expected=" + strconv.Itoa(max(want.expected, 1)),
		"--cluster.source=" + want.sourceOrDefault(),
		"--cluster.stabilization-time=10s",
		"--cluster.label=" + want.label,
		"--web.listen-address=:9470",
	}
	if want.ordinal != 0 {
		wantArgs = append(wantArgs, "--cluster.ordinal-start="+strconv.Itoa(want.ordinal))
	}
	wantArgs = append(wantArgs, want.extraArgs...)
	if want.dnsServer != "" {
		wantArgs = append(wantArgs, "--peers.dns-server="+want.dnsServer)
	}
	if want.secretName != "" {
		wantArgs = append(wantArgs, "--gossip.keyring-dir=/etc/peeragent/keys")
	}
	if m := missingArgs(agent.Args, wantArgs...); m != nil {
		t.Errorf("peeragent args %q lack %q", agent.Args, m)
	}
	if len(agent.Args) != len(wantArgs) {
		t.Errorf("peeragent args %q, want exactly %q", agent.Args, wantArgs)
	}
	if int(*sts.Spec.Replicas) != want.replicas {
		t.Errorf("StatefulSet replicas = %d, want %d", *sts.Spec.Replicas, want.replicas)
	}
	// Nothing in the pod template may depend on the replicas: changing
	// them must roll no pod.
	for _, a := range agent.Args {
		if strings.Contains(a, "="+strconv.Itoa(want.replicas)) && want.replicas != max(want.expected, 1) {
			t.Errorf("sidecar arg %q carries the replicas %d", a, want.replicas)
		}
	}
	if want.sourceOrDefault() == "kubernetes" {
		checkAPIToken(t, sts, agent)
	}
	if sts.Spec.ServiceName != want.serviceName {
		t.Errorf("StatefulSet serviceName = %q, want %q (the SRV name is built from it)", sts.Spec.ServiceName, want.serviceName)
	}

	env := map[string]string{}
	for _, e := range agent.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	for name, path := range map[string]string{"POD_NAME": "metadata.name", "POD_IP": "status.podIP"} {
		if env[name] != path {
			t.Errorf("env %s comes from %q, want the downward API's %s", name, env[name], path)
		}
	}

	var mount *corev1.VolumeMount
	for i := range agent.VolumeMounts {
		if agent.VolumeMounts[i].MountPath == "/etc/peeragent/keys" {
			mount = &agent.VolumeMounts[i]
		}
	}
	if want.secretName == "" {
		if mount != nil || slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil }) {
			t.Errorf("gossip keys are off, yet the pod mounts %+v, volumes %+v", mount, spec.Volumes)
		}
		return
	}
	if mount == nil {
		t.Fatalf("peeragent does not mount the gossip keys; mounts %+v", agent.VolumeMounts)
	}
	if !mount.ReadOnly || mount.SubPath != "" {
		t.Errorf("key mount %+v: want read-only and without subPath (subPath mounts never see a changed Secret)", mount)
	}
	var secret string
	for _, v := range spec.Volumes {
		if v.Name == mount.Name && v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if secret != want.secretName {
		t.Errorf("key volume %q mounts Secret %q, want %q", mount.Name, secret, want.secretName)
	}
}

func TestPeeragentExample(t *testing.T) {
	tests := []struct {
		name      string
		values    string
		want      sidecarWant
		readiness bool
		wantKeys  []string
	}{
		{
			name:   "example",
			values: peeragentValueSets["example"],
			want: sidecarWant{
				serviceName: "r-peeragent-example", replicas: 3,
				srv:        "_gossip._tcp.r-peeragent-example." + releaseNamespace + ".peers.peerdns.internal",
				label:      releaseNamespace + "/r-peeragent-example",
				secretName: "r-peeragent-gossip-keys",
			},
			readiness: true,
			wantKeys:  []string{"primary"},
		},
		{
			name:   "example through peerdns, given keys, no readiness gate",
			values: peeragentValueSets["example through peerdns, given keys, no readiness gate"],
			want: sidecarWant{
				serviceName: "r-peeragent-example", replicas: 5,
				srv:        "_gossip._tcp.r-peeragent-example." + releaseNamespace + ".peers.peerdns.internal",
				label:      releaseNamespace + "/r-peeragent-example",
				dnsServer:  "10.96.0.53:53",
				secretName: "r-peeragent-gossip-keys",
			},
			wantKeys: []string{"previous", "primary"},
		},
		{
			name:   "example without encryption",
			values: peeragentValueSets["example without encryption"],
			want: sidecarWant{
				serviceName: "r-peeragent-example", replicas: 3,
				srv:   "_gossip._tcp.r-peeragent-example." + releaseNamespace + ".peers.peerdns.internal",
				label: releaseNamespace + "/r-peeragent-example",
			},
			readiness: true,
		},
		{
			name:   "the cluster DNS alone",
			values: peeragentValueSets["the cluster DNS alone"],
			want: sidecarWant{
				serviceName: "r-peeragent-example", replicas: 3,
				srv:        "_gossip._tcp.r-peeragent-example." + releaseNamespace + ".svc.cluster.local",
				label:      releaseNamespace + "/r-peeragent-example",
				secretName: "r-peeragent-gossip-keys",
			},
			readiness: true,
			wantKeys:  []string{"primary"},
		},
		{
			name: "size from a ConfigMap",
			values: `
example: {enabled: true}
cluster: {source: file, expected: 3, expectedConfigMap: {name: web-size, key: size}, stateFile: /data/peeragent.json}
`,
			want: sidecarWant{
				serviceName: "r-peeragent-example", replicas: 3, expected: 3, source: "file",
				srv:        "_gossip._tcp.r-peeragent-example." + releaseNamespace + ".peers.peerdns.internal",
				label:      releaseNamespace + "/r-peeragent-example",
				secretName: "r-peeragent-gossip-keys",
				extraArgs:  []string{"--cluster.expected-file=/etc/peeragent/size/size", "--cluster.state-file=/data/peeragent.json"},
			},
			readiness: true,
			wantKeys:  []string{"primary"},
		},
		{
			name: "existing Secret, explicit SRV name",
			values: `
example: {enabled: true}
peers: {srv: _gossip._tcp.db.prod.peers.peerdns.internal}
gossipKeys: {existingSecret: db-gossip}
clusterLabel: orders
`,
			want: sidecarWant{
				serviceName: "r-peeragent-example", replicas: 3,
				srv:        "_gossip._tcp.db.prod.peers.peerdns.internal",
				label:      "orders",
				secretName: "db-gossip",
			},
			readiness: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, peeragentChart, tt.values)
			sts := only(t, "StatefulSet", r.statefulSets)
			checkSidecar(t, sts, tt.want)
			if tt.want.sourceOrDefault() == "kubernetes" {
				checkAgentRBAC(t, r, sts)
			} else if len(r.roles)+len(r.roleBindings) != 0 {
				t.Errorf("source %s renders %d Roles and %d RoleBindings, want none", tt.want.source, len(r.roles), len(r.roleBindings))
			}

			if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
				t.Errorf("podManagementPolicy = %q, want Parallel: OrderedReady would wait for member 0's quorum before starting member 1", sts.Spec.PodManagementPolicy)
			}
			svc := only(t, "Service", r.services)
			if svc.Name != sts.Spec.ServiceName || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service %s clusterIP %q: want the headless %s", svc.Name, svc.Spec.ClusterIP, sts.Spec.ServiceName)
			}
			// Members gated on the agent's readiness find each other before
			// they are Ready: in peerdns's peer view without help, in the
			// cluster DNS's svc names only with not-ready addresses published.
			if want := strings.Contains(tt.values, "view: svc"); svc.Spec.PublishNotReadyAddresses != want {
				t.Errorf("headless Service publishNotReadyAddresses = %v, want %v", svc.Spec.PublishNotReadyAddresses, want)
			}
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(sts.Spec.Template.Labels)) {
				t.Errorf("Service selector %v does not match the pods %v", svc.Spec.Selector, sts.Spec.Template.Labels)
			}
			wantPorts := []corev1.ServicePort{{Name: "gossip", Port: 7946, Protocol: corev1.ProtocolTCP, TargetPort: svc.Spec.Ports[0].TargetPort}}
			if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" || svc.Spec.Ports[0].TargetPort.String() != "gossip" {
				t.Errorf("Service ports (-want +got), targeting the container's gossip port:\n%s", diff)
			}

			agent := sts.Spec.Template.Spec.InitContainers[0]
			if got := agent.ReadinessProbe != nil; got != tt.readiness {
				t.Errorf("readiness probe present = %v, want %v", got, tt.readiness)
			}
			if agent.LivenessProbe == nil || agent.LivenessProbe.HTTPGet == nil || agent.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("liveness probe = %+v, want GET /healthz", agent.LivenessProbe)
			}

			var keys []string
			for _, s := range r.secrets {
				for k := range s.Data {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if diff := cmp.Diff(tt.wantKeys, keys); diff != "" {
				t.Errorf("gossip key files in the chart's Secret (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPeeragentAsDependency renders a database chart that depends on
// peeragent and includes its templates, the way the README tells users to.
func TestPeeragentAsDependency(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "orders-db")
	copyDir(t, peeragentChart, filepath.Join(parent, "charts", "peeragent"))
	files := map[string]string{
		"Chart.yaml": `apiVersion: v2
name: orders-db
version: 1.2.3
appVersion: "9.9.9"
dependencies:
  - name: peeragent
    version: ` + chartMeta(t, peeragentChart).Version + `
`,
		"values.yaml": `replicas: 5
peeragent:
  peers: {domain: peerdns.internal}
  extraArgs: [--peers-file=/shared/peers]
  extraVolumeMounts: [{name: shared, mountPath: /shared}]
`,
		"templates/statefulset.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: orders
spec:
  serviceName: orders
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: orders}
  template:
    metadata:
      labels: {app: orders}
    spec:
      serviceAccountName: orders
      automountServiceAccountToken: false
      initContainers:
        {{- include "peeragent.sidecar" (dict "root" $ "serviceName" "orders" "ordinalStart" 1) | nindent 8 }}
      containers:
        - name: db
          image: example.org/orders-db:9.9.9
      volumes:
        - name: shared
          emptyDir: {}
        {{- include "peeragent.volumes" (dict "root" $) | nindent 8 }}
`,
		"templates/rbac.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: orders
automountServiceAccountToken: false
---
{{ include "peeragent.rbac" (dict "root" $ "statefulSetName" "orders" "serviceAccountName" "orders") }}
`,
		"templates/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: orders
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: orders}
  ports:
    {{- include "peeragent.servicePort" (dict "root" $) | nindent 4 }}
`,
	}
	for name, text := range files {
		p := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r := render(t, parent, "")
	sts := only(t, "StatefulSet", r.statefulSets)
	secret := only(t, "Secret", r.secrets)
	checkSidecar(t, sts, sidecarWant{
		serviceName: "orders", replicas: 5,
		srv:        "_gossip._tcp.orders." + releaseNamespace + ".peers.peerdns.internal",
		label:      releaseNamespace + "/orders",
		ordinal:    1,
		extraArgs:  []string{"--peers-file=/shared/peers"},
		secretName: secret.Name,
	})
	checkAgentRBAC(t, r, sts)
	agent := sts.Spec.Template.Spec.InitContainers[0]
	if !slices.ContainsFunc(agent.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "shared" && m.MountPath == "/shared" }) {
		t.Errorf("sidecar mounts %+v, want the extra mount of shared at /shared too", agent.VolumeMounts)
	}
	if want := "ghcr.io/peerdns/peeragent:" + chartMeta(t, peeragentChart).AppVersion; agent.Image != want {
		t.Errorf("sidecar image = %q, want %q: peeragent's appVersion, not the database chart's", agent.Image, want)
	}
	svc := only(t, "Service", r.services)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "gossip" {
		t.Errorf("Service ports = %+v, want the gossip port", svc.Spec.Ports)
	}

	t.Run("scaling rolls no pod", func(t *testing.T) {
		// helm upgrade --set replicas=7: the pod template is unchanged, so
		// the StatefulSet controller replaces no pod.
		scaled := only(t, "StatefulSet", render(t, parent, "replicas: 7").statefulSets)
		if *scaled.Spec.Replicas != 7 {
			t.Fatalf("replicas = %d, want 7", *scaled.Spec.Replicas)
		}
		if diff := cmp.Diff(sts.Spec.Template, scaled.Spec.Template); diff != "" {
			t.Errorf("pod template changed with the replicas (-5 +7):\n%s", diff)
		}
	})
	t.Run("values from the parent are checked by peeragent's schema", func(t *testing.T) {
		_, err := template(t, parent, `peeragent: {gossip: {port: "7946"}}`)
		wantHelmError(t, err, "port")
	})
	t.Run("sidecar without a service name", func(t *testing.T) {
		p := filepath.Join(parent, "templates", "statefulset.yaml")
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(text), `"serviceName" "orders" `, "", 1)
		if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = template(t, parent, "")
		wantHelmError(t, err, "serviceName (the StatefulSet's headless Service) is required")
	})
}

// helm upgrade --set example.replicas=5 changes the StatefulSet's replicas
// and nothing in its pod template: no pod rolls.
func TestPeeragentScalingRollsNothing(t *testing.T) {
	three := only(t, "StatefulSet", render(t, peeragentChart, `example: {enabled: true, replicas: 3}`).statefulSets)
	five := only(t, "StatefulSet", render(t, peeragentChart, `example: {enabled: true, replicas: 5}`).statefulSets)
	if *five.Spec.Replicas != 5 {
		t.Fatalf("replicas = %d, want 5", *five.Spec.Replicas)
	}
	if diff := cmp.Diff(three.Spec.Template, five.Spec.Template); diff != "" {
		t.Errorf("pod template changed with the replicas (-3 +5):\n%s", diff)
	}
}

// With cluster.source file the sidecar mounts the ConfigMap whole, so the
// kubelet's updates reach it.
func TestPeeragentSizeConfigMap(t *testing.T) {
	sts := only(t, "StatefulSet", render(t, peeragentChart, `
example: {enabled: true}
cluster: {source: file, expectedConfigMap: {name: web-size}}
`).statefulSets)
	agent := sts.Spec.Template.Spec.InitContainers[0]
	i := slices.IndexFunc(agent.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/etc/peeragent/size" })
	if i < 0 || agent.VolumeMounts[i].SubPath != "" || !agent.VolumeMounts[i].ReadOnly {
		t.Fatalf("sidecar mounts %+v, want the size read-only at /etc/peeragent/size, without subPath", agent.VolumeMounts)
	}
	j := slices.IndexFunc(sts.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == agent.VolumeMounts[i].Name })
	if j < 0 || sts.Spec.Template.Spec.Volumes[j].ConfigMap == nil || sts.Spec.Template.Spec.Volumes[j].ConfigMap.Name != "web-size" {
		t.Errorf("size volume %+v, want ConfigMap web-size", sts.Spec.Template.Spec.Volumes)
	}
}

func TestPeeragentRejects(t *testing.T) {
	tests := []struct {
		name   string
		values string
		wants  []string
	}{
		{"replicas as a word", `example: {replicas: "three"}`, []string{"replicas"}},
		{"unknown size source", `cluster: {source: api}`, []string{"source"}},
		{"size file without its ConfigMap", `{example: {enabled: true}, cluster: {source: file}}`, []string{"cluster.expectedConfigMap.name"}},
		{"floor of zero", `cluster: {expected: 0}`, []string{"expected"}},
		{"relative state file", `cluster: {stateFile: data/state.json}`, []string{"stateFile"}},
		{"unknown top-level value", `sidecar: {}`, []string{"sidecar", "not allowed"}},
		{"key that is not base64 of 16, 24 or 32 bytes", `gossipKeys: {keys: {primary: c2hvcnQ=}}`, []string{"primary"}},
		{"keys without a primary", `gossipKeys: {keys: {next: ` + testGossipKey + `}}`, []string{`must contain a "primary" key`}},
		{"DNS server without a port", `peers: {dnsServer: 10.96.0.53}`, []string{"dnsServer"}},
		{"SRV name that is not one", `peers: {srv: web.default.svc.cluster.local}`, []string{"srv"}},
		{"unknown view", `peers: {view: ready}`, []string{"view"}},
		{"scrape interval without a unit", `podMonitor: {interval: "30"}`, []string{"interval"}},
		{"dashboard label that is not a string", `grafanaDashboard: {labels: {grafana_dashboard: 1}}`, []string{"grafana_dashboard"}},
		{"gossip port name too long for its UDP twin", `gossip: {portName: gossip-cluster}`, []string{"portName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := template(t, peeragentChart, tt.values)
			wantHelmError(t, err, tt.wants...)
		})
	}
}

func TestPeeragentNotes(t *testing.T) {
	tests := []struct {
		name, values string
		wants        []string
		not          []string
	}{
		{
			name:   "alone",
			values: "",
			wants: []string{
				"Gossip keys: Secret " + releaseNamespace + "/r-peeragent-gossip-keys (a primary key generated at install, kept on upgrades).",
				`include "peeragent.sidecar"`,
				"    _gossip._tcp.<service>." + releaseNamespace + ".peers.peerdns.internal\n",
			},
			not: []string{"Monitoring:", "NOT encrypted"},
		},
		{
			name:   "example in the peer view",
			values: peeragentValueSets["example with monitoring"],
			wants: []string{
				"    _gossip._tcp.r-peeragent-example." + releaseNamespace + ".peers.peerdns.internal\n",
				"which is peerdns's peer view",
				"kubectl get --raw /api/v1/namespaces/" + releaseNamespace + "/pods/r-peeragent-example-0:9470/proxy/members",
				"PodMonitor " + releaseNamespace + "/r-peeragent scrapes the ports named agent-web of the pods labelled app.kubernetes.io/instance=r.",
				"PrometheusRule " + releaseNamespace + "/r-peeragent holds the peeragent alerts",
				"ConfigMap " + releaseNamespace + "/r-peeragent-dashboard holds the Grafana dashboard.",
			},
		},
		{
			name:   "example through the cluster DNS, no encryption",
			values: "example: {enabled: true}\npeers: {view: svc, domain: cluster.local}\ngossipKeys: {enabled: false}\n",
			wants: []string{
				"    _gossip._tcp.r-peeragent-example." + releaseNamespace + ".svc.cluster.local\n",
				"Gossip is NOT encrypted",
			},
			not: []string{"peer view"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes := renderNotes(t, peeragentChart, tt.values)
			for _, want := range tt.wants {
				if !strings.Contains(notes, want) {
					t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
				}
			}
			for _, not := range tt.not {
				if strings.Contains(notes, not) {
					t.Errorf("NOTES.txt says %q:\n%s", not, notes)
				}
			}
		})
	}
}

// chartVersions are the version fields of a Chart.yaml.
type chartVersions struct {
	Version    string `json:"version"`
	AppVersion string `json:"appVersion"`
}

// chartMeta reads the version fields of chart's Chart.yaml.
func chartMeta(t *testing.T, chart string) chartVersions {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v chartVersions
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version == "" || v.AppVersion == "" {
		t.Fatalf("%s/Chart.yaml lacks version or appVersion", chart)
	}
	return v
}

// TestPeeragentStartupProbe: by default the sidecar holds the database until
// the agent has heard from a peer (/startupz); `startupProbe: null`, which
// OrderedReady needs, removes that gate.
func TestPeeragentStartupProbe(t *testing.T) {
	agentOf := func(t *testing.T, values string) corev1.Container {
		t.Helper()
		sts := only(t, "StatefulSet", render(t, peeragentChart, values).statefulSets)
		for _, c := range sts.Spec.Template.Spec.InitContainers {
			if c.Name == "peeragent" {
				return c
			}
		}
		t.Fatalf("no peeragent init container in %s", sts.Name)
		return corev1.Container{}
	}
	t.Run("default", func(t *testing.T) {
		p := agentOf(t, `example: {enabled: true}`).StartupProbe
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/startupz" || p.HTTPGet.Port.String() != "agent-web" {
			t.Errorf("startup probe = %+v, want GET /startupz on agent-web", p)
		}
	})
	t.Run("OrderedReady: both gates removed", func(t *testing.T) {
		c := agentOf(t, "example: {enabled: true}\nstartupProbe: null\nreadinessProbe: null\n")
		if c.StartupProbe != nil || c.ReadinessProbe != nil {
			t.Errorf("startup probe %+v, readiness probe %+v; want neither", c.StartupProbe, c.ReadinessProbe)
		}
		if c.LivenessProbe == nil {
			t.Error("liveness probe removed too; it must stay")
		}
	})
}

func (w sidecarWant) sourceOrDefault() string {
	if w.source == "" {
		return "kubernetes"
	}
	return w.source
}
