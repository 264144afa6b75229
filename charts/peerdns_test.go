package charts_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const peerdnsChart = "peerdns"

// peerdnsValueSets are the value sets every peerdns check runs with besides
// the defaults: each turns on something the defaults leave off.
var peerdnsValueSets = map[string]string{
	"defaults": ``,
	"several zones and a pinned IP": `
zones: [peerdns.internal., example.org, 250.10.in-addr.arpa.]
service: {clusterIP: 10.96.0.53}
`,
	"monitoring": `
serviceMonitor: {enabled: true, labels: {release: prom}, scrapeTimeout: 10s}
prometheusRule: {enabled: true, labels: {release: prom}}
grafanaDashboard: {enabled: true, namespace: monitoring, annotations: {grafana_folder: DNS}}
extraEnv: [{name: GOMEMLIMIT, value: 200MiB}]
`,
	"hard anti-affinity, three replicas, minAvailable": `
replicaCount: 3
podAntiAffinity: hard
podDisruptionBudget: {minAvailable: 2}
`,
	"one namespace": `
watchNamespace: db
`,
	"read services": `
readServices: true
`,
	"max staleness": `
maxStalenessSeconds: 30
`,
	"web config with TLS and probe headers": `
webConfig: {secretName: web, tls: true, probeHeaders: [{name: Authorization, value: Basic cDpz}]}
serviceMonitor: {enabled: true, tlsConfig: {insecureSkipVerify: true}, basicAuth: {username: {name: scrape, key: user}, password: {name: scrape, key: password}}}
`,
	"zone transfers with a TSIG key": `
transfer: {allow: [192.0.2.0/28, 2001:db8::/64], notify: [192.0.2.5, "[2001:db8::5]:5353"], tsigKey: {secretName: xfr-key}}
`,
	"existing service account, no RBAC": `
serviceAccount: {create: false, name: dns-reader}
rbac: {create: false}
`,
}

