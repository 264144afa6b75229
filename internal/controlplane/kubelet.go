package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubeletConfig is the node's KubeletConfiguration. Each setting that
// differs from a production node is needed on these machines:
//
//   - failCgroupV1: false — the host's cgroups are v1 controllers with a
//     v2 hierarchy used only by systemd; kubelet ≥ 1.35 refuses v1
//     otherwise.
//   - cgroupDriver cgroupfs, cgroupsPerQOS false, enforceNodeAllocatable
//     empty: no systemd, and no QoS hierarchy to create in the host's
//     cgroups; containerd puts each container in /k8s.io/<id>.
//   - failSwapOn false; eviction thresholds at 0 and image garbage
//     collection off: the node shares a machine whose disk and memory it
//     does not own, and its images cannot be pulled again.
//   - x509 client authentication with our CA and webhook authorization:
//     the API server's kubelet client certificate may do everything, as
//     on any cluster.
var kubeletConfig = template.Must(template.New("kubelet").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
containerRuntimeEndpoint: unix://{{.Socket}}
staticPodPath: {{.Dir}}/manifests
podLogsDir: {{.Dir}}/logs
resolvConf: {{.Dir}}/resolv.conf
clusterDomain: cluster.local
clusterDNS: [{{.ClusterDNS}}]
address: {{.NodeIP}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.CA}}}
authorization:
  mode: Webhook
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
`))

// NodeName is the name of the node Options.Node runs.
const NodeName = "peerdns-node"

// ClusterDNSIP is the cluster DNS Service's address on the node: every pod
// with the default DNS policy sends its queries there.
const ClusterDNSIP = "10.96.0.10"

// startKubelet writes the kubelet's configuration and runs it in the
// node's namespaces until the Node is Ready.
func (n *node) startKubelet(ctx context.Context) error {
	dir := filepath.Join(n.dir, "kubelet")
	for _, d := range []string{dir, filepath.Join(dir, "manifests"), filepath.Join(dir, "logs"), filepath.Join(dir, "root")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("kubelet: %w", err)
		}
	}
	// The node's own resolver: pods with dnsPolicy Default get it; there
	// is nothing to forward to on this network.
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+ClusterDNSIP+"\n"), 0o644); err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	var cfg strings.Builder
	err := kubeletConfig.Execute(&cfg, map[string]string{
		"Dir": dir, "Socket": n.containerdSocket(), "ClusterDNS": ClusterDNSIP,
		"NodeIP": n.ns.nodeIP, "CA": n.cp.pki.caCertFile,
	})
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	p, err := n.run(toolKubelet, n.cp.tools[toolKubelet],
		"--config="+cfgPath,
		"--kubeconfig="+n.kubeconfig,
		"--root-dir="+filepath.Join(dir, "root"),
		"--hostname-override="+NodeName,
		"--node-ip="+n.ns.nodeIP,
		"--v=1",
	)
	if err != nil {
		return err
	}
	client, err := n.cp.adminClient()
	if err != nil {
		return err
	}
	return waitReady(ctx, p, 60*time.Second, func(ctx context.Context) error {
		node, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready yet", NodeName)
	})
}
