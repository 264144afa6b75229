// Command peeragent is a quorum membership sidecar for StatefulSet
// databases: it finds its peers through their stable DNS names, forms
// membership with memberlist, and reports quorum through metrics, /members
// and change hooks, and through /readyz only with
// --readyz.require-quorum.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/discovery/kubesize"
	"github.com/peerdns/peerdns/internal/cli"
	"github.com/peerdns/peerdns/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the agent until ctx is done. It returns the exit
// code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg config
	app := newFlags(&cfg)
	if code, done := app.ParseArgs(args, stdout, stderr); done {
		return code
	}
	dcfg, err := cfg.discoveryConfig(os.Getenv, os.Hostname)
	if err != nil {
		return app.Fail(err)
	}
	if cfg.sizeSource(os.Getenv) == "kubernetes" {
		src, err := cfg.kubeSize(os.Getenv, dcfg)
		if err != nil {
			return app.Fail(err)
		}
		dcfg.Size = src
	}
	// As PID 1 (its container's init: the pod shares no process
	// namespace) every orphan in the container is this process's child, and
	// only it can reap them. This process starts no children but the hooks.
	dcfg.ReapChildren = os.Getpid() == 1
	if err := telemetry.ValidateWebConfig(cfg.webConfigFile); err != nil {
		return app.Fail(cli.Invalid("web.config.file", "%v", err))
	}
	logger := app.Logger(stderr)
	if err := serve(ctx, &cfg, dcfg, logger); err != nil {
		// discovery.New's checks of what the flags set, not caught above.
		if errors.Is(err, discovery.ErrConfig) {
			return app.Fail(err)
		}
		logger.Error("peeragent stopped", "err", err)
		return 1
	}
	return 0
}

// kubeSize builds the StatefulSet watcher of --cluster.source=kubernetes.
func (cfg *config) kubeSize(getenv func(string) string, dcfg discovery.Config) (*kubesize.Source, error) {
	ns := getenv("POD_NAMESPACE")
	if ns == "" {
		return nil, cli.Invalid("cluster.source", "kubernetes needs $POD_NAMESPACE (the downward API's metadata.namespace)")
	}
	name := cfg.statefulSet
	if name == "" {
		id, _ := discovery.ParseIdentity(dcfg.NodeName)
		name = id.Set
	}
	rc, err := kubesize.RESTConfig(cfg.kubeconfig)
	if err != nil {
		return nil, cli.Invalid("kubeconfig", "%v", err)
	}
	rc.UserAgent = "peeragent/" + version.Version
	return kubesize.New(rc, ns, name, dcfg.OrdinalStart)
}

// newRegistry is the one registry the process serves: the agent's metrics,
// build info, and Go and process metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("peeragent"),
	)
	return reg
}

// serve runs the agent and the telemetry server until ctx is done.
func serve(ctx context.Context, cfg *config, dcfg discovery.Config, logger *slog.Logger) error {
	reg := newRegistry()
	dcfg.Registerer = reg
	dcfg.Logger = logger
	agent, err := discovery.New(dcfg)
	if err != nil {
		return err
	}
	webServer, err := telemetry.Listen(telemetry.Config{
		ListenAddress: cfg.webAddr,
		WebConfigFile: cfg.webConfigFile,
		Gatherer:      reg,
		Ready:         agent.Ready,
		ReadyStatus:   agent.ReadyStatus,
		Handlers: map[string]http.Handler{
			"/members":  agent.MembersHandler(),
			"/startupz": agent.StartupHandler(),
		},
		Logger: logger.With("component", "web"),
	})
	if err != nil {
		return err
	}
	logger.Info("peeragent starting", "version", version.Info(), "node", dcfg.NodeName,
		"expected", dcfg.Expected, "size_source", cfg.sizeSource(os.Getenv), "web", webServer.Addr().String())

	// The telemetry server outlives the agent's shutdown, so /readyz reports
	// it and /metrics can be scraped until the leave is done.
	webCtx, stopWeb := context.WithCancel(context.Background())
	defer stopWeb()
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	webErr := make(chan error, 1)
	go func() {
		err := webServer.Serve(webCtx)
		stopAgent() // a telemetry server that died takes the agent down
		webErr <- err
	}()
	go func() {
		<-ctx.Done()
		logger.Info("shutting down: unready, leaving the cluster")
	}()
	runErr := agent.Run(agentCtx)
	stopWeb()
	if err := <-webErr; err != nil && runErr == nil && ctx.Err() == nil {
		runErr = err
	}
	logger.Info("peeragent stopped")
	return runErr
}
