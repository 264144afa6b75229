package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// FakeNodeName is the Node that kwok runs pods on in Controllers mode.
	// It has no taints, so every pod can be scheduled on it.
	FakeNodeName = "kwok-node-0"
	// PodCIDR is where kwok takes pod IPs from: not loopback, which the
	// API server rejects in EndpointSlices, and not routed anywhere.
	PodCIDR = "10.244.0.0/16"

	kwokNodeAnnotation = "kwok.x-k8s.io/node"
)

// startControllers runs kube-controller-manager, kube-scheduler and (with
// kwok) kwok, registers the fake node, and waits until it is Ready and the
// default namespace has its ServiceAccount (without which pods are
// rejected).
func (cp *ControlPlane) startControllers(ctx context.Context, kwok bool) error {
	start := time.Now()
	kwokConfig := filepath.Join(cp.dir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, []byte(kwokConfiguration), 0o600); err != nil {
		return fmt.Errorf("write kwok configuration: %w", err)
	}
	kcm := []string{
		"--kubeconfig=" + cp.kubeconfig,
		"--service-account-private-key-file=" + cp.pki.saKeyFile,
		"--root-ca-file=" + cp.pki.caCertFile,
		"--use-service-account-credentials=true",
		"--controllers=*",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--leader-elect=false",
		"--secure-port=0", // no HTTPS endpoint: nothing scrapes it, and no port to pick
	}
	scheduler := []string{
		"--kubeconfig=" + cp.kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	}
	kwokArgs := []string{
		"--kubeconfig=" + cp.kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--cidr=" + PodCIDR,
		"--node-ip=10.244.0.1",
		// kwok renews the node's Lease, which the node lifecycle
		// controller takes as the heartbeat: the node stays Ready.
		"--node-lease-duration-seconds=40",
		"--server-address=127.0.0.1:" + strconv.Itoa(cp.kwokPort),
		// Our stages (kwok.go), not the caller's ~/.kwok/kwok.yaml.
		"--config=" + kwokConfig,
	}
	type command struct {
		name string
		args []string
	}
	commands := []command{{toolControllerManager, kcm}, {toolScheduler, scheduler}}
	if kwok {
		commands = append(commands, command{toolKwok, kwokArgs})
	}
	for _, c := range commands {
		p, err := cp.run(c.name, c.args)
		if err != nil {
			return err
		}
		cp.mu.Lock()
		cp.others = append(cp.others, p)
		cp.mu.Unlock()
	}

	client, err := cp.adminClient()
	if err != nil {
		return err
	}
	if kwok {
		if _, err := client.CoreV1().Nodes().Create(ctx, fakeNode(), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create fake node: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := controllersReady(ctx, client, kwok)
		cp.logger.Debug("wait", "err", err, "dir", cp.dir)
		if err == nil {
			break
		}
		for _, p := range cp.others {
			if p.Exited() {
				return exitError(p)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controllers not ready: %w (logs: %s)", errors.Join(err, ctx.Err()), cp.dir)
		case <-tick.C:
		}
	}
	cp.logger.Debug("controllers ready", "node", FakeNodeName, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// controllersReady reports nil once kwok has made the fake node Ready and
// the serviceaccount controller has given "default" its ServiceAccount.
func controllersReady(ctx context.Context, client kubernetes.Interface, kwok bool) error {
	if !kwok {
		return serviceAccountReady(ctx, client)
	}
	node, err := client.CoreV1().Nodes().Get(ctx, FakeNodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return fmt.Errorf("node %s not Ready yet", FakeNodeName)
	}
	return serviceAccountReady(ctx, client)
}

// serviceAccountReady reports nil once the serviceaccount controller has
// given "default" its ServiceAccount.
func serviceAccountReady(ctx context.Context, client kubernetes.Interface) error {
	_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return errors.New("service account default/default not created yet")
	}
	return err
}
