package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// kubeProxyConfig runs kube-proxy in nftables mode: its rules live in its
// own tables of the node's network namespace. Conntrack limits are left
// as they are (0): they are the host's, not the node's. Traffic to a
// Service from outside the pod range is masqueraded, so the replies of a
// pod find their way back through the node.
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
clusterCIDR: %[3]s
bindAddress: %[4]s
healthzBindAddress: %[4]s:10256
metricsBindAddress: %[4]s:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`

// startKubeProxy runs kube-proxy in the node's namespaces until its
// healthz answers, which it does once it has programmed the rules. Its
// healthz and metrics listen on the node's address, which the root
// namespace reaches through the node's link.
func (n *node) startKubeProxy(ctx context.Context) error {
	cfgPath := filepath.Join(n.dir, "kube-proxy.yaml")
	cfg := fmt.Sprintf(kubeProxyConfig, n.kubeconfig, NodeName, n.ns.podCIDR, n.ns.nodeIP)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("kube-proxy: %w", err)
	}
	p, err := n.run(toolKubeProxy, n.cp.tools[toolKubeProxy], "--config="+cfgPath, "--v=1")
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s:10256/healthz", n.ns.nodeIP)
	return waitReady(ctx, p, 30*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := n.cp.httpClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}
