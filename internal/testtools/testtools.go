// Package testtools finds the programs tests run: the pinned builds that
// `make controlplane` puts in .cache/bin (etcd, kube-apiserver, CoreDNS,
// helm, …) and Debian's (dig, promtool), and decides what a missing one
// means: a skip that names it when a developer runs `go test` by hand, a
// failure under `make test` and CI (PEERDNS_REQUIRE_TOOLS=1), where a skip
// would hide a gap.
package testtools

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether a missing tool fails tests instead of skipping
// them: PEERDNS_REQUIRE_TOOLS=1, as `make test` sets.
func Required() bool { return os.Getenv("PEERDNS_REQUIRE_TOOLS") == "1" }

// Missing skips t, or fails it when Required, with the message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf(format+" (PEERDNS_REQUIRE_TOOLS=1)", args...)
	}
	t.Skipf(format, args...)
}

// Bin is the directory of the pinned tools: $PEERDNS_TOOLS_BIN (the
// Makefile exports it), else .cache/bin in the repository root.
func Bin() (string, error) {
	if dir := os.Getenv("PEERDNS_TOOLS_BIN"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "bin"), nil
}

// RepoRoot is the first directory upwards from the working directory that
// holds a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory; set PEERDNS_TOOLS_BIN")
		}
		dir = parent
	}
}

// Path returns the absolute path of the tool name: from Bin, else from
// $PATH. When neither has it, the test is skipped or failed (Missing).
func Path(t testing.TB, name string) string {
	t.Helper()
	bin, err := Bin()
	if err == nil {
		p := filepath.Join(bin, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(t, "%s not found in %s or $PATH: run `make controlplane`, which builds the pinned tools and installs Debian's", name, bin)
	return ""
}
