package kube

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// apiHealth watches every request the Watcher's client makes, at the HTTP
// transport. Workaround: client-go's reflector retries some failures without
// telling its watch error handler (a refused connection or a 429 when a
// watch is reopened, an expired watch that is relisted) and logs them only
// at klog V(2)–V(4); the transport sees all of them.
//
// It also tracks whether the records are current (see Watcher.LastSynced):
// they are while every informer has a watch stream open and the last
// request did not fail.
type apiHealth struct {
	log     *slog.Logger
	metrics *metrics
	failing atomic.Bool // the last request failed
	synced  func() bool // the initial list was loaded: a later list is a relist
	want    int         // informers: the watch streams that must be open, set before the first request

	mu   sync.Mutex
	open map[string]int // open watch streams by informer (streamKey)
	// currentUntil is currentNow while the records are current, else the
	// Unix time in nanoseconds they last stopped being current (0: never
	// were). Written under mu, read without it.
	currentUntil atomic.Int64
}

// currentNow in apiHealth.currentUntil: the records are current now.
const currentNow = math.MaxInt64

// streamKey tells the informers' watches apart: the resource's path and the
// selectors.
func streamKey(req *http.Request) string {
	q := req.URL.Query()
	return req.URL.Path + "?" + q.Get("labelSelector") + "&" + q.Get("fieldSelector")
}

// streamOpened notes a watch stream opened, streamEnded one ended.
func (a *apiHealth) streamOpened(key string) { a.update(key, 1) }
func (a *apiHealth) streamEnded(key string)  { a.update(key, -1) }

// update adds delta to the open streams of key and recomputes currentUntil.
func (a *apiHealth) update(key string, delta int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open == nil {
		a.open = map[string]int{}
	}
	if delta != 0 {
		if a.open[key] += delta; a.open[key] <= 0 {
			delete(a.open, key)
		}
	}
	current := !a.failing.Load() && len(a.open) >= a.want
	switch was := a.currentUntil.Load() == currentNow; {
	case current:
		a.currentUntil.Store(currentNow)
	case was:
		a.currentUntil.Store(time.Now().UnixNano())
	}
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
			body := &observedBody{ReadCloser: resp.Body, a: a, ctx: req.Context(), verb: verb}
			if req.URL.Query().Get("watch") == "true" {
				body.stream = streamKey(req)
				a.streamOpened(body.stream)
			}
			a.contact()
			if verb == "list" && a.synced() {
				a.log.Info("relisting endpointslices")
			}
			resp.Body = body
		}
		return resp, err
	})
}

func (a *apiHealth) fail(msg, verb string, args ...any) {
	a.metrics.watchErrors.Inc()
	if !a.failing.Swap(true) {
		a.update("", 0)
	}
	a.log.Warn(msg, append([]any{"verb", verb}, args...)...)
}

// contact notes data from the API server.
func (a *apiHealth) contact() {
	a.metrics.lastEvent.Set(float64(time.Now().UnixNano()) / 1e9)
	if a.failing.CompareAndSwap(true, false) {
		a.update("", 0)
		a.log.Info("API server reachable again")
	}
}

// observedBody counts a watch stream that breaks, notes every read as
// contact (the API server sends a bookmark about once a minute on an idle
// watch) and, for a watch, when the stream ends: at the first read error
// (io.EOF included) or Close.
type observedBody struct {
	io.ReadCloser
	a      *apiHealth
	ctx    context.Context
	verb   string
	stream string // streamKey of a watch; "" for a list
	ended  atomic.Bool
	// closed is set by Close, before the body is closed: a read that then
	// fails ("read on closed response body") was ended by the client (the
	// reflector stopping a watch), not broken.
	closed atomic.Bool
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.a.contact()
	}
	if err != nil {
		if !errors.Is(err, io.EOF) && !b.closed.Load() && b.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			b.a.fail("endpointslice stream from the API server broke; reconnecting", b.verb, "err", err)
		}
		b.end()
	}
	return n, err
}

func (b *observedBody) Close() error {
	b.closed.Store(true)
	b.end()
	return b.ReadCloser.Close()
}

func (b *observedBody) end() {
	if b.stream != "" && !b.ended.Swap(true) {
		b.a.streamEnded(b.stream)
	}
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
