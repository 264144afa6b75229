package controlplane

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peerdns/peerdns/internal/testtools"
)

// Images of the node, built from this repository and the tools directory
// and imported into its containerd: no registry is reachable, and pods use
// them with imagePullPolicy IfNotPresent or Never.
const (
	// PauseImage holds every pod's namespaces (cmd/pause).
	PauseImage = "localhost/peerdns/pause:node"
	// SeedWebImage stands in for nginx in the seed StatefulSet
	// (cmd/seedweb): it answers HTTP on :80 with the pod's hostname.
	SeedWebImage = "localhost/peerdns/seedweb:node"
	// CoreDNSImage is the cluster DNS: the pinned CoreDNS from ToolsBin.
	CoreDNSImage = "localhost/peerdns/coredns:node"
	// EtcdImageRef is the pinned etcd from ToolsBin, the one the control
	// plane itself runs (ControlPlane.EtcdImage).
	EtcdImageRef = "localhost/peerdns/etcd:node"
	// SRVWaitImage holds a pod's database until an SRV name lists every
	// expected member (cmd/srvwait).
	SRVWaitImage = "localhost/peerdns/srvwait:node"
)

// Image is one single-binary image to import into the node.
type Image struct {
	// Ref names the image, e.g. "localhost/peerdns/seedweb:node".
	Ref string
	// Package is a main package of this repository ("./cmd/peerdns"),
	// built static for the image. Either Package or Binary.
	Package string
	// Version is stamped into a Package's internal/version.Version, as
	// `make build` does; empty leaves the default.
	Version string
	// Binary is a static executable to put in the image instead.
	Binary string
	// Args follow the binary in the image's entrypoint.
	Args []string
	// User runs the process, "uid:gid"; empty means ociimage.NonRoot.
	User string
}

// buildBinary compiles pkg (a path relative to the repository root) as a
// static executable into dir and returns its path.
func buildBinary(ctx context.Context, dir, pkg, version string) (string, error) {
	root, err := testtools.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	if version != "" {
		out += "-" + version
	}
	args := []string{"build", "-trimpath", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/peerdns/peerdns/internal/version.Version="+version)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, b)
	}
	return out, nil
}

// requireStatic fails for an executable that needs a dynamic loader: in an
// image with nothing else, it would not start.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; rebuild it with CGO_ENABLED=0 (`make controlplane` does)", path)
		}
	}
	return nil
}

// LoadImages builds each image (compiling its Package when given) and
// imports them into the node's containerd. It needs Options.Node.
func (cp *ControlPlane) LoadImages(ctx context.Context, images ...Image) error {
	if cp.node == nil {
		return fmt.Errorf("load images: no node (Options.Node)")
	}
	return cp.node.loadImages(ctx, images)
}

func (n *node) loadImages(ctx context.Context, images []Image) error {
	dir := filepath.Join(n.dir, "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	var specs []archiveImage
	for _, im := range images {
		bin := im.Binary
		if im.Package != "" {
			var err error
			if bin, err = buildBinary(ctx, dir, im.Package, im.Version); err != nil {
				return fmt.Errorf("load image %s: %w", im.Ref, err)
			}
		}
		if err := requireStatic(bin); err != nil {
			return fmt.Errorf("load image %s: %w", im.Ref, err)
		}
		exe := "/usr/local/bin/" + strings.TrimSuffix(filepath.Base(bin), "-"+im.Version)
		specs = append(specs, archiveImage{Ref: im.Ref, Binary: bin, Exe: exe, Args: im.Args, User: im.User})
	}
	archive := filepath.Join(dir, "images.tar")
	if err := n.writeArchive(ctx, archive, specs); err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	defer os.Remove(archive)
	if _, err := n.ctr("images", "import", archive); err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	var refs []string
	for _, im := range images {
		refs = append(refs, im.Ref)
	}
	out, err := n.ctr("images", "ls", "-q")
	if err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	have := strings.Fields(out)
	for _, ref := range refs {
		if !slices.Contains(have, ref) {
			return fmt.Errorf("load images: %s not in containerd after import (have %v)", ref, have)
		}
	}
	return nil
}

// nodeImages are the images the node itself needs: the sandbox, the
// cluster DNS and the seed's web server.
func (n *node) nodeImages() []Image {
	return []Image{
		{Ref: PauseImage, Binary: n.pause},
		{Ref: SeedWebImage, Package: "./internal/controlplane/cmd/seedweb"},
		{Ref: CoreDNSImage, Binary: n.cp.tools[toolCoreDNS]},
	}
}

// EtcdImage is the image of the pinned etcd the control plane runs
// (`make controlplane` builds it without cgo), as EtcdImageRef, run as
// ociimage.NonRoot. Load it with LoadImages.
func (cp *ControlPlane) EtcdImage() Image {
	return Image{Ref: EtcdImageRef, Binary: cp.tools[toolEtcd]}
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// archiveImage is one image for cmd/nodeimages.
type archiveImage struct {
	Ref    string   `json:"ref"`
	Binary string   `json:"binary"`
	Exe    string   `json:"exe"`
	Args   []string `json:"args"`
	User   string   `json:"user"`
}

// writeArchive writes the images as a docker archive at path by running
// cmd/nodeimages (built once per node): outside this process, whose code
// may be instrumented by -race, which slows the layers' compression
// many times over.
func (n *node) writeArchive(ctx context.Context, path string, images []archiveImage) error {
	n.imageMu.Lock()
	defer n.imageMu.Unlock()
	if n.imageTool == "" {
		tool, err := buildBinary(ctx, filepath.Join(n.dir, "images"), "./internal/controlplane/cmd/nodeimages", "")
		if err != nil {
			return err
		}
		n.imageTool = tool
	}
	spec, err := json.Marshal(images)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, n.imageTool, path)
	cmd.Stdin = bytes.NewReader(spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", n.imageTool, err, out)
	}
	return nil
}
