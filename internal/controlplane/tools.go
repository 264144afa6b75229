package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrToolMissing is wrapped by Start's error when a binary it needs is not
// in Options.ToolsBin; `make controlplane` builds them.
var ErrToolMissing = errors.New("control-plane tool missing")

// The binaries Start runs, all built by `make controlplane`.
const (
	toolEtcd              = "etcd"
	toolAPIServer         = "kube-apiserver"
	toolControllerManager = "kube-controller-manager"
	toolScheduler         = "kube-scheduler"
	toolKwok              = "kwok"
)

// defaultToolsBin is $PEERDNS_TOOLS_BIN, else .cache/bin in the repository
// root (the first directory upwards from the working directory holding a
// go.mod).
func defaultToolsBin() (string, error) {
	if dir := os.Getenv("PEERDNS_TOOLS_BIN"); dir != "" {
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "bin"), nil
}

func repoRoot() (string, error) {
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

// findTools returns the path of each named binary in bin, or an error
// wrapping ErrToolMissing that names every missing one.
func findTools(bin string, names ...string) (map[string]string, error) {
	paths := make(map[string]string, len(names))
	var missing []string
	for _, name := range names {
		p := filepath.Join(bin, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, name)
			continue
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %v not in %s; run `make controlplane`", ErrToolMissing, missing, bin)
	}
	return paths, nil
}
