package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/peerdns/peerdns/internal/proc"
)

// node is a real Kubernetes node (Options.Node): containerd, the kubelet
// and kube-proxy in their own namespaces (nodeNamespaces), pods on a CNI
// bridge, and CoreDNS as the cluster DNS.
type node struct {
	cp         *ControlPlane
	dir        string // <control plane dir>/node
	pause      string // the pause binary: init of the namespaces and the sandbox image
	ns         *nodeNamespaces
	apiProxy   *tcpProxy
	kubeconfig string // the node's components' kubeconfig: the admin, through apiProxy
	imageMu    sync.Mutex
	imageTool  string // cmd/nodeimages, once built; guarded by imageMu

	procs []*proc.Process // containerd, kubelet, kube-proxy, in start order
}

// NodeInfo describes the running node.
type NodeInfo struct {
	// Name of the Node object.
	Name string
	// IP is the node's InternalIP, reachable from this machine.
	IP string
	// PodCIDR is the range the pods' addresses come from, reachable from
	// this machine through the node.
	PodCIDR string
	// Bridge is the name of the pods' bridge in the node's network
	// namespace; Link the root namespace's end of the node's link.
	Bridge, Link string
	// InitPID is the PID of the init of the node's namespaces: `nsenter
	// -t <InitPID> -n` runs a command in the node's network namespace.
	InitPID int
}

// Node returns the running node, or false without Options.Node.
func (cp *ControlPlane) Node() (NodeInfo, bool) {
	if cp.node == nil || cp.node.ns == nil {
		return NodeInfo{}, false
	}
	ns := cp.node.ns
	return NodeInfo{Name: NodeName, IP: ns.nodeIP, PodCIDR: ns.podCIDR, Bridge: ns.bridge, Link: ns.veth, InitPID: ns.initPID}, true
}

// ErrNodeUnsupported is wrapped by NodeSupport's error: this machine
// cannot run a node.
var ErrNodeUnsupported = errors.New("this machine cannot run a node")

// NodeSupport returns nil when this machine has what Options.Node needs
// besides the tools of ToolsBin: root (namespaces, mounts, cgroups), and
// the programs from Debian that `make controlplane` installs (unshare and
// nsenter, ip, nft, runc, the CNI plugins). Otherwise its error, wrapping
// ErrNodeUnsupported, names what is missing.
func NodeSupport() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (namespaces, mounts, cgroups)")
	}
	for _, name := range []string{"unshare", "nsenter", "ip", "nft", "runc"} {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap"} {
		if st, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Join(cniBinDir, plugin))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: it lacks %s (`make controlplane` installs the programs)", ErrNodeUnsupported, strings.Join(missing, ", "))
	}
	return nil
}

// startNode brings up the node on a running API server with controllers:
// images, namespaces, the API proxy, containerd, the kubelet (until the
// Node is Ready), kube-proxy and the cluster DNS (until it answers).
func (cp *ControlPlane) startNode(ctx context.Context) error {
	start := time.Now()
	n := &node{cp: cp, dir: filepath.Join(cp.dir, "node")}
	cp.mu.Lock()
	cp.node = n
	cp.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(n.dir, "images"), 0o700); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	var err error
	if n.pause, err = buildBinary(ctx, filepath.Join(n.dir, "images"), "./internal/controlplane/cmd/pause", ""); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if n.ns, err = startNodeNamespaces(n.dir, n.pause); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	cp.logger.Debug("node namespaces ready", "init_pid", n.ns.initPID, "pod_cidr", n.ns.podCIDR, "node_ip", n.ns.nodeIP)
	apiAddr := net.JoinHostPort(n.ns.hostIP, strconv.Itoa(cp.apiPort))
	if n.apiProxy, err = startTCPProxy(apiAddr, fmt.Sprintf("127.0.0.1:%d", cp.apiPort)); err != nil {
		return fmt.Errorf("start node: API proxy: %w", err)
	}
	cfg := cp.AdminConfig()
	cfg.Host = "https://" + apiAddr
	cfg.ServerName = "kubernetes" // in the serving certificate; the proxy's address is not
	n.kubeconfig = filepath.Join(n.dir, "node.kubeconfig")
	if err := cp.WriteKubeconfig(cfg, n.kubeconfig); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if err := cp.publishAPIEndpoint(ctx, n.ns.hostIP); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if err := n.startContainerd(ctx); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if err := n.loadImages(ctx, n.nodeImages()); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if err := n.startKubelet(ctx); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if err := n.startKubeProxy(ctx); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	if err := n.startClusterDNS(ctx); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	cp.logger.Debug("node ready", "node", NodeName, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// publishAPIEndpoint points the "kubernetes" Service at the API proxy
// (the API server runs with --endpoint-reconciler-type=none), so that pods
// reach the API server at its cluster IP, as in any cluster.
func (cp *ControlPlane) publishAPIEndpoint(ctx context.Context, ip string) error {
	client, err := cp.adminClient()
	if err != nil {
		return err
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: metav1.NamespaceDefault,
			Name:      "kubernetes",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "kubernetes",
				discoveryv1.LabelManagedBy:   "peerdns-controlplane",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To("https"), Port: ptr.To(int32(cp.apiPort)), Protocol: ptr.To(corev1.ProtocolTCP),
		}},
	}
	_, err = client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("publish API endpoint: %w", err)
	}
	return nil
}

// run starts path with args in the node's namespaces, with ToolsBin first
// on PATH (containerd finds its shim there), as cp.run does for the control
// plane.
func (n *node) run(name, path string, args ...string) (*proc.Process, error) {
	env := []string{"env", "PATH=" + filepath.Dir(path) + ":" + os.Getenv("PATH"), path}
	p, err := n.cp.start(name, "nsenter", n.ns.enter(env[0], append(env[1:], args...)...))
	if err != nil {
		return nil, err
	}
	n.cp.mu.Lock()
	n.procs = append(n.procs, p)
	n.cp.mu.Unlock()
	return p, nil
}

// stop stops the node's components, kills everything left in its
// namespaces, removes the containers' cgroups and closes the API proxy.
// The kubelet goes first, so nothing restarts what the others stop.
func (n *node) stop() error {
	var errs []error
	var containers []string
	if n.ns != nil && len(n.procs) > 0 {
		// Before containerd goes: the containers whose cgroups to remove.
		if out, err := n.ctr("containers", "ls", "-q"); err == nil {
			containers = strings.Fields(out)
		}
	}
	n.cp.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.cp.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(2 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if n.ns != nil {
		if err := n.ns.remove(); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, removeContainerCgroups(containers))
	}
	if n.apiProxy != nil {
		errs = append(errs, n.apiProxy.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop node: %w", err)
	}
	return nil
}

// PodNetworkCommand returns a command that runs name with args in the
// network namespace of pod's first running container: it reaches the
// network exactly as a program in the pod would (the pod's resolv.conf
// aside: give resolvers their server), with this machine's tools, which
// the pod's image may lack.
func (cp *ControlPlane) PodNetworkCommand(ctx context.Context, pod *corev1.Pod, name string, args ...string) (*exec.Cmd, error) {
	pid, err := podPID(pod)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "--", name}, args...)...), nil
}

// podPID returns the PID (in this PID namespace) of a process of pod's
// first running container, from the container's cgroup.
func podPID(pod *corev1.Pod) (int, error) {
	for _, cs := range append(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses...) {
		id, ok := strings.CutPrefix(cs.ContainerID, "containerd://")
		if !ok || cs.State.Running == nil {
			continue
		}
		for _, d := range containerCgroups([]string{id}) {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("pod %s/%s: no running container with a process", pod.Namespace, pod.Name)
}
