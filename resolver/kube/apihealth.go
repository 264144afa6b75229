package kube

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// apiHealth watches every request the Watcher's client makes, at the HTTP
// transport. Workaround: client-go's reflector retries some failures without
// telling its watch error handler (a refused connection or a 429 when a
// watch is reopened, an expired watch that is relisted) and logs them only
// at klog V(2)–V(4); the transport sees all of them.
type apiHealth struct {
	log     *slog.Logger
	metrics *metrics
	failing atomic.Bool // the last request failed
	synced  func() bool // the initial list was loaded: a later list is a relist
}

// wrap is a rest.Config WrapTransport.
func (a *apiHealth) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		verb := "list"
		if q := req.URL.Query(); q.Get("watch") == "true" && q.Get("sendInitialEvents") != "true" {
			verb = "watch" // a watch with initial events is a (streaming) list
		}
		switch {
		case err != nil:
			if req.Context().Err() == nil { // not our own shutdown
				a.fail("request to the API server failed; answering from the last known state", verb, "err", err)
			}
		case resp.StatusCode == http.StatusGone:
			a.log.Info("endpointslice watch expired, relisting", "verb", verb)
		case resp.StatusCode >= 400:
			a.fail("API server refused the request; answering from the last known state", verb, "status", resp.Status)
		default:
			a.contact()
			if verb == "list" && a.synced() {
				a.log.Info("relisting endpointslices")
			}
			resp.Body = &observedBody{ReadCloser: resp.Body, a: a, ctx: req.Context(), verb: verb}
		}
		return resp, err
	})
}

func (a *apiHealth) fail(msg, verb string, args ...any) {
	a.metrics.watchErrors.Inc()
	a.failing.Store(true)
	a.log.Warn(msg, append([]any{"verb", verb}, args...)...)
}

// contact notes data from the API server.
func (a *apiHealth) contact() {
	a.metrics.lastEvent.Set(float64(time.Now().UnixNano()) / 1e9)
	if a.failing.CompareAndSwap(true, false) {
		a.log.Info("API server reachable again")
	}
}

// observedBody counts a watch stream that breaks, and notes every read as
// contact (the API server sends a bookmark about once a minute on an idle
// watch).
type observedBody struct {
	io.ReadCloser
	a    *apiHealth
	ctx  context.Context
	verb string
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.a.contact()
	}
	if err != nil && !errors.Is(err, io.EOF) && b.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		b.a.fail("endpointslice stream from the API server broke; reconnecting", b.verb, "err", err)
	}
	return n, err
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// LogClientGo sends client-go's klog output to logger. klog's verbosity
// levels would otherwise reach slog as levels between Debug and Info
// ("DEBUG+2"); every V(n) line, n ≥ 1, is logged at Debug. Failures that
// matter are reported by the Watcher itself at Warn.
func LogClientGo(logger *slog.Logger) {
	klog.SetSlogLogger(slog.New(klogLevels{logger.Handler()}))
}

// klogLevels maps the levels between Debug and Info to Debug.
type klogLevels struct{ slog.Handler }

func (h klogLevels) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, mapKlogLevel(l))
}

func (h klogLevels) Handle(ctx context.Context, r slog.Record) error {
	r.Level = mapKlogLevel(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h klogLevels) WithAttrs(as []slog.Attr) slog.Handler {
	return klogLevels{h.Handler.WithAttrs(as)}
}

func (h klogLevels) WithGroup(name string) slog.Handler { return klogLevels{h.Handler.WithGroup(name)} }

func mapKlogLevel(l slog.Level) slog.Level {
	if l < slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
