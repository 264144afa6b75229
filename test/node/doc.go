// Package node is the end-to-end scenario on a real node (`make e2e`):
// the control plane with a kubelet, containerd and kube-proxy
// (internal/controlplane Options.Node), peerdns installed by its chart
// behind the cluster DNS's stub zone, and the seed StatefulSet web with the
// peeragent sidecar from its chart, all running the project's own images.
package node
