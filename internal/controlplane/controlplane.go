// Package controlplane runs a real Kubernetes control plane on loopback for
// tests and the demo: etcd and kube-apiserver, and on request
// kube-controller-manager, kube-scheduler and kwok (fake nodes that run
// pods), all as child processes in a temporary directory.
//
// Tests use StartT, as they would net/http/httptest; programs use Start and
// Stop. The binaries come from `make controlplane` (see Options.ToolsBin).
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/testtools"
)

// Options configures Start. The zero value is a working configuration.
type Options struct {
	// ToolsBin is the directory holding etcd, kube-apiserver and the other
	// binaries. Default: $PEERDNS_TOOLS_BIN, else .cache/bin in the
	// repository root (found by walking up from the working directory to
	// go.mod), where `make controlplane` builds them.
	ToolsBin string
	// Dir is the working directory for certificates, etcd's data, the
	// kubeconfig and each process's log (<name>.log). Default: a new
	// temporary directory, removed by Stop. A given Dir is kept.
	Dir string
	// Logger receives progress at Debug and, on failure, the processes'
	// last log lines inside the returned errors. Default: discard.
	Logger *slog.Logger
	// Controllers also runs kube-controller-manager, kube-scheduler and
	// kwok with one fake Node (FakeNodeName), so that workloads get pods
	// that are scheduled, Running and Ready, and the real endpointslice
	// controller writes EndpointSlices. Costs about one more second of
	// start-up and a few hundred MB of memory. Default: false, API server
	// and etcd only.
	Controllers bool
	// Node runs a real node, NodeName, instead of kwok's fake one:
	// containerd, the kubelet and kube-proxy in their own PID, network
	// and mount namespaces, pods on a CNI bridge with addresses this
	// machine reaches, and CoreDNS as the cluster DNS at ClusterDNSIP. It
	// runs kube-controller-manager and kube-scheduler as Controllers does
	// (Controllers is then ignored: there is no kwok). Needs root, the
	// node's tools from `make controlplane`, and about 10 s more to start.
	// Stop leaves nothing of it: no process, interface, route, mount or
	// cgroup.
	Node bool
	// StubZones are forwarded by the cluster DNS (with Node): zone (such
	// as "peerdns.internal.") to the address of its server ("10.96.0.53",
	// or "ip:port"), typically a Service's fixed cluster IP.
	StubZones map[string]string
}

// ControlPlane is a running control plane. Its methods are safe for
// concurrent use.
type ControlPlane struct {
	logger     *slog.Logger
	dir        string
	ownDir     bool // dir was created by Start, so Stop removes it
	tools      map[string]string
	pki        *pki
	url        string
	kubeconfig string
	httpClient *http.Client // for etcd's JSON gateway

	etcdPort, etcdPeerPort, apiPort, kwokPort int
	stubZones                                 map[string]string

	mu        sync.Mutex
	etcd      *proc.Process
	apiServer *proc.Process   // nil while stopped by StopAPIServer
	others    []*proc.Process // controller-manager, scheduler, kwok
	started   []*proc.Process // every process ever started, for the survivors check
	node      *node           // with Options.Node
	stopped   bool            // set by Stop: no process may start any more

	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd and kube-apiserver (and with Options.Controllers the
// controllers, scheduler and kwok) and returns once the API server answers
// /readyz (and the fake node is Ready). On error nothing is left running.
// ctx bounds the start only; Stop ends the processes.
//
// It takes about 2.5 s on two cores, plus about 1 s with Controllers.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	begin := time.Now()
	cp := &ControlPlane{logger: opts.Logger, httpClient: &http.Client{Timeout: 10 * time.Second}}
	if cp.logger == nil {
		cp.logger = slog.New(slog.DiscardHandler)
	}
	bin := opts.ToolsBin
	if bin == "" {
		if bin, err = defaultToolsBin(); err != nil {
			return nil, fmt.Errorf("start control plane: %w", err)
		}
	}
	names := []string{toolEtcd, toolAPIServer}
	switch {
	case opts.Node:
		names = append(names, toolControllerManager, toolScheduler, toolKubelet, toolKubeProxy,
			toolContainerd, toolCtr, toolShim, toolCoreDNS)
	case opts.Controllers:
		names = append(names, toolControllerManager, toolScheduler, toolKwok)
	}
	cp.stubZones = opts.StubZones
	if cp.tools, err = findTools(bin, names...); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}

	cp.dir = opts.Dir
	if cp.dir == "" {
		if cp.dir, err = os.MkdirTemp("", "peerdns-controlplane-"); err != nil {
			return nil, fmt.Errorf("start control plane: %w", err)
		}
		cp.ownDir = true
	} else if err := os.MkdirAll(cp.dir, 0o700); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start control plane: %w", err), cp.Stop())
		}
	}()

	if cp.pki, err = newPKI(cp.dir); err != nil {
		return nil, err
	}
	// Ports are picked free but only bound by the children a moment
	// later; a test starting in parallel may take one in between. Such a
	// start is retried on new ports.
	for attempt := 1; ; attempt++ {
		err = cp.boot(ctx, opts.Controllers, opts.Node)
		if err == nil || attempt == 3 || !errors.Is(err, errAddressInUse) {
			break
		}
		cp.logger.Warn("control-plane port taken meanwhile; retrying on new ports", "err", err)
		if err := cp.stopProcesses(); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(filepath.Join(cp.dir, "etcd")); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if opts.Node {
		if err := cp.startNode(ctx); err != nil {
			return nil, err
		}
	}
	cp.logger.Info("control plane ready", "url", cp.url, "dir", cp.dir,
		"controllers", opts.Controllers, "took", time.Since(begin).Round(time.Millisecond))
	return cp, nil
}

