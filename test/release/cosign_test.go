package release_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/peerdns/peerdns/internal/testtools"
)

// TestSignedImages runs the publishing step that signs the images
// (hack/sign-images.sh, docs/release.md) against a registry on loopback,
// with a key pair cosign generates: each image pushed verifies with
// `cosign verify --key`, by its tag as users pull it; not with another key,
// nor once the tag is moved to another image. No transparency log is
// involved, so nothing leaves the machine.
func TestSignedImages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cosign against a registry; skipped with -short")
	}
	cosign := testtools.Path(t, "cosign")
	root := repoRoot(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve the registry: %v", err)
		}
	})
	repo := ln.Addr().String() + "/peerdns"

	// Stand-ins for the images, pushed where `make image
	// IMAGE_REPOSITORY=…` would publish them; digests.txt names them as
	// make image does, under ghcr.io.
	dir := t.TempDir()
	var digests strings.Builder
	for _, program := range []string{"peerdns", "peeragent"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(repo + "/" + program + ":v0.1.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&digests, "ghcr.io/peerdns/%s:v0.1.0@%s\n", program, d)
	}
	digestsFile := filepath.Join(dir, "digests.txt")
	if err := os.WriteFile(digestsFile, []byte(digests.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	env := append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
	run := func(t *testing.T, name string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, append(env, "COSIGN="+cosign, "COSIGN_FLAGS=--allow-insecure-registry")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(t, cosign, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	if out, err := run(t, filepath.Join(root, "hack", "sign-images.sh"), "cosign.key", digestsFile, repo); err != nil {
		t.Fatalf("hack/sign-images.sh: %v\n%s", err, out)
	}
	verifyWith := func(t *testing.T, key, ref string) error {
		t.Helper()
		out, err := run(t, cosign, "verify", "--key", key, "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		return nil
	}
	verify := func(t *testing.T, ref string) error { return verifyWith(t, "cosign.pub", ref) }
	for _, program := range []string{"peerdns", "peeragent"} {
		if err := verify(t, repo+"/"+program+":v0.1.0"); err != nil {
			t.Errorf("cosign verify %s: %v", program, err)
		}
	}

	// Another key does not vouch for them.
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	gen := exec.Command(cosign, "generate-key-pair")
	gen.Dir, gen.Env = filepath.Join(dir, "other"), env
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	if err := verifyWith(t, "other/cosign.pub", repo+"/peeragent:v0.1.0"); err == nil {
		t.Error("cosign verify accepted the signature with another key")
	}

	// The tag moved to another image: nothing vouches for it.
	other, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(repo + "/peerdns:v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, other); err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ref.String()); err == nil {
		t.Error("cosign verify accepted an image pushed over the signed tag")
	}
}
