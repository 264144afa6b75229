// Command peerdns is an authoritative DNS server for the headless services
// of a Kubernetes cluster, fed by their EndpointSlices.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"

	"github.com/peerdns/peerdns/internal/cli"
	"github.com/peerdns/peerdns/internal/telemetry"
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
	app := newFlags(&cfg)
	if code, done := app.ParseArgs(args, stdout, stderr); done {
		return code
	}
	if _, err := cfg.resolverConfig(); err != nil {
		return app.Fail(err)
	}
	if _, err := cfg.transfer.transferConfig(); err != nil {
		return app.Fail(err)
	}
	if err := telemetry.ValidateWebConfig(cfg.webConfigFile); err != nil {
		return app.Fail(cli.Invalid("web.config.file", "%v", err))
	}
	logger := app.Logger(stderr)
	// client-go logs through klog; send it to the same handler.
	kube.LogClientGo(logger.With("component", "client-go"))
	if err := serve(ctx, &cfg, logger, nil); err != nil {
		if cli.IsFlagError(err) {
			return app.Fail(err)
		}
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
	transfers *resolver.Transfers // nil without --dns.transfer.* flags
	dnsServer *resolver.Server
	watcher   *kube.Watcher
	webServer *telemetry.Server
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
		versioncollector.NewCollector("peerdns"),
	)
	if len(rcfg.NSAddresses) == 0 {
		logger.Warn("no address for the NS target: set --dns.ns-address or $POD_IP; ns.dns.<zone> has no A/AAAA records, a lame delegation for anything that follows the NS")
	}
	rcfg.Registerer = a.reg
	rcfg.Logger = logger.With("component", "dns")
	store := resolver.NewStore()
	restCfg, err := kube.RESTConfig(cfg.kubeconfig)
	if err != nil {
		if cfg.kubeconfig != "" {
			return nil, &cli.FlagError{Flag: "kubeconfig", Err: err}
		}
		return nil, err
	}
	a.watcher, err = kube.New(kube.Config{RESTConfig: restCfg, Sink: store, Namespace: cfg.namespace, ReadServices: cfg.readServices, Logger: logger, Registerer: a.reg})
	if err != nil {
		return nil, err
	}
	// How current the store is: for Stale Answer and --kube.max-staleness.
	rcfg.Sync = a.watcher
	if a.handler, err = resolver.NewHandler(store, rcfg); err != nil {
		// resolverConfig checked every field, zones included: this is
		// not a bad flag.
		return nil, err
	}
	if cfg.transfer.enabled() {
		tcfg, err := cfg.transfer.transferConfig()
		if err != nil {
			return nil, err
		}
		tcfg.Registerer = a.reg
		tcfg.Logger = logger.With("component", "transfer")
		if a.transfers, err = resolver.NewTransfers(a.handler, tcfg); err != nil {
			return nil, err
		}
		if len(tcfg.Allow) == 0 {
			logger.Warn("transfer flags given but no --dns.transfer.allow: every transfer is refused")
		}
	}
	a.dnsServer, err = resolver.Listen(resolver.ServerConfig{
		Addr:                       cfg.dnsAddr,
		Handler:                    a.handler,
		Transfers:                  a.transfers,
		MaxTCPConnections:          cfg.maxTCPConns,
		MaxTCPConnectionsPerClient: cfg.maxTCPPerClient,
		TCPIdleTimeout:             cfg.tcpIdle,
		Registerer:                 a.reg,
		Logger:                     logger.With("component", "dns"),
	})
	if err != nil {
		return nil, err
	}
	a.webServer, err = telemetry.Listen(telemetry.Config{
		ListenAddress: cfg.webAddr,
		WebConfigFile: cfg.webConfigFile,
		Gatherer:      a.reg,
		Ready:         a.handler.Ready,
		Logger:        logger.With("component", "web"),
	})
	if err != nil {
		a.dnsServer.Close()
		return nil, err
	}
	logger.Info("peerdns started", "version", version.Info(), "dns", a.dnsServer.Addr().String(), "web", a.webServer.Addr().String(), "zones", rcfg.Zones, "ns_addresses", rcfg.NSAddresses)
	return a, nil
}

// runTransfers sends NOTIFYs until ctx is done; without transfers it only
// waits.
func (a *app) runTransfers(ctx context.Context) error {
	if a.transfers == nil {
		<-ctx.Done()
		return nil
	}
	return a.transfers.Run(ctx)
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
	const servers = 4
	errc := make(chan error, servers)
	go func() { errc <- a.dnsServer.Serve(runCtx) }()
	go func() { errc <- a.runTransfers(runCtx) }()
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
	for ; received < servers; received++ {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	logger.Info("peerdns stopped")
	return runErr
}
