// Package telemetry serves the HTTP endpoints both binaries share: /metrics,
// /healthz and /readyz, plus whatever extra handlers a program adds, with
// TLS and basic auth from an exporter-toolkit web configuration file.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// Config configures a Server.
type Config struct {
	// ListenAddress is the host:port to listen on; ":0" picks a free port.
	// There is no default: callers pass their own.
	ListenAddress string
	// WebConfigFile is the path of an exporter-toolkit web configuration
	// file (TLS, basic auth, HTTP headers), the --web.config.file of the
	// Prometheus family. It applies to every path, the probes included.
	// The file is re-read on every TLS handshake and every request's
	// authentication. Empty: plain HTTP, no authentication.
	WebConfigFile string
	// Gatherer is served on /metrics.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz: nil means ready. A nil func is
	// always ready.
	Ready func() error
	// ReadyStatus, when set, is appended to the body of a ready /readyz
	// ("ok: <status>"). Default nil: the body is "ok".
	ReadyStatus func() string
	// Handlers are extra paths to serve (for example "/members").
	Handlers map[string]http.Handler
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// Server is the telemetry HTTP server.
type Server struct {
	cfg Config
	srv *http.Server
	ln  net.Listener
}

// ValidateWebConfig checks the web configuration file at path: that it
// parses and that the files it names load. An empty path is valid.
func ValidateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	return web.Validate(path)
}

// Listen checks the web configuration file and binds the address, so
// callers know the port before serving.
func Listen(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := ValidateWebConfig(cfg.WebConfigFile); err != nil {
		return nil, fmt.Errorf("web config file: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("web: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
	}))
	// Liveness never depends on the API server or on peers: an outage
	// must not turn into a restart storm.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		if cfg.ReadyStatus != nil {
			_, _ = fmt.Fprintln(w, "ok: "+cfg.ReadyStatus())
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	for path, h := range cfg.Handlers {
		mux.Handle(path, h)
	}
	return &Server{
		cfg: cfg,
		ln:  ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	noSystemd := false
	flags := &web.FlagConfig{
		WebListenAddresses: &[]string{s.cfg.ListenAddress},
		WebSystemdSocket:   &noSystemd,
		WebConfigFile:      &s.cfg.WebConfigFile,
	}
	errc := make(chan error, 1)
	go func() { errc <- web.Serve(s.ln, s.srv, flags, s.cfg.Logger) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	// ctx is already done; shut down on a fresh context so in-flight
	// scrapes and probes can finish, but never wait forever.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("web: shutdown: %w", err)
	}
	return nil
}
