package kube

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"
)

// fakeAPIServer serves an empty EndpointSlice list and idle watches, which
// the test can end, and can refuse every request with 503.
type fakeAPIServer struct {
	*httptest.Server
	down     atomic.Bool
	expire   atomic.Bool   // the next watch sends an expiry error, then stays open
	watching chan struct{} // capacity 1: a watch stream was opened

	mu      sync.Mutex
	release chan struct{} // closed to end the open watches
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	s := &fakeAPIServer{watching: make(chan struct{}, 1), release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.endWatches()
		s.Close()
	})
	return s
}

func (s *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}`)
		return
	}
	if r.URL.Query().Get("watch") != "true" {
		fmt.Fprint(w, `{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"1"},"items":[]}`)
		return
	}
	s.mu.Lock()
	release := s.release
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	if r.URL.Query().Get("sendInitialEvents") == "true" {
		// A streaming list: no slices, then the end of the initial events.
		fmt.Fprintln(w, `{"type":"BOOKMARK","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"1","annotations":{"k8s.io/initial-events-end":"true"}}}}`)
	}
	if s.expire.CompareAndSwap(true, false) {
		// As an API server whose watch cache no longer has the resource
		// version: the error as an event. The client ends the watch.
		fmt.Fprintln(w, `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.(http.Flusher).Flush()
	select {
	case s.watching <- struct{}{}:
	default:
	}
	select { // idle: nothing more, not even a bookmark
	case <-release:
	case <-r.Context().Done():
	}
}

// endWatches ends the open watch streams cleanly, as an API server does.
func (s *fakeAPIServer) endWatches() {
	s.mu.Lock()
	close(s.release)
	s.release = make(chan struct{})
	s.mu.Unlock()
}

// TestLastSynced: an open watch is current however long it carries nothing;
// once the watch ends and every request fails, LastSynced stays at the time
// it ended; once a watch is open again it is current again.
func TestLastSynced(t *testing.T) {
	api := newFakeAPIServer(t)
	w, sink, _ := runWatcher(t, Config{RESTConfig: &rest.Config{Host: api.URL}})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	age := func() time.Duration { return time.Since(w.LastSynced()) }

	<-api.watching
	// Longer than any processing delay, far shorter than the API server's
	// bookmark interval: time passes with nothing read.
	const idle = 300 * time.Millisecond
	time.Sleep(idle)
	if a := age(); a > idle/3 {
		t.Errorf("after %v of an open, idle watch LastSynced is %v old, want about now", idle, a)
	}

	api.down.Store(true)
	broke := time.Now()
	api.endWatches()
	waitUntil(t, "a failed request", func() bool { return testutil.ToFloat64(w.metrics.watchErrors) >= 1 })
	at := w.LastSynced()
	if at.Before(broke) || at.After(time.Now()) {
		t.Errorf("with the API server down, LastSynced = %v, want the time the watch ended, after %v", at, broke)
	}
	errs := testutil.ToFloat64(w.metrics.watchErrors)
	waitUntil(t, "a retry failed", func() bool { return testutil.ToFloat64(w.metrics.watchErrors) > errs })
	if got := w.LastSynced(); !got.Equal(at) {
		t.Errorf("LastSynced moved from %v to %v while every request failed", at, got)
	}

	api.down.Store(false)
	waitUntil(t, "current again", func() bool { return age() < idle/3 && time.Since(at) > idle/3 })
	<-api.watching
	if a := age(); a > idle/3 {
		t.Errorf("watch open again, LastSynced %v old, want about now", a)
	}
}

// TestLastSyncedFakeClient: with a client the Watcher cannot observe,
// LastSynced is zero before the sync and now after it.
func TestLastSyncedFakeClient(t *testing.T) {
	c := newFakeCluster()
	w, err := New(Config{Client: c.slices(""), Sink: newRecordingSink()})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.LastSynced(); !got.IsZero() {
		t.Errorf("before Run: LastSynced = %v, want the zero time", got)
	}
	w, sink, _ := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	if a := time.Since(w.LastSynced()); a < 0 || a > time.Second {
		t.Errorf("after the sync LastSynced is %v old, want now", a)
	}
}

// TestLastSyncedAfterExpiry: a watch the client ends itself (here after an
// expiry error, which is followed by a relist) is no failure: once the new
// watch is open the records are current, with nothing read on it.
func TestLastSyncedAfterExpiry(t *testing.T) {
	api := newFakeAPIServer(t)
	w, sink, _ := runWatcher(t, Config{RESTConfig: &rest.Config{Host: api.URL}})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	<-api.watching
	api.expire.Store(true)
	api.endWatches() // the next watch is the one that expires
	waitUntil(t, "the expiring watch", func() bool { return !api.expire.Load() })
	<-api.watching // the watch after the relist
	const idle = 300 * time.Millisecond
	time.Sleep(idle) // time passes with nothing read
	if a := time.Since(w.LastSynced()); a > idle/3 {
		t.Errorf("new watch open for %v after an expiry, LastSynced %v old, want about now", idle, a)
	}
	if n := testutil.ToFloat64(w.metrics.watchErrors); n != 0 {
		t.Errorf("peerdns_kube_watch_errors_total = %v, want 0: nothing failed", n)
	}
}
