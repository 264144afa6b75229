// Package image_test builds the images as `make image` does, checks what
// they are (reproducible, small, non-root, labelled, with an SBOM each, and
// nothing inside but the binary, users and CA bundle), then loads them into
// podman and runs them: both print their version, and peerdns in a
// container answers dig from a real API server's EndpointSlices.
package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/ociimage"
	"github.com/peerdns/peerdns/internal/testtools"
)

// maxCompressed bounds each image's compressed size (manifest, config and
// layers) per platform: the bounds issue 10 set, and for peeragent 10 MB
// since it watches its StatefulSet with client-go (issue 16): about 8.9 MB
// with the one-resource client of internal/kubeclient, where client-go's
// generated clientset made it 14.9 MB.
var maxCompressed = map[string]int64{
	"peerdns":   12_000_000,
	"peeragent": 10_000_000,
}

// wantFiles is everything an image holds besides its directories.
func wantFiles(program string) []string {
	return []string{"etc/group", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "usr/local/bin/" + program}
}

// build is one `make image` into its own DIST.
type build struct {
	dir     string // DIST
	version string
	digests map[string]string // image reference (repo:tag) → index digest
}

func makeImage(t *testing.T, root, dist string) build {
	t.Helper()
	mk := testtools.Path(t, "make")
	cmd := exec.Command(mk, "-C", root, "--no-print-directory", "image", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	out, err := exec.Command(mk, "-C", root, "--no-print-directory", "-s", "version").Output()
	if err != nil {
		t.Fatalf("make version: %v", err)
	}
	b := build{dir: dist, version: strings.TrimSpace(string(out)), digests: map[string]string{}}
	raw, err := os.ReadFile(filepath.Join(dist, "image", "digests.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		ref, digest, ok := strings.Cut(strings.TrimSpace(line), "@")
		if !ok {
			t.Fatalf("digests.txt line %q: want <ref>@<digest>", line)
		}
		b.digests[ref] = digest
	}
	return b
}

func (b build) ref(program string) string { return "ghcr.io/peerdns/" + program + ":" + b.version }

func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the images (make image); skipped with -short")
	}
	root, err := testtools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	first := makeImage(t, root, t.TempDir())

	t.Run("reproducible", func(t *testing.T) {
		second := makeImage(t, root, t.TempDir())
		if diff := cmp.Diff(first.digests, second.digests); diff != "" {
			t.Errorf("two builds of one commit give different digests (-first +second):\n%s", diff)
		}
		for _, f := range []string{"images.oci.tar", "images-linux-amd64.tar", "images-linux-arm64.tar"} {
			a, errA := os.ReadFile(filepath.Join(first.dir, "image", f))
			b, errB := os.ReadFile(filepath.Join(second.dir, "image", f))
			if err := errors.Join(errA, errB); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs between two builds", f)
			}
		}
	})

	p := layout.Path(filepath.Join(first.dir, "image", "oci"))
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	revision, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, program := range []string{"peerdns", "peeragent"} {
		t.Run(program, func(t *testing.T) {
			ref := first.ref(program)
			var idxDesc *v1.Descriptor
			for i, d := range topManifest.Manifests {
				if d.Annotations[ociimage.RefNameAnnotation] == ref {
					idxDesc = &topManifest.Manifests[i]
				}
			}
			if idxDesc == nil || idxDesc.Digest.String() != first.digests[ref] {
				t.Fatalf("OCI layout has no index %s@%s", ref, first.digests[ref])
			}
			idx, err := top.ImageIndex(idxDesc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var platforms []string
			for _, d := range im.Manifests {
				platforms = append(platforms, d.Platform.String())
			}
			if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64/v8"}, platforms); diff != "" {
				t.Errorf("index platforms (-want +got):\n%s", diff)
			}
			for _, d := range im.Manifests {
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				t.Run(d.Platform.String(), func(t *testing.T) {
					checkImage(t, img, program, first.version, strings.TrimSpace(string(revision)))
					checkSBOM(t, p, topManifest, d, program, first.version)
				})
			}
		})
	}

	t.Run("podman", func(t *testing.T) {
		runUnderPodman(t, first)
	})
}