func TestPeerdnsLint(t *testing.T) {
	for name, values := range peerdnsValueSets {
		t.Run(name, func(t *testing.T) {
			if err := lint(t, peerdnsChart, values); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPeerdnsDefaults(t *testing.T) {
	r := render(t, peerdnsChart, "")
	dep := only(t, "Deployment", r.deployments)
	spec := dep.Spec.Template.Spec
	c := container(t, spec, "peerdns")

	if got := *dep.Spec.Replicas; got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	wantArgs := []string{
		"--kubeconfig=",
		"--dns.listen-address=:5353",
		"--dns.zone=peerdns.internal.",
		"--dns.lame-duck=5s",
		"--web.listen-address=:9153",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("container args (-want +got):\n%s", diff)
	}

	t.Run("selectors", func(t *testing.T) {
		podLabels := labels.Set(dep.Spec.Template.Labels)
		sel := dep.Spec.Selector.MatchLabels
		if !labels.SelectorFromSet(sel).Matches(podLabels) {
			t.Errorf("Deployment selector %v does not match its pods %v", sel, podLabels)
		}
		for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/version"} {
			if _, ok := sel[k]; ok {
				t.Errorf("Deployment selector has %s: selectors are immutable, an upgrade would fail", k)
			}
		}
		svc := only(t, "Service", r.services)
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service selector %v does not match the pods %v", svc.Spec.Selector, podLabels)
		}
		pdb := only(t, "PodDisruptionBudget", r.pdbs)
		if !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
			t.Errorf("PodDisruptionBudget selector %v does not match the pods %v", pdb.Spec.Selector.MatchLabels, podLabels)
		}
		if diff := cmp.Diff(ptr(intstr.FromInt32(1)), pdb.Spec.MaxUnavailable); diff != "" || pdb.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget: want maxUnavailable 1 and no minAvailable; got max %v min %v", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
		}
	})

	t.Run("anti-affinity", func(t *testing.T) {
		aff := spec.Affinity
		if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
			t.Fatalf("want one preferred pod anti-affinity term; got %+v", aff)
		}
		if n := len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution); n != 0 {
			t.Errorf("%d required anti-affinity terms: the default must not leave pods Pending on a one-node cluster", n)
		}
		term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		if term.TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("topologyKey = %q, want kubernetes.io/hostname", term.TopologyKey)
		}
		if !labels.SelectorFromSet(term.LabelSelector.MatchLabels).Matches(labels.Set(dep.Spec.Template.Labels)) {
			t.Errorf("anti-affinity selector %v does not match peerdns's own pods", term.LabelSelector.MatchLabels)
		}
	})

	t.Run("probes", func(t *testing.T) {
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"liveness", c.LivenessProbe, "/healthz"},
			{"readiness", c.ReadinessProbe, "/readyz"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s probe: want an HTTP GET of %s", p.name, p.path)
				continue
			}
			if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("metrics") {
				t.Errorf("%s probe gets %s on port %s, want %s on metrics", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
			}
		}
	})

	t.Run("termination grace covers the lame duck", func(t *testing.T) {
		got, lameDuck := *spec.TerminationGracePeriodSeconds, lameDuckSeconds(t, c.Args)
		if got != 15 || got <= lameDuck {
			t.Errorf("terminationGracePeriodSeconds = %d, want 15 (lame duck %d s + 10 s)", got, lameDuck)
		}
	})

	t.Run("security", func(t *testing.T) {
		psc, sc := spec.SecurityContext, c.SecurityContext
		if psc == nil || sc == nil {
			t.Fatalf("want pod and container security contexts; got %+v, %+v", psc, sc)
		}
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Error("runAsNonRoot is not set on the pod and the container")
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod seccomp profile = %+v, want RuntimeDefault", psc.SeccompProfile)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("root filesystem is writable")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("privilege escalation is allowed")
		}
		if sc.Capabilities == nil || !cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("capabilities = %+v, want drop ALL and add nothing", sc.Capabilities)
		}
		for _, p := range c.Ports {
			if p.ContainerPort < 1024 {
				t.Errorf("container port %s is %d: binding it needs NET_BIND_SERVICE", p.Name, p.ContainerPort)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources = %+v, want CPU and memory requests and a memory limit", c.Resources)
		}
	})

	t.Run("service", func(t *testing.T) {
		svc := only(t, "Service", r.services)
		if svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service type = %s, want ClusterIP", svc.Spec.Type)
		}
		checkServicePorts(t, svc, c, map[corev1.Protocol]int32{corev1.ProtocolUDP: 53, corev1.ProtocolTCP: 53})
	})

	t.Run("rbac", func(t *testing.T) {
		checkRBAC(t, r, dep, releaseNamespace)
	})

	if n := len(r.serviceMonitors) + len(r.prometheusRules); n != 0 {
		t.Errorf("rendered %d ServiceMonitors and PrometheusRules; the default needs no prometheus-operator", n)
	}
	if n := len(r.configMaps); n != 0 {
		t.Errorf("rendered %d ConfigMaps; the dashboard is opt-in", n)
	}
}

// checkServicePorts checks that the Service serves DNS on the wanted port for
// each protocol and that each port reaches a container port of the same
// protocol, and that the metrics port does too.
func checkServicePorts(t *testing.T, svc corev1.Service, c corev1.Container, wantDNS map[corev1.Protocol]int32) {
	t.Helper()
	byName := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		byName[p.Name] = p
	}
	got := map[corev1.Protocol]int32{}
	metrics := false
	for _, sp := range svc.Spec.Ports {
		cp, ok := byName[sp.TargetPort.String()]
		if !ok {
			t.Errorf("Service port %s targets %s, which the container does not have", sp.Name, sp.TargetPort.String())
			continue
		}
		if cp.Protocol != sp.Protocol {
			t.Errorf("Service port %s is %s but reaches container port %s over %s", sp.Name, sp.Protocol, cp.Name, cp.Protocol)
		}
		if strings.HasPrefix(sp.Name, "dns") {
			got[sp.Protocol] = sp.Port
		}
		if sp.Name == "metrics" {
			metrics = true
		}
	}
	if diff := cmp.Diff(wantDNS, got); diff != "" {
		t.Errorf("DNS Service ports by protocol (-want +got):\n%s", diff)
	}
	if !metrics {
		t.Error("Service has no metrics port")
	}
}

