package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// apiServerGrace is how long kube-apiserver gets to shut down on SIGTERM
// before it is killed. It stops listening at once, but then lingers for
// 10 s and more over its open watches; the outage has begun by then, and
// etcd holds all its state, so it gets little time.
const apiServerGrace = time.Second

func (cp *ControlPlane) apiServerArgs() []string {
	return []string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", cp.etcdPort),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.apiPort),
		// Certificates of our own CA rather than --cert-dir's self-signed
		// pair: clients trust one CA file, and a restart serves the same.
		"--cert-dir=" + filepath.Join(cp.dir, "apiserver"),
		"--tls-cert-file=" + cp.pki.servingCert,
		"--tls-private-key-file=" + cp.pki.servingKey,
		"--token-auth-file=" + cp.pki.tokenFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + cp.pki.saPubFile,
		"--service-account-signing-key-file=" + cp.pki.saKeyFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + serviceCIDR,
		// The "kubernetes" Service would get an EndpointSlice with this
		// machine's address; tests want a cluster holding only their own
		// objects.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		// For the node (Options.Node): logs and exec reach its kubelet
		// at its InternalIP with a client certificate of our CA.
		"--kubelet-client-certificate=" + cp.pki.kubeletClientCert,
		"--kubelet-client-key=" + cp.pki.kubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
	}
}

// startAPIServer runs kube-apiserver and waits for /readyz.
func (cp *ControlPlane) startAPIServer(ctx context.Context) error {
	start := time.Now()
	p, err := cp.run(toolAPIServer, cp.apiServerArgs())
	if err != nil {
		return err
	}
	cp.mu.Lock()
	cp.apiServer = p
	cp.mu.Unlock()
	client, err := cp.adminClient()
	if err != nil {
		return err
	}
	err = waitReady(ctx, p, 60*time.Second, func(ctx context.Context) error {
		// /readyz includes the post-start hooks, among them the RBAC
		// bootstrap roles and the system namespaces.
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("/readyz: %w: %s", err, body)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cp.logger.Debug("kube-apiserver ready", "url", cp.url, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// StopAPIServer stops kube-apiserver only, to simulate an API outage:
// etcd keeps its data and the other processes keep running (and retrying).
// Clients see connections refused from the moment it returns (about 1 s).
func (cp *ControlPlane) StopAPIServer() error {
	cp.mu.Lock()
	p := cp.apiServer
	cp.apiServer = nil
	cp.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.Stop(apiServerGrace); err != nil {
		return fmt.Errorf("stop API server: %w", err)
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same port with the same certificates and keys, so existing clients and
// tokens keep working; it returns once the API server is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	running := cp.apiServer != nil && !cp.apiServer.Exited()
	cp.mu.Unlock()
	if running {
		return fmt.Errorf("start API server: already running")
	}
	if err := cp.startAPIServer(ctx); err != nil {
		return fmt.Errorf("start API server: %w", err)
	}
	return nil
}