// checkImage checks one platform image: size, config, labels and files.
func checkImage(t *testing.T, img v1.Image, program, version, revision string) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	size += int64(len(raw))
	t.Logf("%s: %d bytes compressed", program, size)
	if size > maxCompressed[program] {
		t.Errorf("compressed size %d bytes, want at most %d", size, maxCompressed[program])
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	epoch, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil { // go test by hand: what the Makefile takes
		out, gitErr := exec.Command("git", "log", "-1", "--format=%ct").Output()
		if gitErr != nil {
			t.Fatal(gitErr)
		}
		epoch, _ = strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	}
	type view struct {
		User       string
		Entrypoint []string
		Created    time.Time
		Labels     map[string]string
	}
	got := view{cf.Config.User, cf.Config.Entrypoint, cf.Created.UTC(), map[string]string{}}
	for _, k := range []string{"source", "revision", "version", "licenses"} {
		k = "org.opencontainers.image." + k
		got.Labels[k] = cf.Config.Labels[k]
		if m.Annotations[k] != cf.Config.Labels[k] {
			t.Errorf("manifest annotation %s=%q, label %q: want them equal", k, m.Annotations[k], cf.Config.Labels[k])
		}
	}
	want := view{
		User:       "65532:65532",
		Entrypoint: []string{"/usr/local/bin/" + program},
		Created:    time.Unix(epoch, 0).UTC(),
		Labels: map[string]string{
			"org.opencontainers.image.source":   "https://github.com/peerdns/peerdns",
			"org.opencontainers.image.revision": revision,
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image config (-want +got):\n%s", diff)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeDir {
				files = append(files, h.Name)
			}
		}
		rc.Close()
	}
	slices.Sort(files)
	if diff := cmp.Diff(wantFiles(program), files); diff != "" {
		t.Errorf("files in the image (-want +got):\n%s", diff)
	}
}

