package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// The demo's modes: on a real node (containerd, kubelet, the project's
// images installed by its charts), or on kwok's fake node, where pods never
// run and peerdns runs on this machine.
const (
	modeAuto = "auto"
	modeNode = "node"
	modeKwok = "kwok"
)

// host is what the mode choice looks at; tests fake it.
type host struct {
	goos     string
	euid     int
	toolsBin string
	// executable reports whether path is an executable file.
	executable func(path string) bool
	lookPath   func(name string) (string, error)
}

func thisHost(toolsBin string) host {
	return host{
		goos:     runtime.GOOS,
		euid:     os.Geteuid(),
		toolsBin: toolsBin,
		executable: func(path string) bool {
			st, err := os.Stat(path)
			return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
		},
		lookPath: exec.LookPath,
	}
}

// What the node mode runs besides the control plane's own binaries: from
// ToolsBin (`make controlplane`), from the system, and the CNI plugins
// where Debian's containernetworking-plugins puts them, which is where
// internal/controlplane's containerd configuration looks.
var (
	nodeTools       = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "containerd", "ctr", "containerd-shim-runc-v2", "coredns", "kubectl", "helm"}
	nodeSystemTools = []string{"go", "runc", "nsenter", "unshare", "ip", "nft", "dig", "curl"}
	nodeCNIPlugins  = []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap"}
)

// nodeUnsupported returns why this host cannot run the node, or "" when it
// can.
func (h host) nodeUnsupported() string {
	if h.goos != "linux" {
		return "a node needs Linux (namespaces, cgroups), this is " + h.goos
	}
	if h.euid != 0 {
		return "a node needs root (namespaces, mounts, cgroups): run `sudo make demo`"
	}
	var missing []string
	for _, t := range nodeTools {
		if !h.executable(filepath.Join(h.toolsBin, t)) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("%s not in %s: run `make controlplane`", strings.Join(missing, ", "), h.toolsBin)
	}
	for _, t := range nodeSystemTools {
		if _, err := h.lookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	for _, p := range nodeCNIPlugins {
		if !h.executable(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("%s missing: `make controlplane` installs runc, nft, dig, ip and the CNI plugins; Debian's curl and util-linux packages have the others", strings.Join(missing, ", "))
	}
	return ""
}

// chooseMode resolves the --mode flag on h: the mode to run, and for the
// kwok mode why (empty for node). Forcing the node where it cannot run is
// an error naming what is missing.
func chooseMode(flag string, h host) (mode, reason string, err error) {
	switch flag {
	case modeKwok:
		return modeKwok, "asked for with --mode=kwok", nil
	case modeNode:
		if why := h.nodeUnsupported(); why != "" {
			return "", "", fmt.Errorf("--mode=node: cannot run a node here: %s", why)
		}
		return modeNode, "", nil
	case modeAuto:
		if why := h.nodeUnsupported(); why != "" {
			return modeKwok, why, nil
		}
		return modeNode, "", nil
	}
	return "", "", fmt.Errorf("--mode=%s: want auto, node or kwok", flag)
}
