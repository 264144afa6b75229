package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peerdns/peerdns/internal/testtools"
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
	toolKubelet           = "kubelet"
	toolKubeProxy         = "kube-proxy"
	toolContainerd        = "containerd"
	toolCtr               = "ctr"
	toolShim              = "containerd-shim-runc-v2"
	toolCoreDNS           = "coredns"
)

// defaultToolsBin is $PEERDNS_TOOLS_BIN, else .cache/bin in the repository
// root.
func defaultToolsBin() (string, error) { return testtools.Bin() }

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
