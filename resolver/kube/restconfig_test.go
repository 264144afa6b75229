package kube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/version"
	"k8s.io/apimachinery/pkg/runtime"
)

// writeKubeconfig writes a kubeconfig whose only cluster is server.
func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: secret
contexts:
- name: ctx
  context:
    cluster: c
    user: u
current-context: ctx
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// notInCluster makes rest.InClusterConfig report that this is no pod.
func notInCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
}

func TestRESTConfig(t *testing.T) {
	dir := t.TempDir()
	explicit := filepath.Join(dir, "explicit")
	fromEnv := filepath.Join(dir, "env")
	writeKubeconfig(t, explicit, "https://127.0.0.1:1001")
	writeKubeconfig(t, fromEnv, "https://127.0.0.1:1002")
	notInCluster(t)

	tests := []struct {
		name       string
		kubeconfig string
		env        string // $KUBECONFIG
		wantHost   string
		wantErr    string
	}{
		{name: "explicit path", kubeconfig: explicit, env: fromEnv, wantHost: "https://127.0.0.1:1001"},
		{name: "empty uses $KUBECONFIG outside a pod", env: fromEnv, wantHost: "https://127.0.0.1:1002"},
		{name: "missing explicit file", kubeconfig: filepath.Join(dir, "missing"), wantErr: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tt.env)
			cfg, err := RESTConfig(tt.kubeconfig)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RESTConfig error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tt.wantHost {
				t.Errorf("Host = %q, want %q", cfg.Host, tt.wantHost)
			}
			if cfg.ContentType != runtime.ContentTypeProtobuf {
				t.Errorf("ContentType = %q, want protobuf", cfg.ContentType)
			}
			if want := "peerdns/" + version.Version; cfg.UserAgent != want {
				t.Errorf("UserAgent = %q, want %q", cfg.UserAgent, want)
			}
		})
	}
}

// TestRESTConfigHome checks the ~/.kube/config fallback and the error when
// nothing is configured. client-go reads $HOME once, when it starts, so each
// case runs this test binary again with its own $HOME.
func TestRESTConfigHome(t *testing.T) {
	if os.Getenv("PEERDNS_RESTCONFIG_CHILD") == "1" {
		cfg, err := RESTConfig("")
		if err != nil {
			fmt.Printf("error: %v\n", err)
			return
		}
		fmt.Printf("host: %s\n", cfg.Host)
		return
	}
	withConfig := t.TempDir()
	writeKubeconfig(t, filepath.Join(withConfig, ".kube", "config"), "https://127.0.0.1:1003")
	tests := []struct {
		name string
		home string
		want string
	}{
		{name: "home config", home: withConfig, want: "host: https://127.0.0.1:1003"},
		{name: "nothing configured", home: t.TempDir(), want: "error: no Kubernetes configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRESTConfigHome$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				"PEERDNS_RESTCONFIG_CHILD=1", "HOME="+tt.home, "KUBECONFIG=",
				"KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("child output:\n%s\nwant a line starting %q", out, tt.want)
			}
		})
	}
}
