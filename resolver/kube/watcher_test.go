package kube

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

var slicesGVR = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

// fakeCluster is client-go's fake clientset with its watches observed: the
// fake drops changes made between its list and its watch
// (kubernetes/kubernetes#95372), so tests change objects only once a watch
// is open.
type fakeCluster struct {
	client *fake.Clientset

	mu      sync.Mutex
	lists   []metav1.ListOptions
	watches int
	opened  chan struct{} // capacity 1: a watch was opened
	// next, when set, is returned to the next watch instead of the
	// tracker's, so the test controls every event the informer sees.
	next *watch.RaceFreeFakeWatcher
}

func newFakeCluster(objs ...runtime.Object) *fakeCluster {
	c := &fakeCluster{client: fake.NewClientset(objs...), opened: make(chan struct{}, 1)}
	c.client.PrependReactor("list", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		c.lists = append(c.lists, a.(k8stesting.ListActionImpl).ListOptions)
		c.mu.Unlock()
		return false, nil, nil
	})
	c.client.PrependWatchReactor("endpointslices", func(a k8stesting.Action) (bool, watch.Interface, error) {
		wa := a.(k8stesting.WatchActionImpl)
		c.mu.Lock()
		defer c.mu.Unlock()
		var w watch.Interface = c.next
		if c.next != nil {
			c.next = nil
		} else {
			var err error
			w, err = c.client.Tracker().Watch(slicesGVR, wa.GetNamespace(), wa.ListOptions)
			if err != nil {
				return true, nil, err
			}
		}
		c.watches++
		select {
		case c.opened <- struct{}{}:
		default:
		}
		return true, w, nil
	})
	return c
}

// fakeSlices is the fake's EndpointSlice client, which (as the fake
// clientset) cannot stream lists.
type fakeSlices struct {
	discoveryv1client.EndpointSliceInterface
}

func (fakeSlices) IsWatchListSemanticsUnSupported() bool { return true }

// slices is the Watcher's Client for namespace ("" for all).
func (c *fakeCluster) slices(namespace string) SliceClient {
	return fakeSlices{c.client.DiscoveryV1().EndpointSlices(namespace)}
}

// waitWatch waits until at least n watches have been opened.
func (c *fakeCluster) waitWatch(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got := c.watches
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.opened:
		case <-deadline.C:
			t.Fatalf("timed out waiting for watch %d; %d opened", n, got)
		}
	}
}