// checkSBOM finds the SPDX artifact whose subject is the platform image d
// and checks it describes the program at the version, with its modules.
func checkSBOM(t *testing.T, p layout.Path, top *v1.IndexManifest, d v1.Descriptor, program, version string) {
	t.Helper()
	var found []v1.Descriptor
	for _, e := range top.Manifests {
		if e.ArtifactType != "application/spdx+json" {
			continue
		}
		art, err := p.Image(e.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := art.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != nil && m.Subject.Digest == d.Digest {
			found = append(found, m.Layers...)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d SPDX artifacts refer to %s, want 1", len(found), d.Digest)
	}
	rc, err := os.Open(filepath.Join(string(p), "blobs", "sha256", found[0].Digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var doc struct {
		SPDXVersion string
		Packages    []struct{ Name, VersionInfo string }
	}
	if err := json.NewDecoder(rc).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	modules := map[string]string{}
	for _, pk := range doc.Packages {
		modules[pk.Name] = pk.VersionInfo
	}
	dep := map[string]string{"peerdns": "github.com/miekg/dns", "peeragent": "github.com/hashicorp/memberlist"}[program]
	if doc.SPDXVersion != "SPDX-2.3" || modules[program] != version || modules[dep] == "" || modules["stdlib"] != runtime.Version() {
		t.Errorf("SBOM: %s, %s at %q, %s at %q, stdlib at %q; want SPDX-2.3, %s, a version of %s, %s",
			doc.SPDXVersion, program, modules[program], dep, modules[dep], modules["stdlib"], version, dep, runtime.Version())
	}
}

// podman runs podman with its own storage under dir, so the test neither
// sees nor touches the machine's images and removes everything by removing
// dir. runc and cgroupfs: crun refuses these hosts' cgroup layout.
type podman struct {
	bin, runc, dir string
}

func (p podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{
		"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"), "--storage-driver", "vfs",
		"--runtime", p.runc, "--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}
	return exec.CommandContext(ctx, p.bin, append(base, args...)...)
}

func (p podman) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := p.cmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// runOpts are podman run's options for every container here: podman's
// default rlimits exceed these hosts' hard limits.
var runOpts = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

func runUnderPodman(t *testing.T, b build) {
	pm := podman{bin: testtools.Path(t, "podman"), runc: testtools.Path(t, "runc")}
	dir, err := os.MkdirTemp("", "peerdns-podman-")
	if err != nil {
		t.Fatal(err)
	}
	pm.dir = dir
	t.Cleanup(func() {
		// Containers first (run --rm and rm -f remove them), then the
		// images and the storage itself.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := pm.cmd(ctx, "system", "reset", "--force").CombinedOutput(); err != nil {
			t.Errorf("podman system reset: %v\n%s", err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})

	archive := filepath.Join(b.dir, "image", "images-linux-"+runtime.GOARCH+".tar")
	out := pm.run(t, "load", "--input", archive)
	for _, program := range []string{"peerdns", "peeragent"} {
		if !strings.Contains(out, b.ref(program)) {
			t.Fatalf("podman load did not load %s:\n%s", b.ref(program), out)
		}
	}

	// Whether this machine lets podman run containers at all (a container
	// without privileges may not): skip, or fail under PEERDNS_REQUIRE_TOOLS.
	probe := append(append([]string{"run", "--rm", "--network", "none"}, runOpts...), b.ref("peeragent"), "--version")
	if out, err := pm.cmd(t.Context(), probe...).CombinedOutput(); err != nil {
		testtools.Missing(t, "podman cannot run containers here: podman %s: %v\n%s", strings.Join(probe, " "), err, out)
	}

	for _, program := range []string{"peerdns", "peeragent"} {
		t.Run(program+" --version", func(t *testing.T) {
			args := append(append([]string{"run", "--rm", "--network", "none"}, runOpts...), b.ref(program), "--version")
			out := pm.run(t, args...)
			if !strings.Contains(out, b.version) {
				t.Errorf("%s --version printed %q, want it to name %s", program, out, b.version)
			}
		})
	}

	t.Run("peerdns answers dig", func(t *testing.T) {
		servePeerDNS(t, pm, b)
	})
}

// servePeerDNS runs the peerdns image against a real API server, with a
// service account that may only list and watch EndpointSlices, on the host's
// loopback (--network host), and asks it with dig.
func servePeerDNS(t *testing.T, pm podman, b build) {
	dig := testtools.Path(t, "dig")
	cp := controlplane.StartT(t, controlplane.Options{})
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	const ns = "image-test"
	sa, err := cp.ServiceAccountConfig(ctx, ns, "peerdns", []rbacv1.PolicyRule{{
		APIGroups: []string{discoveryv1.GroupName},
		Resources: []string{"endpointslices"},
		Verbs:     []string{"list", "watch"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	kdir := t.TempDir()
	kubeconfig := filepath.Join(kdir, "kubeconfig")
	if err := cp.WriteKubeconfig(sa, kubeconfig); err != nil {
		t.Fatal(err)
	}
	// The container runs as 65532: let it read the file (a test token).
	if err := os.Chmod(kubeconfig, 0o644); err != nil {
		t.Fatal(err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nginx"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
	}
	if _, err := admin.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ready, hostname := true, "web-0"
	portName, proto, port := "web", corev1.ProtocolTCP, int32(80)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nginx-1", Labels: map[string]string{
			discoveryv1.LabelServiceName:     "nginx",
			"service.kubernetes.io/headless": "",
			discoveryv1.LabelManagedBy:       "peerdns-tests",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.1.0.1"}, Hostname: &hostname,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
	}
	if _, err := admin.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	dnsPort := testtools.FreePort(t, "127.0.0.1")
	webPort := testtools.FreePort(t, "127.0.0.1")
	name := fmt.Sprintf("peerdns-image-test-%d", os.Getpid())
	args := append(append([]string{"run", "--detach", "--name", name, "--network", "host",
		"--volume", kubeconfig + ":/etc/peerdns/kubeconfig:ro"}, runOpts...),
		b.ref("peerdns"),
		"--kubeconfig=/etc/peerdns/kubeconfig",
		"--dns.listen-address=127.0.0.1:"+strconv.Itoa(dnsPort),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(webPort),
		"--dns.zone=cluster.local.",
		"--dns.lame-duck=0s")
	pm.run(t, args...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			logs, _ := pm.cmd(ctx, "logs", name).CombinedOutput()
			t.Logf("peerdns container log:\n%s", logs)
		}
		// stop, then rm: rm --force races its own SIGKILL with the
		// container's exit and reports "container state improper".
		if out, err := pm.cmd(ctx, "stop", "--time", "10", name).CombinedOutput(); err != nil {
			t.Errorf("podman stop: %v\n%s", err, out)
		}
		if out, err := pm.cmd(ctx, "rm", name).CombinedOutput(); err != nil {
			t.Errorf("podman rm: %v\n%s", err, out)
		}
	})

	q := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, dig, append([]string{"@127.0.0.1", "-p", strconv.Itoa(dnsPort), "+time=1", "+tries=1", "+short"}, args...)...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	testtools.Eventually(t, "peerdns in the container answers", time.Minute, func() error {
		out, err := q("A", "web-0.nginx."+ns+".svc.cluster.local")
		if err != nil {
			return fmt.Errorf("dig: %w: %s", err, out)
		}
		if out != "10.1.0.1" {
			return fmt.Errorf("dig A web-0.nginx.%s.svc.cluster.local: %q, want 10.1.0.1", ns, out)
		}
		return nil
	})
	srv := "_web._tcp.nginx." + ns + ".svc.cluster.local"
	if out, err := q("SRV", srv); err != nil || out != "0 100 80 web-0.nginx."+ns+".svc.cluster.local." {
		t.Errorf("dig SRV %s: %q (%v), want 0 100 80 web-0.nginx.%s.svc.cluster.local.", srv, out, err, ns)
	}
}
