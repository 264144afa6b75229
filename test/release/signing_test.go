package release_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerdns/peerdns/internal/testtools"
)

// testKey creates a GnuPG home holding a new signing key without a
// passphrase, and returns the home and the key's public keyring (what a
// user verifies with, as `gpg --export` writes it).
func testKey(t *testing.T) (home, pubring string) {
	t.Helper()
	gpg := testtools.Path(t, "gpg")
	// Not t.TempDir: gpg-agent's socket path must stay short.
	home, err := os.MkdirTemp("", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The agent gpg started for this home; it would outlive the test.
		if out, err := exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").CombinedOutput(); err != nil {
			t.Logf("stop gpg-agent: %v\n%s", err, out)
		}
		os.RemoveAll(home)
	})
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	run("--passphrase", "", "--quick-gen-key", "peerdns release test <release-test@example.com>", "rsa2048", "sign", "never")
	pubring = filepath.Join(t.TempDir(), "pubring.gpg")
	if err := os.WriteFile(pubring, run("--export", "release-test@example.com"), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, pubring
}

// TestSignedRelease builds a release signed with a local key, as
// `make release SIGN_KEY=…` does (binaries and images stand-ins: signing
// does not look inside them), and verifies it with the ecosystem's tools:
// `helm verify` for each chart's provenance (and `helm pull --verify`
// from the served repository), `gpg --verify` and
// `sha256sum -c` for the checksums of everything else. A chart changed
// after signing fails `helm verify`.
func TestSignedRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("packages the charts with helm; skipped with -short")
	}
	helm := testtools.Path(t, "helm")
	sha256sum := testtools.Path(t, "sha256sum")
	home, pubring := testKey(t)
	root := repoRoot(t)
	dist := t.TempDir()
	for _, f := range []string{"bin/linux_amd64/peerdns", "bin/linux_amd64/peeragent", "image/images-linux-amd64.tar", "image/digests.txt"} {
		p := filepath.Join(dist, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stand-in for "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The chart repository, served as users reach it.
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

	release := makefileRelease(t, root)
	version := release + "-dev-gtest"
	cmd := exec.Command(buildRelease(t), "-dist", dist, "-repo", root, "-version", version, "-release", release,
		"-platforms", "linux/amd64", "-helm", helm, "-chart-url", url, "-sign-key", "release-test@example.com")
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/release -sign-key: %v\n%s", err, out)
	}
	out := filepath.Join(dist, "release")
	chartVersion := strings.TrimPrefix(version, "v")
	for _, chart := range []string{"peerdns", "peeragent"} {
		t.Run("helm verify "+chart, func(t *testing.T) {
			pkg := filepath.Join(out, "charts", chart+"-"+chartVersion+".tgz")
			verify := exec.Command(helm, "verify", "--keyring", pubring, pkg)
			if got, err := verify.CombinedOutput(); err != nil {
				t.Fatalf("helm verify: %v\n%s", err, got)
			} else if !strings.Contains(string(got), "release-test@example.com") {
				t.Errorf("helm verify does not name the signer:\n%s", got)
			}
			// From the repository: helm fetches the .prov beside the package.
			home := t.TempDir()
			runHelm(t, helm, home, "pull", chart, "--repo", url, "--version", chartVersion, "--verify", "--keyring", pubring, "--destination", t.TempDir())
			// The same package, changed after signing.
			raw, err := os.ReadFile(pkg)
			if err != nil {
				t.Fatal(err)
			}
			tampered := filepath.Join(t.TempDir(), filepath.Base(pkg))
			raw[len(raw)-1] ^= 1
			if err := os.WriteFile(tampered, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			prov, err := os.ReadFile(pkg + ".prov")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tampered+".prov", prov, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := exec.Command(helm, "verify", "--keyring", pubring, tampered).CombinedOutput(); err == nil {
				t.Errorf("helm verify accepted a package changed after signing:\n%s", got)
			}
		})
	}
	t.Run("gpg verify SHA256SUMS", func(t *testing.T) {
		verify := exec.Command("gpg", "--no-default-keyring", "--keyring", pubring, "--verify", "SHA256SUMS.asc", "SHA256SUMS")
		verify.Dir = out
		verify.Env = append(os.Environ(), "GNUPGHOME="+t.TempDir())
		if got, err := verify.CombinedOutput(); err != nil {
			t.Fatalf("gpg --verify: %v\n%s", err, got)
		}
		check := exec.Command(sha256sum, "-c", "SHA256SUMS")
		check.Dir = out
		got, err := check.CombinedOutput()
		if err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, got)
		}
		for _, want := range []string{"images/images-linux-amd64.tar: OK", "images/digests.txt: OK", "charts/peerdns-" + chartVersion + ".tgz: OK"} {
			if !strings.Contains(string(got), want) {
				t.Errorf("sha256sum -c does not report %q:\n%s", want, got)
			}
		}
	})
}
