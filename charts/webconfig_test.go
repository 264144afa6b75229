package charts_test

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"golang.org/x/crypto/bcrypt"

	"github.com/peerdns/peerdns/internal/testtools"
)

// webConfigModes are the two ways a web configuration changes what the
// probes must do: TLS (scheme HTTPS) and basic auth (an Authorization header).
var webConfigModes = []struct {
	name string
	tls  bool
	// values for both charts, besides what each needs to render a pod.
	values string
}{
	{name: "TLS", tls: true, values: `
webConfig: {secretName: web-tls, tls: true}
`},
	{name: "basic auth", values: `
webConfig:
  secretName: web-auth
  key: web.yml
  probeHeaders: [{name: Authorization, value: "Basic ` + base64.StdEncoding.EncodeToString([]byte("probe:s3cret")) + `"}]
`},
}

// webSetup is what a test needs to run a chart's container with its web
// configuration: the rendered container, the Secret it mounts, and where.
type webSetup struct {
	program   string
	container corev1.Container
	volumes   []corev1.Volume
	mountDir  string // where the chart mounts the web configuration Secret
	monitor   map[string]any
}

func peerdnsWebSetup(t *testing.T, values string) webSetup {
	t.Helper()
	r := render(t, peerdnsChart, values+"serviceMonitor: {enabled: true}\n")
	dep := only(t, "Deployment", r.deployments)
	return webSetup{
		program:   "peerdns",
		container: container(t, dep.Spec.Template.Spec, "peerdns"),
		volumes:   dep.Spec.Template.Spec.Volumes,
		mountDir:  "/etc/peerdns/web-config",
		monitor:   endpointOf(t, only(t, "ServiceMonitor", r.serviceMonitors), "endpoints"),
	}
}

func peeragentWebSetup(t *testing.T, values string) webSetup {
	t.Helper()
	// The agent looks its peers up at a closed loopback port: the test sends
	// no DNS query off the machine.
	r := render(t, peeragentChart, values+"example: {enabled: true}\ngossipKeys: {enabled: false}\npodMonitor: {enabled: true}\npeers: {dnsServer: \"127.0.0.1:9\"}\ncluster: {source: flag}\n")
	sts := only(t, "StatefulSet", r.statefulSets)
	return webSetup{
		program:   "peeragent",
		container: sts.Spec.Template.Spec.InitContainers[0],
		volumes:   sts.Spec.Template.Spec.Volumes,
		mountDir:  "/etc/peeragent/web-config",
		monitor:   endpointOf(t, only(t, "PodMonitor", r.podMonitors), "podMetricsEndpoints"),
	}
}

// endpointOf returns the only scrape endpoint of a ServiceMonitor or PodMonitor.
func endpointOf(t *testing.T, monitor map[string]any, field string) map[string]any {
	t.Helper()
	spec, _ := monitor["spec"].(map[string]any)
	eps, _ := spec[field].([]any)
	if len(eps) != 1 {
		t.Fatalf("%s = %v, want one endpoint", field, eps)
	}
	ep, _ := eps[0].(map[string]any)
	return ep
}

// TestWebConfigOff: by default neither chart passes --web.config.file, mounts
// a web configuration, or changes the probes' scheme.
func TestWebConfigOff(t *testing.T) {
	for _, setup := range []func(*testing.T, string) webSetup{peerdnsWebSetup, peeragentWebSetup} {
		s := setup(t, "")
		t.Run(s.program, func(t *testing.T) {
			for _, a := range s.container.Args {
				if strings.HasPrefix(a, "--web.config.file") {
					t.Errorf("arg %q without webConfig.secretName", a)
				}
			}
			for _, m := range s.container.VolumeMounts {
				if m.MountPath == s.mountDir {
					t.Errorf("volume mount %+v without webConfig.secretName", m)
				}
			}
			for name, p := range probes(s.container) {
				if p.HTTPGet.Scheme != "" || len(p.HTTPGet.HTTPHeaders) != 0 {
					t.Errorf("%s probe %+v: want plain HTTP without headers", name, p.HTTPGet)
				}
			}
			if _, ok := s.monitor["scheme"]; ok {
				t.Errorf("monitor endpoint %v sets a scheme", s.monitor)
			}
		})
	}
}

// TestWebConfigProbes runs each program as its chart renders it, with the web
// configuration Secret's files where the chart mounts them, and sends every
// rendered httpGet probe the way the kubelet does (its scheme and headers,
// no certificate verification): TLS and basic auth must let every probe
// through, and liveness must pass. Without the chart's headers, basic auth
// refuses the probe, which is why webConfig.probeHeaders exists.
func TestWebConfigProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/peerdns and cmd/peeragent; skipped with -short")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "./cmd/peerdns", "./cmd/peeragent")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, mode := range webConfigModes {
		for _, setup := range []func(*testing.T, string) webSetup{peerdnsWebSetup, peeragentWebSetup} {
			s := setup(t, mode.values)
			t.Run(s.program+" "+mode.name, func(t *testing.T) {
				checkWebConfigRendered(t, s, mode.tls)
				runWithWebConfig(t, bin, s, mode.tls)
			})
		}
	}
}

