package controlplane

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// containerdConfig is containerd's configuration (version 3) for the
// node. Everything it writes is under the node's directory, except the
// shims' sockets (containerd hard-codes /run/containerd/s) and CNI's cache
// (/var/lib/cni), which land on the node's own tmpfs mounts.
//
//   - restrict_oom_score_adj: processes here lack CAP_SYS_RESOURCE, so the
//     sandbox's oom_score_adj of -998 is refused ("failed to update
//     /proc/self/oom_score_adj: Permission denied"); clamp it to
//     containerd's own instead.
//   - runc is Debian's: it has seccomp, which the default sandbox spec
//     asks for. SystemdCgroup is off: the kubelet uses cgroupfs.
//   - netns_mounts_under_state_dir: the pods' network namespaces are bind
//     mounted under the state directory, not /var/run/netns.
//   - enable_unprivileged_ports: pods bind ports below 1024 without
//     NET_BIND_SERVICE (the seed's web server listens on 80 as non-root).
//   - the sandbox image is the local pause image; nothing is ever pulled.
//   - the opt plugin (which installs into /opt/containerd) and NRI are off.
var containerdConfig = template.Must(template.New("containerd").Parse(`version = 3
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{.Socket}}"

[ttrpc]
  address = "{{.Socket}}.ttrpc"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true

  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{{.Runc}}"
        Root = "{{.Dir}}/runc"
        SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{{.CNIBin}}"]
    conf_dir = "{{.CNIConf}}"
    max_conf_num = 1

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{{.SandboxImage}}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`))

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

// cniConflist is the pods' network: a bridge in the node's network
// namespace holding the gateway, host-local addresses from the node's pod
// range, and portmap for hostPort. The bridge hairpins, so a pod reaches
// itself through a Service.
const cniConflist = `{
  "cniVersion": "1.0.0",
  "name": "peerdns-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// containerdSocket is the CRI socket of the node; short enough for
// sun_path (108 bytes) under any temporary directory.
func (n *node) containerdSocket() string { return filepath.Join(n.dir, "containerd.sock") }

// startContainerd writes containerd's and CNI's configuration and runs
// containerd in the node's namespaces until its socket answers.
func (n *node) startContainerd(ctx context.Context) error {
	dir := filepath.Join(n.dir, "containerd")
	cniConf := filepath.Join(n.dir, "cni", "net.d")
	for _, d := range []string{dir, cniConf} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	conflist := fmt.Sprintf(cniConflist, n.ns.bridge, n.ns.podCIDR, n.ns.gateway, filepath.Join(n.dir, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(cniConf, "10-peerdns-node.conflist"), []byte(conflist), 0o600); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	runc, err := lookPath("runc")
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	var cfg strings.Builder
	err = containerdConfig.Execute(&cfg, map[string]string{
		"Dir": dir, "Socket": n.containerdSocket(), "Runc": runc,
		"CNIBin": cniBinDir, "CNIConf": cniConf, "SandboxImage": PauseImage,
	})
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	p, err := n.run(toolContainerd, n.cp.tools[toolContainerd], "--config", cfgPath)
	if err != nil {
		return err
	}
	return waitReady(ctx, p, 30*time.Second, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", n.containerdSocket())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// ctr runs ctr against the node's containerd in the k8s.io namespace (the
// CRI's) and returns its output.
func (n *node) ctr(args ...string) (string, error) {
	return cmdOutput(append([]string{n.cp.tools[toolCtr], "--address", n.containerdSocket(), "--namespace", "k8s.io"}, args...)...)
}
