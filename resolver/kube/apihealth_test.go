package kube

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAPIServerGoneIsVisible: once synced, an API server that goes away
// leaves client-go retrying the watch on a refused connection, which it logs
// only at klog V(4). peerdns must say so at the default level and count it,
// and its last-event timestamp must stop moving.
func TestAPIServerGoneIsVisible(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") != "true" {
			fmt.Fprint(w, `{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"1"},"items":[]}`)
			return
		}
		w.WriteHeader(http.StatusOK)
		if r.URL.Query().Get("sendInitialEvents") == "true" {
			// A streaming list (client-go's WatchListClient): no slices,
			// then the bookmark that ends the initial events.
			fmt.Fprintln(w, `{"type":"BOOKMARK","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"1","annotations":{"k8s.io/initial-events-end":"true"}}}}`)
		}
		w.(http.Flusher).Flush()
		select { // an idle watch, until the server goes away
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	sink := newRecordingSink()
	w, err := New(Config{
		RESTConfig: &rest.Config{Host: srv.URL},
		Sink:       sink,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)), // the default level, Info
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	if v := testutil.ToFloat64(w.metrics.lastEvent); v <= 0 {
		t.Errorf("peerdns_kube_last_event_timestamp_seconds = %v after the list, want the time of it", v)
	}
	close(release)
	srv.CloseClientConnections()
	srv.Close() // from now on every request is refused
	stale := testutil.ToFloat64(w.metrics.lastEvent)

	waitUntil(t, "a watch error counted", func() bool { return testutil.ToFloat64(w.metrics.watchErrors) >= 1 })
	// The refused reconnection, which client-go itself logs only at V(4).
	waitUntil(t, "a warning about the refused connection", func() bool {
		return strings.Contains(logs.String(), `level=WARN msg="request to the API server failed; answering from the last known state"`)
	})
	if v := testutil.ToFloat64(w.metrics.lastEvent); v != stale {
		t.Errorf("last event timestamp moved from %v to %v with the API server gone", stale, v)
	}
}

// TestClientGoLevels: klog's verbosity levels reach slog as Debug, not as
// levels between Debug and Info ("DEBUG+2").
func TestClientGoLevels(t *testing.T) {
	var logs lockedBuffer
	LogClientGo(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { klog.ClearLogger() })
	logger := klog.Background()
	logger.V(2).Info("verbose two")
	logger.V(4).Info("verbose four")
	logger.Info("plain")
	logger.Error(nil, "broken")
	klog.Flush()
	out := logs.String()
	for _, want := range []string{`level=DEBUG msg="verbose two"`, `level=DEBUG msg="verbose four"`, "level=INFO msg=plain", "level=ERROR msg=broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DEBUG+") {
		t.Errorf("klog levels leak into slog:\n%s", out)
	}
}