// checkRBAC checks that the ClusterRole grants exactly list and watch on
// EndpointSlices, and that the binding gives it to the Deployment's
// ServiceAccount.
func checkRBAC(t *testing.T, r *rendered, dep appsv1.Deployment, namespace string) {
	t.Helper()
	if n := len(r.roles) + len(r.roleBindings); n != 0 {
		t.Errorf("rendered %d namespaced Roles and RoleBindings besides the ClusterRole", n)
	}
	role := only(t, "ClusterRole", r.clusterRoles)
	if diff := cmp.Diff(endpointSliceReader, role.Rules); diff != "" {
		t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
	}
	binding := only(t, "ClusterRoleBinding", r.clusterRoleBindings)
	wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name}
	if diff := cmp.Diff(wantRef, binding.RoleRef); diff != "" {
		t.Errorf("ClusterRoleBinding roleRef (-want +got):\n%s", diff)
	}
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: dep.Spec.Template.Spec.ServiceAccountName, Namespace: namespace}}
	if diff := cmp.Diff(wantSubjects, binding.Subjects); diff != "" {
		t.Errorf("ClusterRoleBinding subjects (-want +got):\n%s", diff)
	}
}

// endpointSliceReader is everything peerdns may do with the API.
var endpointSliceReader = []rbacv1.PolicyRule{{
	APIGroups: []string{"discovery.k8s.io"},
	Resources: []string{"endpointslices"},
	Verbs:     []string{"list", "watch"},
}}