func (c *fakeCluster) create(t *testing.T, s sliceSpec) {
	t.Helper()
	if _, err := c.client.DiscoveryV1().EndpointSlices(s.namespace).Create(context.Background(), s.build(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (c *fakeCluster) update(t *testing.T, s sliceSpec) {
	t.Helper()
	if _, err := c.client.DiscoveryV1().EndpointSlices(s.namespace).Update(context.Background(), s.build(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (c *fakeCluster) delete(t *testing.T, namespace, name string) {
	t.Helper()
	if err := c.client.DiscoveryV1().EndpointSlices(namespace).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// runWatcher starts a Watcher on client and stops it when the test ends.
func runWatcher(t *testing.T, cfg Config) (*Watcher, *recordingSink, *prometheus.Registry) {
	t.Helper()
	sink := newRecordingSink()
	reg := prometheus.NewRegistry()
	cfg.Sink, cfg.Registerer = sink, reg
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return w, sink, reg
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestWatcherInitialListThenSynced(t *testing.T) {
	http := namedPort("http", corev1.ProtocolTCP, 80)
	c := newFakeCluster(
		sliceSpec{namespace: "ns", name: "web-a", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}.build(),
		sliceSpec{namespace: "ns", name: "web-b", service: "web", addressType: discoveryv1.AddressTypeIPv6, ports: ports(http), endpoints: endpoints(readyEP("web-0", "fd00::1"))}.build(),
		sliceSpec{namespace: "other", name: "db-a", service: "db", endpoints: endpoints(readyEP("db-0", "10.1.0.1"))}.build(),
		sliceSpec{namespace: "ns", name: "orphan", endpoints: endpoints(readyEP("x", "10.9.0.1"))}.build(),
	)
	w, sink, _ := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)

	want := map[string]string{
		"ns/web":   "ports=http/tcp/80 eps=web-0[10.0.0.1,fd00::1]",
		"other/db": "ports= eps=db-0[10.1.0.1]",
	}
	got := sink.snapshot()
	if !maps2Equal(got, want) {
		t.Errorf("services after sync = %v, want %v", got, want)
	}
	// SetSynced comes last, after every service of the initial list: an
	// earlier one would let the resolver answer NXDOMAIN for them.
	calls := sink.callLog()
	synced := slices.Index(calls, "synced")
	if synced != len(calls)-1 {
		t.Errorf("calls = %v, want synced last", calls)
	}
	for k := range want {
		if i := slices.Index(calls, "upsert "+k); i < 0 || i > synced {
			t.Errorf("calls = %v, want upsert %s before synced", calls, k)
		}
	}
	if v := testutil.ToFloat64(w.metrics.synced); v != 1 {
		t.Errorf("peerdns_kube_synced = %v, want 1", v)
	}

	// The watch is server-side filtered to the slices of headless services.
	c.mu.Lock()
	lists := slices.Clone(c.lists)
	c.mu.Unlock()
	if len(lists) == 0 || lists[0].LabelSelector != labelHeadless {
		t.Errorf("list options = %+v, want label selector %q", lists, labelHeadless)
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestWatcherFollowsChanges(t *testing.T) {
	c := newFakeCluster()
	_, sink, _ := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	c.waitWatch(t, 1)

	http := namedPort("http", corev1.ProtocolTCP, 80)
	a := sliceSpec{namespace: "ns", name: "web-a", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}
	b := sliceSpec{namespace: "ns", name: "web-b", service: "web", ports: ports(http), endpoints: endpoints(readyEP("web-1", "10.0.0.2"))}

	t.Run("add", func(t *testing.T) {
		c.create(t, a)
		sink.waitService(t, "ns/web", "ports=http/tcp/80 eps=web-0[10.0.0.1]")
	})
	t.Run("add a second slice", func(t *testing.T) {
		c.create(t, b)
		sink.waitService(t, "ns/web", "ports=http/tcp/80 eps=web-0[10.0.0.1],web-1[10.0.0.2]")
	})
	t.Run("endpoint starts terminating", func(t *testing.T) {
		b.endpoints = endpoints(endpointSpec{hostname: "web-1", addrs: []string{"10.0.0.2"}, ready: ptr(false), terminating: ptr(true)}.build())
		c.update(t, b)
		sink.waitService(t, "ns/web", "ports=http/tcp/80 eps=web-0[10.0.0.1],web-1[10.0.0.2]!")
	})
	t.Run("delete one slice", func(t *testing.T) {
		c.delete(t, "ns", "web-b")
		sink.waitService(t, "ns/web", "ports=http/tcp/80 eps=web-0[10.0.0.1]")
	})
	t.Run("delete the last slice deletes the service", func(t *testing.T) {
		c.delete(t, "ns", "web-a")
		sink.waitService(t, "ns/web", "")
		if calls := sink.callLog(); calls[len(calls)-1] != "delete ns/web" {
			t.Errorf("last call = %q, want delete ns/web (calls %v)", calls[len(calls)-1], calls)
		}
	})
	t.Run("slice without service-name label is ignored", func(t *testing.T) {
		c.create(t, sliceSpec{namespace: "ns", name: "orphan", endpoints: endpoints(readyEP("x", "10.9.0.1"))})
		c.create(t, sliceSpec{namespace: "ns", name: "marker-a", service: "marker", endpoints: endpoints(readyEP("m", "10.8.0.1"))})
		// Events are handled in order: once the later slice shows, the
		// orphan has been seen and ignored.
		sink.waitService(t, "ns/marker", "ports= eps=m[10.8.0.1]")
		if got := sortedKeys(sink.snapshot()); !slices.Equal(got, []string{"ns/marker"}) {
			t.Errorf("services = %v, want [ns/marker]", got)
		}
	})
	t.Run("slice moved to another service", func(t *testing.T) {
		c.update(t, sliceSpec{namespace: "ns", name: "marker-a", service: "moved", endpoints: endpoints(readyEP("m", "10.8.0.1"))})
		sink.waitService(t, "ns/moved", "ports= eps=m[10.8.0.1]")
		sink.waitService(t, "ns/marker", "")
	})
}

// TestWatcherIgnoresChangesDNSDoesNotUse updates a slice in fields the
// transform drops (pod status churn): the Sink hears nothing of it.
func TestWatcherIgnoresChangesDNSDoesNotUse(t *testing.T) {
	s := sliceSpec{namespace: "ns", name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}
	c := newFakeCluster(s.build())
	_, sink, _ := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	c.waitWatch(t, 1)
	changes := sink.changeCount()

	churned := s.build()
	churned.Endpoints[0].NodeName = ptr("node-2")
	churned.Endpoints[0].Conditions.Serving = ptr(false)
	churned.Annotations = map[string]string{"example.com/touched": "yes"}
	if _, err := c.client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(), churned, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Events are handled in order: once the marker shows, the churn was seen.
	c.create(t, sliceSpec{namespace: "ns", name: "marker-a", service: "marker", endpoints: endpoints(readyEP("m", "10.8.0.1"))})
	sink.waitService(t, "ns/marker", "ports= eps=m[10.8.0.1]")
	if got := sink.changesSince(changes); len(got) != 1 {
		t.Errorf("changes = %v, want only the marker's", got)
	}
}

func TestWatcherNamespace(t *testing.T) {
	c := newFakeCluster(
		sliceSpec{namespace: "ns", name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}.build(),
		sliceSpec{namespace: "other", name: "db-a", service: "db", endpoints: endpoints(readyEP("db-0", "10.1.0.1"))}.build(),
	)
	_, sink, _ := runWatcher(t, Config{Client: c.slices("ns"), Namespace: "ns"})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	if got := sortedKeys(sink.snapshot()); !slices.Equal(got, []string{"ns/web"}) {
		t.Errorf("services = %v, want only ns/web", got)
	}
}

// TestWatcherRelistDeletesWhatVanished expires the watch (410 Gone) after a
// slice was deleted without the watch seeing it: the relist must delete it
// through a DeletedFinalStateUnknown tombstone.
func TestWatcherRelistDeletesWhatVanished(t *testing.T) {
	keep := sliceSpec{namespace: "ns", name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}
	gone := sliceSpec{namespace: "ns", name: "web-b", service: "web", endpoints: endpoints(readyEP("web-1", "10.0.0.2"))}
	lone := sliceSpec{namespace: "ns", name: "db-a", service: "db", endpoints: endpoints(readyEP("db-0", "10.1.0.1"))}
	c := newFakeCluster(keep.build(), gone.build(), lone.build())
	fw := watch.NewRaceFreeFake()
	c.next = fw
	w, sink, _ := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	c.waitWatch(t, 1)

	// Changed behind the informer's back: its watch is fw, which stays silent.
	for _, s := range []sliceSpec{gone, lone} {
		if err := c.client.Tracker().Delete(slicesGVR, s.namespace, s.name); err != nil {
			t.Fatal(err)
		}
	}
	deletesBefore := testutil.ToFloat64(w.metrics.deletes)
	fw.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)

	d := sink.waitService(t, "ns/web", "ports= eps=web-0[10.0.0.1]")
	sink.waitService(t, "ns/db", "")
	t.Logf("relist applied %v after the 410", d)
	if got := testutil.ToFloat64(w.metrics.deletes) - deletesBefore; got != 2 {
		t.Errorf("delete events after relist = %v, want 2", got)
	}
	// The service that kept a slice was never deleted on the way.
	for _, call := range sink.callLog() {
		if call == "delete ns/web" {
			t.Errorf("ns/web was deleted during the relist; calls %v", sink.callLog())
		}
	}
}

// TestWatcherTombstoneOfUnknownObject covers a tombstone that holds no
// slice: the Watcher cannot tell which service lost a slice and rebuilds
// them all.
func TestWatcherTombstoneOfUnknownObject(t *testing.T) {
	s := sliceSpec{namespace: "ns", name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}
	c := newFakeCluster(s.build())
	w, sink, _ := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)

	obj, ok, err := w.informer.GetIndexer().GetByKey("ns/web-a")
	if err != nil || !ok {
		t.Fatalf("slice not in cache: %v %v", ok, err)
	}
	if err := w.informer.GetIndexer().Delete(obj); err != nil {
		t.Fatal(err)
	}
	handler{w}.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web-a", Obj: "not a slice"})
	sink.waitService(t, "ns/web", "")
}

func TestWatcherMetrics(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	s := sliceSpec{namespace: "ns", name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.0.0.1")), triggerTime: old}
	c := newFakeCluster(s.build())
	w, sink, reg := runWatcher(t, Config{Client: c.slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	c.waitWatch(t, 1)

	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	hist := func() uint64 { return histogramCount(t, w.metrics.programming) }
	if n := hist(); n != 0 {
		t.Errorf("programming latency observed %d times for the initial list, want 0", n)
	}

	// A change with a new trigger time is measured once it is in the Sink.
	s.endpoints = endpoints(readyEP("web-0", "10.0.0.1"), readyEP("web-1", "10.0.0.2"))
	s.triggerTime = time.Now()
	c.update(t, s)
	sink.waitService(t, "ns/web", "ports= eps=web-0[10.0.0.1],web-1[10.0.0.2]")
	waitUntil(t, "histogram observed", func() bool { return hist() == 1 })

	// A change without a new trigger time is served but not measured.
	s.endpoints = endpoints(readyEP("web-0", "10.0.0.1"))
	c.update(t, s)
	sink.waitService(t, "ns/web", "ports= eps=web-0[10.0.0.1]")
	if n := hist(); n != 1 {
		t.Errorf("histogram count = %d after an update with the same trigger time, want 1", n)
	}

	if got := testutil.ToFloat64(w.metrics.adds); got != 1 {
		t.Errorf("add events = %v, want 1", got)
	}
	if got := testutil.ToFloat64(w.metrics.updates); got != 2 {
		t.Errorf("update events = %v, want 2", got)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no client", cfg: Config{Sink: newRecordingSink()}},
		{name: "no sink", cfg: Config{Client: newFakeCluster().slices("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	w, sink, _ := runWatcher(t, Config{Client: newFakeCluster().slices("")})
	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run succeeded, want an error")
	}
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// waitUntil polls cond, which has no change notification, until it holds
// or a deadline passes.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// TestWatcherSyncedAfterLastInitialEvent forces the interleaving where the
// last event of the initial list is queued, and Run requests SetSynced, while
// the worker is between draining its queue and deciding to call SetSynced.
// The service of that event must still reach the Sink before SetSynced.
func TestWatcherSyncedAfterLastInitialEvent(t *testing.T) {
	c := newFakeCluster()
	sink := newRecordingSink()
	w, err := New(Config{Client: c.slices(""), Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	late := sliceSpec{namespace: "ns", name: "web-a", service: "web", endpoints: endpoints(readyEP("web-0", "10.0.0.1"))}.build()
	if err := w.informer.GetIndexer().Add(late); err != nil {
		t.Fatal(err)
	}
	first := true
	w.testHookDrained = func() {
		if !first {
			return
		}
		first = false
		// What the informer's goroutine and Run do: the last initial event
		// is handled, then the informer reports synced.
		handler{w}.OnAdd(late, true)
		w.syncRequested.Store(true)
		w.signal()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.work(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w.signal() // the worker wakes with an empty queue

	sink.waitFor(t, "synced", (*recordingSink).isSynced)
	calls := sink.callLog()
	if want := []string{"upsert ns/web", "synced"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v: SetSynced before the service would answer NXDOMAIN for it", calls, want)
	}
}