// probes returns the container's httpGet probes by kind.
func probes(c corev1.Container) map[string]*corev1.Probe {
	out := map[string]*corev1.Probe{}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p != nil && p.HTTPGet != nil {
			out[name] = p
		}
	}
	return out
}

// checkWebConfigRendered checks the flag, the mount of the Secret, the
// probes' scheme and the monitor's scheme.
func checkWebConfigRendered(t *testing.T, s webSetup, wantTLS bool) {
	t.Helper()
	var file string
	for _, a := range s.container.Args {
		if v, ok := strings.CutPrefix(a, "--web.config.file="); ok {
			file = v
		}
	}
	if filepath.Dir(file) != s.mountDir {
		t.Errorf("--web.config.file=%q, want a file in %s", file, s.mountDir)
	}
	var volume string
	for _, m := range s.container.VolumeMounts {
		if m.MountPath == s.mountDir && m.ReadOnly && m.SubPath == "" {
			volume = m.Name
		}
	}
	var secret string
	for _, v := range s.volumes {
		if v.Name == volume && v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if secret == "" {
		t.Errorf("no Secret volume mounted whole and read-only at %s: mounts %+v, volumes %+v", s.mountDir, s.container.VolumeMounts, s.volumes)
	}
	want := corev1.URIScheme("")
	if wantTLS {
		want = corev1.URISchemeHTTPS
	}
	ps := probes(s.container)
	if len(ps) == 0 {
		t.Error("no httpGet probe")
	}
	for name, p := range ps {
		if p.HTTPGet.Scheme != want {
			t.Errorf("%s probe scheme %q, want %q", name, p.HTTPGet.Scheme, want)
		}
	}
	wantScheme := map[bool]any{true: "https", false: nil}[wantTLS]
	if diff := cmp.Diff(wantScheme, s.monitor["scheme"]); diff != "" {
		t.Errorf("monitor endpoint scheme (-want +got):\n%s", diff)
	}
}

// runWithWebConfig starts the program with the container's args, its
// listeners moved to loopback and the mount directory replaced by a
// temporary one holding a matching web configuration, then probes it.
func runWithWebConfig(t *testing.T, bin string, s webSetup, withTLS bool) {
	t.Helper()
	dir := t.TempDir()
	var webFile string
	for _, a := range s.container.Args {
		if v, ok := strings.CutPrefix(a, "--web.config.file="); ok {
			webFile = filepath.Join(dir, filepath.Base(v))
		}
	}
	if webFile == "" {
		t.Fatal("no --web.config.file")
	}
	var cfg string
	if withTLS {
		testtools.SelfSigned(t, dir)
		cfg = "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
	} else {
		hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		cfg = "basic_auth_users:\n  probe: " + string(hash) + "\n"
	}
	if err := os.WriteFile(webFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	webPort := testtools.FreePort(t, "127.0.0.1")
	loopback := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	expand := strings.NewReplacer("$(POD_NAME)", "web-0", "$(POD_IP)", "127.0.0.1", "$(POD_NAMESPACE)", releaseNamespace, s.mountDir, dir)
	var args []string
	for _, a := range s.container.Args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--web.listen-address":
			a = name + "=" + loopback(webPort)
		case "--dns.listen-address", "--gossip.listen-address":
			a = name + "=" + loopback(testtools.FreePort(t, "127.0.0.1"))
		}
		args = append(args, expand.Replace(a))
	}
	cmd := exec.Command(filepath.Join(bin, s.program), args...)
	// peerdns's --kubeconfig= outside a pod: $KUBECONFIG, an API server at
	// a closed loopback port. Liveness never depends on it.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT=")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // the kill's "signal: killed"
	})

	// As the kubelet's prober: the probe's scheme and headers, and no
	// certificate verification.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer client.CloseIdleConnections()
	get := func(p *corev1.Probe, withHeaders bool) (int, error) {
		scheme := strings.ToLower(string(p.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		req, err := http.NewRequest(http.MethodGet, scheme+"://"+loopback(webPort)+p.HTTPGet.Path, nil)
		if err != nil {
			return 0, err
		}
		if withHeaders {
			for _, h := range p.HTTPGet.HTTPHeaders {
				req.Header.Add(h.Name, h.Value)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	ps := probes(s.container)
	testtools.Eventually(t, s.program+" liveness probe passing", 30*time.Second, func() error {
		code, err := get(ps["liveness"], true)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("liveness %s: %d", ps["liveness"].HTTPGet.Path, code)
		}
		return nil
	})
	for name, p := range ps {
		// Startup and readiness may fail here (no API server, no peers),
		// but not because of TLS or authentication.
		code, err := get(p, true)
		if err != nil || code == http.StatusUnauthorized {
			t.Errorf("%s probe GET %s: %d %v, want it past TLS and authentication", name, p.HTTPGet.Path, code, err)
		}
		if !withTLS {
			if code, err := get(p, false); err != nil || code != http.StatusUnauthorized {
				t.Errorf("%s probe GET %s without the chart's headers: %d %v, want 401", name, p.HTTPGet.Path, code, err)
			}
		}
	}
}
