// Package release_test checks what a release ships agrees with itself: the
// Makefile's RELEASE, the charts' versions, the changelog and the git tags
// tell one story (and make release refuses a build they contradict); the version scheme gives valid versions; make build's binaries
// are static; and the packaged charts install from a chart repository URL.
package release_test

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testtools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// makefileRelease returns the Makefile's `RELEASE := …`.
func makefileRelease(t *testing.T, root string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RELEASE\s*:=\s*(\S+)\s*$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("Makefile has no `RELEASE := …` line")
	}
	return string(m[1])
}

// semver is SemVer 2.0 with a leading v and no build metadata (image tags
// cannot carry a '+').
var semver = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

func TestVersionsAgree(t *testing.T) {
	root := repoRoot(t)
	release := makefileRelease(t, root)
	if !semver.MatchString(release) || strings.Contains(release, "-") {
		t.Fatalf("Makefile RELEASE %q is not a release version vX.Y.Z", release)
	}
	for _, chart := range []string{"peerdns", "peeragent"} {
		t.Run("chart "+chart, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "charts", chart, "Chart.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var meta struct{ Version, AppVersion string }
			if err := yaml.Unmarshal(raw, &meta); err != nil {
				t.Fatal(err)
			}
			if meta.AppVersion != release || meta.Version != strings.TrimPrefix(release, "v") {
				t.Errorf("Chart.yaml version %q appVersion %q, want %q and %q (the Makefile's RELEASE)", meta.Version, meta.AppVersion, strings.TrimPrefix(release, "v"), release)
			}
		})
	}
	t.Run("version scheme", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(root, "hack", "version.sh"), release).Output()
		if err != nil {
			t.Fatalf("hack/version.sh: %v", err)
		}
		v := strings.TrimSpace(string(out))
		if !semver.MatchString(v) {
			t.Errorf("hack/version.sh prints %q, not SemVer with a v", v)
		}
	})
}

// TestChartRepository packages the charts as `make release` does, serves
// the repository on loopback HTTP and installs both charts from its URL, as
// docs/release.md tells a newcomer to, into a real API server.
func TestChartRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("packages the charts with helm; skipped with -short")
	}
	helm := testtools.Path(t, "helm")
	root := repoRoot(t)
	dist := t.TempDir()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/charts"
	srv := &http.Server{Handler: http.StripPrefix("/charts", http.FileServer(http.Dir(filepath.Join(dist, "release", "charts"))))}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve the chart repository: %v", err)
		}
	})

	// A development version, as a checkout between releases packages.
	const version = "v0.1.0-dev-gtest"
	cmd := exec.Command("go", "run", "./hack/release", "-charts-only", "-dist", dist, "-version", version, "-release", makefileRelease(t, root), "-helm", helm, "-chart-url", url)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/release -charts-only: %v\n%s", err, out)
	}

	index, err := os.ReadFile(filepath.Join(dist, "release", "charts", "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Entries map[string][]struct {
			Version, AppVersion string
			URLs                []string
		}
	}
	if err := yaml.Unmarshal(index, &idx); err != nil {
		t.Fatal(err)
	}
	// Installed for real, into a real API server: what the server says
	// about the objects (kubeVersion, schema, admission) counts, not only
	// helm's rendering.
	cp := controlplane.StartT(t, controlplane.Options{})
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	for _, chart := range []string{"peerdns", "peeragent"} {
		t.Run(chart, func(t *testing.T) {
			e := idx.Entries[chart]
			if len(e) != 1 || e[0].Version != "0.1.0-dev-gtest" || e[0].AppVersion != version || len(e[0].URLs) != 1 || !strings.HasPrefix(e[0].URLs[0], url+"/") {
				t.Fatalf("index.yaml entry for %s: %+v; want version 0.1.0-dev-gtest, appVersion %s, one URL under %s", chart, e, version, url)
			}
			ns := "repo-" + chart
			args := []string{"install", chart, chart, "--repo", url, "--version", "0.1.0-dev-gtest",
				"--namespace", ns, "--create-namespace", "--kubeconfig", cp.Kubeconfig()}
			if chart == "peeragent" {
				// The sidecar is a named template for other charts; its
				// example StatefulSet carries it.
				args = append(args, "--set", "example.enabled=true")
			}
			runHelm(t, helm, home, args...)
			t.Cleanup(func() {
				runHelm(t, helm, home, "uninstall", chart, "--namespace", ns, "--kubeconfig", cp.Kubeconfig(), "--wait")
			})

			want := fmt.Sprintf("ghcr.io/peerdns/%s:%s", chart, version)
			var images []string
			if chart == "peerdns" {
				list, err := admin.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range list.Items {
					for _, c := range d.Spec.Template.Spec.Containers {
						images = append(images, c.Image)
					}
				}
			} else {
				list, err := admin.AppsV1().StatefulSets(ns).List(t.Context(), metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range list.Items {
					for _, c := range s.Spec.Template.Spec.InitContainers {
						images = append(images, c.Image)
					}
				}
			}
			if !slices.Contains(images, want) {
				t.Errorf("installed %s runs images %q, want %s", chart, images, want)
			}
		})
	}
}

func runHelm(t *testing.T, helm, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestBuildIsStatic checks what `make build` wrote to bin/ (make test builds
// it first): static binaries, without cgo, built with -trimpath.
func TestBuildIsStatic(t *testing.T) {
	root := repoRoot(t)
	for _, program := range []string{"peerdns", "peeragent"} {
		t.Run(program, func(t *testing.T) {
			path := filepath.Join(root, "bin", program)
			info, err := buildinfo.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				testtools.Missing(t, "%s not built: run make build", path)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range info.Settings {
				if s.Key == "CGO_ENABLED" || s.Key == "-trimpath" {
					got[s.Key] = s.Value
				}
			}
			if diff := cmp.Diff(map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"}, got); diff != "" {
				t.Errorf("%s build settings (-want +got):\n%s", path, diff)
			}
		})
	}
}
