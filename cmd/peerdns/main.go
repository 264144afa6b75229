// Command peerdns is an authoritative DNS server for the headless services
// of a Kubernetes cluster, fed by their EndpointSlices.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/peerdns/peerdns/internal/cli"
	"github.com/peerdns/peerdns/internal/version"
	"github.com/peerdns/peerdns/internal/web"
	"github.com/peerdns/peerdns/resolver"
	"github.com/peerdns/peerdns/resolver/kube"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and serves until ctx is done. It returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := newFlags(&cfg, stderr)
	if code, done := cli.Parse(fs, args, &cfg.version, stdout, stderr); done {
		return code
	}
	logger, err := cfg.log.New(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "peerdns: %v\n", err)
		return 2
	}
	// client-go logs through klog; send it to the same handler.
	klog.SetSlogLogger(logger.With("component", "client-go"))
	if err := serve(ctx, &cfg, logger, nil); err != nil {
		logger.Error("peerdns stopped", "err", err)
		return 1
	}
	return 0
}

// app is peerdns wired together, bound to its ports but not yet serving.
type app struct {
	log       *slog.Logger
	reg       *prometheus.Registry
	handler   *resolver.Handler
	dnsServer *resolver.Server
	watcher   *kube.Watcher
	webServer *web.Server
}

// newApp wires the store, the DNS server, the EndpointSlice watcher and the
// telemetry server together and binds their ports.
func newApp(cfg *config, logger *slog.Logger) (*app, error) {
	rcfg, err := cfg.resolverConfig()
	if err != nil {
		return nil, err
	}
	a := &app{log: logger, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.NewCollector("peerdns"),
	)
	rcfg.Registerer = a.reg
	rcfg.Logger = logger.With("component", "dns")
	store := resolver.NewStore()
	if a.handler, err = resolver.NewHandler(store, rcfg); err != nil {
		return nil, err
	}
	restCfg, err := kube.RESTConfig(cfg.kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	a.watcher, err = kube.New(kube.Config{Client: client, Sink: store, Namespace: cfg.namespace, Logger: logger, Registerer: a.reg})
	if err != nil {
		return nil, err
	}
	a.dnsServer, err = resolver.Listen(resolver.ServerConfig{
		Addr:                       cfg.dnsAddr,
		Handler:                    a.handler,
		MaxTCPConnections:          cfg.maxTCPConns,
		MaxTCPConnectionsPerClient: cfg.maxTCPPerClient,
		TCPIdleTimeout:             cfg.tcpIdle,
		Registerer:                 a.reg,
		Logger:                     logger.With("component", "dns"),
	})
	if err != nil {
		return nil, err
	}
	a.webServer, err = web.Listen(web.Config{ListenAddress: cfg.webAddr, Gatherer: a.reg, Ready: a.handler.Ready, Logger: logger.With("component", "web")})
	if err != nil {
		a.dnsServer.Close()
		return nil, err
	}
	logger.Info("peerdns started", "version", version.Version, "dns", a.dnsServer.Addr().String(), "web", a.webServer.Addr().String(), "zones", rcfg.Zones)
	return a, nil
}

// serve runs peerdns until ctx is done; then readiness fails for the
// lame-duck period while answers go on, and everything stops. started, when
// set, is called once the ports are bound (tests learn them from it).
func serve(ctx context.Context, cfg *config, logger *slog.Logger, started func(*app)) error {
	a, err := newApp(cfg, logger)
	if err != nil {
		return err
	}
	if started != nil {
		started(a)
	}
	// Everything runs on its own context, cancelled only after the lame-duck
	// period, so answers keep coming while readiness reports the shutdown.
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- a.dnsServer.Serve(runCtx) }()
	go func() { errc <- a.watcher.Run(runCtx) }()
	go func() { errc <- a.webServer.Serve(runCtx) }()

	var runErr error
	received := 0
	select {
	case <-ctx.Done():
		a.handler.Drain()
		logger.Info("shutting down: lame duck", "duration", cfg.lameDuck)
		t := time.NewTimer(cfg.lameDuck)
		select {
		case <-t.C:
		case runErr = <-errc:
			received++
		}
		t.Stop()
	case runErr = <-errc:
		received++
	}
	if received > 0 && runErr == nil {
		runErr = errors.New("a server stopped before shutdown")
	}
	cancel()
	for ; received < 3; received++ {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	logger.Info("peerdns stopped")
	return runErr
}