func TestPeerdnsValues(t *testing.T) {
	tests := []struct {
		name   string
		values string
		check  func(t *testing.T, r *rendered)
	}{
		{
			name:   "every zone becomes a flag, in order",
			values: peerdnsValueSets["several zones and a pinned IP"],
			check: func(t *testing.T, r *rendered) {
				var zones []string
				for _, a := range peerdnsContainer(t, r).Args {
					if z, ok := strings.CutPrefix(a, "--dns.zone="); ok {
						zones = append(zones, z)
					}
				}
				if diff := cmp.Diff([]string{"peerdns.internal.", "example.org", "250.10.in-addr.arpa."}, zones); diff != "" {
					t.Errorf("--dns.zone flags (-want +got):\n%s", diff)
				}
				if got := only(t, "Service", r.services).Spec.ClusterIP; got != "10.96.0.53" {
					t.Errorf("Service clusterIP = %q, want the pinned 10.96.0.53", got)
				}
			},
		},
		{
			name:   "hard anti-affinity, three replicas, minAvailable",
			values: peerdnsValueSets["hard anti-affinity, three replicas, minAvailable"],
			check: func(t *testing.T, r *rendered) {
				dep := only(t, "Deployment", r.deployments)
				if *dep.Spec.Replicas != 3 {
					t.Errorf("replicas = %d, want 3", *dep.Spec.Replicas)
				}
				aff := dep.Spec.Template.Spec.Affinity
				if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 ||
					len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 0 {
					t.Errorf("want exactly one required anti-affinity term; got %+v", aff)
				}
				pdb := only(t, "PodDisruptionBudget", r.pdbs)
				if pdb.Spec.MaxUnavailable != nil || pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(2) {
					t.Errorf("PodDisruptionBudget: want minAvailable 2 alone; got max %v min %v", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
				}
			},
		},
		{
			name:   "affinity replaces the anti-affinity rule",
			values: `affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: dns, operator: Exists}]}]}}}`,
			check: func(t *testing.T, r *rendered) {
				aff := only(t, "Deployment", r.deployments).Spec.Template.Spec.Affinity
				if aff == nil || aff.NodeAffinity == nil || aff.PodAntiAffinity != nil {
					t.Errorf("want the given node affinity and no pod anti-affinity; got %+v", aff)
				}
			},
		},
		{
			name:   "zone transfers: flags, and the key's Secret mounted",
			values: peerdnsValueSets["zone transfers with a TSIG key"],
			check: func(t *testing.T, r *rendered) {
				c := peerdnsContainer(t, r)
				var got []string
				for _, a := range c.Args {
					if strings.HasPrefix(a, "--dns.transfer.") {
						got = append(got, a)
					}
				}
				want := []string{
					"--dns.transfer.allow=192.0.2.0/28", "--dns.transfer.allow=2001:db8::/64",
					"--dns.transfer.notify=192.0.2.5", "--dns.transfer.notify=[2001:db8::5]:5353",
					"--dns.transfer.tsig-key=/etc/peerdns/transfer/tsig.key",
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("transfer flags (-want +got):\n%s", diff)
				}
				spec := only(t, "Deployment", r.deployments).Spec.Template.Spec
				if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/peerdns/transfer" ||
					len(spec.Volumes) != 1 || spec.Volumes[0].Secret == nil || spec.Volumes[0].Secret.SecretName != "xfr-key" {
					t.Errorf("want the Secret xfr-key mounted at /etc/peerdns/transfer; mounts %+v, volumes %+v", c.VolumeMounts, spec.Volumes)
				}
			},
		},
		{
			name:   "no anti-affinity",
			values: `podAntiAffinity: none`,
			check: func(t *testing.T, r *rendered) {
				if aff := only(t, "Deployment", r.deployments).Spec.Template.Spec.Affinity; aff != nil {
					t.Errorf("affinity = %+v, want none", aff)
				}
			},
		},
		{
			name:   "monitoring",
			values: peerdnsValueSets["monitoring"],
			check: func(t *testing.T, r *rendered) {
				sm := only(t, "ServiceMonitor", r.serviceMonitors)
				meta, _ := sm["metadata"].(map[string]any)
				smLabels, _ := meta["labels"].(map[string]any)
				if smLabels["release"] != "prom" {
					t.Errorf("ServiceMonitor labels %v lack release=prom", smLabels)
				}
				spec, _ := sm["spec"].(map[string]any)
				endpoints, _ := spec["endpoints"].([]any)
				if len(endpoints) != 1 {
					t.Fatalf("ServiceMonitor endpoints = %v, want one", endpoints)
				}
				ep, _ := endpoints[0].(map[string]any)
				if ep["port"] != "metrics" || ep["path"] != "/metrics" || ep["scrapeTimeout"] != "10s" {
					t.Errorf("ServiceMonitor endpoint = %v, want port metrics, path /metrics, scrapeTimeout 10s", ep)
				}
				sel, _ := spec["selector"].(map[string]any)
				match, _ := sel["matchLabels"].(map[string]any)
				svc := only(t, "Service", r.services)
				for k, v := range match {
					if svc.Labels[k] != v {
						t.Errorf("ServiceMonitor selects %s=%v; the Service has %q", k, v, svc.Labels[k])
					}
				}
			},
		},
		{
			name:   "existing service account, no RBAC",
			values: peerdnsValueSets["existing service account, no RBAC"],
			check: func(t *testing.T, r *rendered) {
				if n := len(r.serviceAccounts) + len(r.clusterRoles) + len(r.clusterRoleBindings); n != 0 {
					t.Errorf("rendered %d ServiceAccounts and RBAC objects, want none", n)
				}
				if got := only(t, "Deployment", r.deployments).Spec.Template.Spec.ServiceAccountName; got != "dns-reader" {
					t.Errorf("serviceAccountName = %q, want dns-reader", got)
				}
			},
		},
		{
			name:   "one namespace, granted there only",
			values: peerdnsValueSets["one namespace"],
			check: func(t *testing.T, r *rendered) {
				if n := len(r.clusterRoles) + len(r.clusterRoleBindings); n != 0 {
					t.Errorf("rendered %d cluster-wide RBAC objects for a one-namespace watch", n)
				}
				if m := missingArgs(peerdnsContainer(t, r).Args, "--kube.namespace=db"); m != nil {
					t.Errorf("args lack %q", m)
				}
				role := only(t, "Role", r.roles)
				if diff := cmp.Diff(endpointSliceReader, role.Rules); diff != "" || role.Namespace != "db" {
					t.Errorf("Role in %q, want db; rules (-want +got):\n%s", role.Namespace, diff)
				}
				binding := only(t, "RoleBinding", r.roleBindings)
				sa := only(t, "Deployment", r.deployments).Spec.Template.Spec.ServiceAccountName
				want := rbacv1.RoleBinding{
					RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
					Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: releaseNamespace}},
				}
				if binding.Namespace != "db" || !cmp.Equal(want.RoleRef, binding.RoleRef) || !cmp.Equal(want.Subjects, binding.Subjects) {
					t.Errorf("RoleBinding in %q binds %+v to %+v; want in db, %+v to %+v", binding.Namespace, binding.RoleRef, binding.Subjects, want.RoleRef, want.Subjects)
				}
			},
		},
		{
			name:   "read services, granted list and watch on them",
			values: peerdnsValueSets["read services"],
			check: func(t *testing.T, r *rendered) {
				if m := missingArgs(peerdnsContainer(t, r).Args, "--kube.read-services"); m != nil {
					t.Errorf("args lack %q", m)
				}
				want := append(slices.Clone(endpointSliceReader), rbacv1.PolicyRule{
					APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"},
				})
				if diff := cmp.Diff(want, only(t, "ClusterRole", r.clusterRoles).Rules); diff != "" {
					t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:   "max staleness",
			values: peerdnsValueSets["max staleness"],
			check: func(t *testing.T, r *rendered) {
				if m := missingArgs(peerdnsContainer(t, r).Args, "--kube.max-staleness=30s"); m != nil {
					t.Errorf("args lack %q", m)
				}
			},
		},
		{
			name:   "existing service account, chart RBAC",
			values: `serviceAccount: {create: false, name: dns-reader}`,
			check: func(t *testing.T, r *rendered) {
				if n := len(r.serviceAccounts); n != 0 {
					t.Errorf("rendered %d ServiceAccounts, want none", n)
				}
				checkRBAC(t, r, only(t, "Deployment", r.deployments), releaseNamespace)
			},
		},
		{
			name:   "longer lame duck, derived grace period",
			values: `dns: {lameDuckSeconds: 20}`,
			check: func(t *testing.T, r *rendered) {
				dep := only(t, "Deployment", r.deployments)
				if m := missingArgs(peerdnsContainer(t, r).Args, "--dns.lame-duck=20s"); m != nil {
					t.Errorf("args lack %q", m)
				}
				if got := *dep.Spec.Template.Spec.TerminationGracePeriodSeconds; got != 30 {
					t.Errorf("terminationGracePeriodSeconds = %d, want 30", got)
				}
			},
		},
		{
			name:   "explicit grace period",
			values: `terminationGracePeriodSeconds: 60`,
			check: func(t *testing.T, r *rendered) {
				if got := *only(t, "Deployment", r.deployments).Spec.Template.Spec.TerminationGracePeriodSeconds; got != 60 {
					t.Errorf("terminationGracePeriodSeconds = %d, want 60", got)
				}
			},
		},
		{
			name:   "ports, extra args and image digest",
			values: "dns: {containerPort: 10053}\nweb: {containerPort: 9999}\nservice: {port: 5353}\nextraArgs: [--log.level=debug]\nimage: {digest: sha256:" + strings.Repeat("ab", 32) + "}\n",
			check: func(t *testing.T, r *rendered) {
				c := peerdnsContainer(t, r)
				if m := missingArgs(c.Args, "--dns.listen-address=:10053", "--web.listen-address=:9999"); m != nil {
					t.Errorf("args %q lack %q", c.Args, m)
				}
				if last := c.Args[len(c.Args)-1]; last != "--log.level=debug" {
					t.Errorf("last arg = %q, want the extra arg after the chart's own", last)
				}
				if want := "ghcr.io/peerdns/peerdns@sha256:" + strings.Repeat("ab", 32); c.Image != want {
					t.Errorf("image = %q, want %q", c.Image, want)
				}
				for _, p := range c.Ports {
					want := map[string]int32{"dns-udp": 10053, "dns-tcp": 10053, "metrics": 9999}[p.Name]
					if p.ContainerPort != want {
						t.Errorf("container port %s = %d, want %d", p.Name, p.ContainerPort, want)
					}
				}
				checkServicePorts(t, only(t, "Service", r.services), c, map[corev1.Protocol]int32{corev1.ProtocolUDP: 5353, corev1.ProtocolTCP: 5353})
			},
		},
		{
			name:   "no PodDisruptionBudget",
			values: `podDisruptionBudget: {enabled: false}`,
			check: func(t *testing.T, r *rendered) {
				if n := len(r.pdbs); n != 0 {
					t.Errorf("rendered %d PodDisruptionBudgets, want none", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, render(t, peerdnsChart, tt.values))
		})
	}
}

func peerdnsContainer(t *testing.T, r *rendered) corev1.Container {
	t.Helper()
	return container(t, only(t, "Deployment", r.deployments).Spec.Template.Spec, "peerdns")
}

// TestPeerdnsRejects checks that bad values stop helm before anything reaches
// a cluster: the schema for types and names, the templates for what the
// schema cannot express.
func TestPeerdnsRejects(t *testing.T) {
	tests := []struct {
		name   string
		values string
		wants  []string
	}{
		{"replica count as a word", `replicaCount: "two"`, []string{"replicaCount"}},
		{"unknown top-level value", `replicas: 2`, []string{"replicas", "not allowed"}},
		{"unknown nested value", `dns: {port: 53}`, []string{"port", "not allowed"}},
		{"no zones", `zones: []`, []string{"zones"}},
		{"zone with a space", `zones: ["peers internal."]`, []string{"zones"}},
		{"privileged service port 0", `service: {port: 0}`, []string{"port"}},
		{"extra arg that is not a flag", `extraArgs: [debug]`, []string{"extraArgs"}},
		{"negative max staleness", `maxStalenessSeconds: -1`, []string{"maxStalenessSeconds"}},
		{"max staleness as a duration", `maxStalenessSeconds: 30s`, []string{"maxStalenessSeconds"}},
		{"namespace that is not a name", `watchNamespace: Prod`, []string{"watchNamespace"}},
		{"unknown anti-affinity mode", `podAntiAffinity: maybe`, []string{"podAntiAffinity"}},
		{"grace period inside the lame duck", `terminationGracePeriodSeconds: 5`, []string{"terminationGracePeriodSeconds (5) must be longer than dns.lameDuckSeconds (5)"}},
		{"no service account at all", `serviceAccount: {create: false}`, []string{"serviceAccount.name is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := template(t, peerdnsChart, tt.values)
			wantHelmError(t, err, tt.wants...)
		})
	}
	t.Run("lint fails too", func(t *testing.T) {
		wantHelmError(t, lint(t, peerdnsChart, `replicaCount: "two"`), "replicaCount")
	})
}

func TestPeerdnsNotes(t *testing.T) {
	t.Run("allocated IP", func(t *testing.T) {
		notes := renderNotes(t, peerdnsChart, "")
		for _, want := range []string{
			"    peerdns.internal:53 {\n        errors\n        forward . <CLUSTER-IP>:53\n    }\n",
			"kubectl -n " + releaseNamespace + " get service r-peerdns -o jsonpath='{.spec.clusterIP}'",
			"dig SRV nginx.default.svc.peerdns.internal",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
			}
		}
	})
	t.Run("monitoring", func(t *testing.T) {
		notes := renderNotes(t, peerdnsChart, peerdnsValueSets["monitoring"])
		for _, want := range []string{
			"ServiceMonitor " + releaseNamespace + "/r-peerdns scrapes the metrics port.",
			"PrometheusRule " + releaseNamespace + "/r-peerdns holds the peerdns alerts",
			"ConfigMap monitoring/r-peerdns-dashboard holds the Grafana dashboard.",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
			}
		}
	})
	t.Run("pinned IP, several zones", func(t *testing.T) {
		notes := renderNotes(t, peerdnsChart, peerdnsValueSets["several zones and a pinned IP"])
		for _, zone := range []string{"peerdns.internal", "example.org", "250.10.in-addr.arpa"} {
			want := "    " + zone + ":53 {\n        errors\n        forward . 10.96.0.53:53\n    }\n"
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES.txt lacks the block for %s:\n%s", zone, notes)
			}
		}
		if strings.Contains(notes, "<CLUSTER-IP>") {
			t.Errorf("NOTES.txt still tells how to find the IP although it is pinned:\n%s", notes)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// lameDuckSeconds reads the --dns.lame-duck flag's seconds back from args.
func lameDuckSeconds(t *testing.T, args []string) int64 {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--dns.lame-duck="); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(v, "s"), 10, 64)
			if err != nil {
				t.Fatalf("--dns.lame-duck=%s: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no --dns.lame-duck flag")
	return 0
}