// boot picks ports, writes the admin kubeconfig and starts the processes.
func (cp *ControlPlane) boot(ctx context.Context, controllers, node bool) error {
	ports, err := testtools.FreePorts("127.0.0.1", 4)
	if err != nil {
		return err
	}
	cp.etcdPort, cp.etcdPeerPort, cp.apiPort, cp.kwokPort = ports[0], ports[1], ports[2], ports[3]
	cp.url = fmt.Sprintf("https://127.0.0.1:%d", cp.apiPort)
	cp.kubeconfig = filepath.Join(cp.dir, "admin.kubeconfig")
	if err := cp.WriteKubeconfig(cp.AdminConfig(), cp.kubeconfig); err != nil {
		return err
	}
	if err := cp.startEtcd(ctx); err != nil {
		return err
	}
	if err := cp.startAPIServer(ctx); err != nil {
		return err
	}
	if controllers || node {
		return cp.startControllers(ctx, !node)
	}
	return nil
}

// AdminConfig returns a new client configuration for the API server,
// authenticating as a member of system:masters.
func (cp *ControlPlane) AdminConfig() *rest.Config {
	return &rest.Config{
		Host:            cp.url,
		BearerToken:     cp.pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.caPEM},
		UserAgent:       "peerdns-controlplane",
	}
}

// adminClient is the client the package itself uses: AdminConfig without
// client-side rate limiting, so polling for readiness is not throttled.
func (cp *ControlPlane) adminClient() (kubernetes.Interface, error) {
	cfg := cp.AdminConfig()
	cfg.QPS = -1 // negative: no rate limiter
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	return client, nil
}

// Kubeconfig returns the path of a kubeconfig file with AdminConfig's
// identity, for child processes.
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// Dir returns the working directory, where each process logs to <name>.log.
func (cp *ControlPlane) Dir() string { return cp.dir }

// Stop stops every process (SIGTERM, then SIGKILL to its whole process
// group) and removes Dir if Start created it. It returns an error when a
// process would not die or Dir could not be removed. Later calls wait for
// the first and return its result.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() { cp.stopErr = cp.stop() })
	return cp.stopErr
}

func (cp *ControlPlane) stop() error {
	cp.mu.Lock()
	cp.stopped = true
	cp.mu.Unlock()
	var errs []error
	// The node first: its kubelet must not see the API server go away
	// and its containers must die before their namespaces do.
	cp.mu.Lock()
	n := cp.node
	cp.mu.Unlock()
	if n != nil {
		if err := n.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cp.stopProcesses(); err != nil {
		errs = append(errs, err)
	}
	if cp.ownDir && cp.dir != "" {
		if err := os.RemoveAll(cp.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", cp.dir, err))
		}
	}
	cp.httpClient.CloseIdleConnections()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop control plane: %w", err)
	}
	return nil
}

// stopProcesses stops every running process: dependents first and etcd
// last, so nothing logs a storm of errors about its upstream going away.
func (cp *ControlPlane) stopProcesses() error {
	cp.mu.Lock()
	procs := make([]*proc.Process, 0, len(cp.others)+2)
	for i := len(cp.others) - 1; i >= 0; i-- {
		procs = append(procs, cp.others[i])
	}
	procs = append(procs, cp.apiServer, cp.etcd)
	cp.others, cp.apiServer, cp.etcd = nil, nil, nil
	cp.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if p == nil {
			continue
		}
		// The state lives in etcd and dies with it: a graceful shutdown of
		// the others has nothing to save, so they get little time.
		if err := p.Stop(2 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// processesStarted returns every process started so far, running or not.
func (cp *ControlPlane) processesStarted() []*proc.Process {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]*proc.Process(nil), cp.started...)
}

// run starts a child process and logs, with the end of its log, if it
// exits without being asked to. It refuses once Stop has begun, so nothing
// starts after Stop collected what to stop.
func (cp *ControlPlane) run(name string, args []string) (*proc.Process, error) {
	return cp.start(name, cp.tools[name], args)
}

// start is run for any executable path.
func (cp *ControlPlane) start(name, path string, args []string) (*proc.Process, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil, fmt.Errorf("start %s: control plane stopped", name)
	}
	p, err := proc.Start(name, path, args, filepath.Join(cp.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cp.started = append(cp.started, p)
	go func() {
		<-p.Done()
		if !p.Stopping() {
			cp.logger.Error("control-plane process exited unexpectedly", "process", name,
				"err", p.Err(), "log", p.LogPath, "tail", p.Tail(20))
		}
	}()
	return p, nil
}
