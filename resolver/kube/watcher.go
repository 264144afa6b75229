// Package kube feeds the resolver from Kubernetes. It watches the
// discovery.k8s.io/v1 EndpointSlices of headless services, merges the slices
// of each service into one resolver.Service and writes it to a Sink (the
// resolver's *Store). It is the only package that knows EndpointSlices.
//
// It needs RBAC for list and watch on endpointslices (API group
// discovery.k8s.io), cluster-wide or in Config.Namespace, and by default
// nothing more: the slices of headless services are selected on the server
// by the service.kubernetes.io/headless label, and the service of a slice is
// read from its kubernetes.io/service-name label, so no Service or Namespace
// is read. The endpointslice controller sets the headless label, but only on
// the slices of Services with a selector: the slices of a selectorless
// headless Service, written by a user or another controller, are served
// only with Config.ReadServices, which also needs list and watch on services
// (core API group).
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/peerdns/peerdns/resolver"
)

// Sink receives the services a Watcher builds. *resolver.Store implements it.
//
// A Watcher calls its Sink from one goroutine at a time, never concurrently,
// and waits for each call to return: a slow Sink delays later changes, which
// are then coalesced (only the latest state of a service is written).
type Sink interface {
	// Upsert replaces everything known of svc.Namespace/svc.Name. The Watcher
	// does not touch svc after the call.
	Upsert(svc resolver.Service)
	// Delete forgets a service whose last slice is gone. It is only called
	// for services given to Upsert before.
	Delete(namespace, name string)
	// SetSynced is called once, after the Upserts of every service that
	// existed when the watch started: from then on the Sink holds a complete
	// state and may answer that a name does not exist.
	SetSynced()
}

// Config configures a Watcher.
type Config struct {
	// RESTConfig configures the client the Watcher builds, wrapping its
	// transport to see every failed request (peerdns_kube_watch_errors_total,
	// warnings in the log) and every response
	// (peerdns_kube_last_event_timestamp_seconds). Build it with RESTConfig,
	// which selects protobuf and sets the user agent. Required unless Client
	// is set.
	RESTConfig *rest.Config

	// Client, when set, is used instead of building one from RESTConfig
	// (tests use a fake), and must be scoped to Namespace. Failures it
	// retries by itself are then neither counted nor logged. A Client that
	// cannot stream lists (client-go's fakes) says so with a method
	// IsWatchListSemanticsUnSupported() bool returning true.
	Client SliceClient

	// Sink receives the merged services. Required.
	Sink Sink

	// Namespace restricts the watch to one namespace. Default "": all
	// namespaces, which needs a ClusterRole; a single namespace needs only a
	// Role there.
	Namespace string

	// ReadServices also watches the headless Services (spec.clusterIP None)
	// and the slices that have a service-name label but no headless label
	// and are not the endpointslice controller's, and serves those slices
	// when their Service is headless. Default false: only slices with the
	// headless label are watched and served.
	ReadServices bool

	// ServiceClient, with ReadServices, is used instead of building one
	// from RESTConfig, as Client is; it must be set when Client is, and
	// must honor the field selector spec.clusterIP=None (client-go's fakes
	// do not).
	ServiceClient ServiceClient

	// Logger receives the Watcher's logs, with component=kube added.
	// Per-event lines are at Debug; failed requests to the API server at
	// Warn, relists and recovery at Info. Default: discard.
	Logger *slog.Logger

	// Registerer registers the Watcher's metrics
	// (peerdns_kube_watch_events_total, peerdns_kube_synced,
	// peerdns_kube_watch_errors_total,
	// peerdns_kube_last_event_timestamp_seconds,
	// peerdns_dns_programming_duration_seconds). Default nil: the metrics are
	// kept but not registered.
	Registerer prometheus.Registerer
}

// Watcher watches EndpointSlices and keeps a Sink up to date. Create it with
// New and start it with Run.
//
// Changes flow from the informer's event handler, which only notes which
// services changed, to one worker goroutine, which rebuilds each changed
// service from the informer's cache and writes it to the Sink. A burst of
// slice events for one service (the initial list, a rollout) therefore
// costs one merge and one Upsert, not one per slice.
type Watcher struct {
	sink      Sink
	log       *slog.Logger
	metrics   *metrics
	namespace string

	informer cache.SharedIndexInformer
	// With ReadServices: the slices without the headless label
	// (selectUnlabelled) and the headless Services; nil otherwise.
	unlabelled      cache.SharedIndexInformer
	services        cache.SharedIndexInformer
	informersSynced []cache.InformerSynced // every informer's handler

	mu        sync.Mutex
	dirty     map[serviceKey][]time.Time // changed services → trigger times to observe
	resyncAll bool                       // a delete could not be attributed to a service
	wake      chan struct{}              // capacity 1: "dirty is not empty"

	running       atomic.Bool
	syncRequested atomic.Bool // the informer has synced and delivered its initial events

	// Owned by the worker goroutine.
	known map[serviceKey]struct{} // services given to the Sink and not deleted
	start time.Time

	synced   atomic.Bool  // SetSynced was called (written by the worker only)
	syncedAt atomic.Int64 // when, in Unix nanoseconds; 0 before

	// health observes the client's requests; nil with Config.Client.
	health *apiHealth

	// testHookDrained, when set, runs on the worker after each drain of
	// the queue: tests use it to interleave events with the worker.
	testHookDrained func()
}

// listWatch is a ListWatch calling list and watchFn with the label and
// field selectors set on every request.
func listWatch[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error), labels, fields string) *cache.ListWatch {
	sel := func(o *metav1.ListOptions) { o.LabelSelector, o.FieldSelector = labels, fields }
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			sel(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			sel(&o)
			return watchFn(ctx, o)
		},
	}
}

// newInformer sets up an informer with resync 0 (the informer's cache is
// the truth between watch events; periodic resyncs would only rebuild
// unchanged services), its transform, the watch error handler and h.
func (w *Watcher) newInformer(lw *cache.ListWatch, client any, obj runtime.Object, indexers cache.Indexers, transform cache.TransformFunc, what string, h cache.ResourceEventHandler) (cache.SharedIndexInformer, error) {
	inf := cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(lw, client), obj,
		cache.SharedIndexInformerOptions{Indexers: indexers},
	)
	if err := inf.SetTransform(transform); err != nil {
		return nil, fmt.Errorf("kube: set transform: %w", err)
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) { w.watchError(what, err) }); err != nil {
		return nil, fmt.Errorf("kube: set watch error handler: %w", err)
	}
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		return nil, fmt.Errorf("kube: add event handler: %w", err)
	}
	w.informersSynced = append(w.informersSynced, reg.HasSynced)
	return inf, nil
}

// New checks cfg and sets up the informers. Nothing talks to the API server
// before Run.
func New(cfg Config) (*Watcher, error) {
	if cfg.Client == nil && cfg.RESTConfig == nil {
		return nil, errors.New("kube: Config.Client and Config.RESTConfig are nil")
	}
	if cfg.Sink == nil {
		return nil, errors.New("kube: Config.Sink is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		sink:      cfg.Sink,
		log:       log.With("component", "kube"),
		metrics:   newMetrics(cfg.Registerer),
		namespace: cfg.Namespace,
		dirty:     map[serviceKey][]time.Time{},
		wake:      make(chan struct{}, 1),
		known:     map[serviceKey]struct{}{},
	}
	if cfg.ReadServices && cfg.Client != nil && cfg.ServiceClient == nil {
		return nil, errors.New("kube: Config.ReadServices with Config.Client needs Config.ServiceClient")
	}
	// Clients of their own for discovery/v1 and core/v1 only (see
	// restLister): the generated clients would link every built-in API
	// group.
	api, services := cfg.Client, cfg.ServiceClient
	if api == nil {
		health := &apiHealth{log: w.log, metrics: w.metrics, synced: w.synced.Load}
		w.health = health
		rc := rest.CopyConfig(cfg.RESTConfig)
		rc.Wrap(health.wrap)
		c, err := newRESTSlices(rc, cfg.Namespace)
		if err != nil {
			return nil, fmt.Errorf("kube: client: %w", err)
		}
		api = c
		if cfg.ReadServices {
			if services, err = newRESTServices(rc, cfg.Namespace); err != nil {
				return nil, fmt.Errorf("kube: client: %w", err)
			}
		}
	}
	bySvc := cache.Indexers{serviceIndex: indexByService}
	var err error
	w.informer, err = w.newInformer(listWatch(api.List, api.Watch, labelHeadless, ""), api, &discoveryv1.EndpointSlice{}, bySvc, leanSlice, "endpointslices", handler{w})
	if err != nil {
		return nil, err
	}
	if cfg.ReadServices {
		w.unlabelled, err = w.newInformer(listWatch(api.List, api.Watch, selectUnlabelled, ""), api, &discoveryv1.EndpointSlice{}, bySvc, leanSlice, "endpointslices", handler{w})
		if err != nil {
			return nil, err
		}
		w.services, err = w.newInformer(listWatch(services.List, services.Watch, "", selectHeadlessServices), services, &corev1.Service{}, nil, leanService, "services", serviceHandler{w})
		if err != nil {
			return nil, err
		}
	}
	if w.health != nil {
		w.health.want = len(w.informersSynced) // one watch per informer
	}
	return w, nil
}

// Run watches until ctx is done, then stops the watch and returns nil. It
// calls the Sink's SetSynced once the initial list has been written to the
// Sink; until then the resolver answers SERVFAIL rather than NXDOMAIN.
//
// When the API server is unreachable, Run keeps retrying with backoff and
// leaves the Sink as it is, so answers keep coming from the last known
// state. When a watch expires (410 Gone), the informer relists and Run
// applies the difference, deletions included, without clearing the Sink.
//
// Run may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("kube: Watcher.Run called twice")
	}
	w.start = time.Now()
	ns := w.namespace
	if ns == "" {
		ns = "(all)"
	}
	w.log.Info("watching endpointslices", "namespace", ns, "label_selector", labelHeadless)
	if w.services != nil {
		w.log.Info("watching headless services and their unlabelled endpointslices", "namespace", ns, "field_selector", selectHeadlessServices, "label_selector", selectUnlabelled)
	}

	var wg sync.WaitGroup
	wg.Go(func() { w.work(ctx) })
	for _, inf := range []cache.SharedIndexInformer{w.informer, w.unlabelled, w.services} {
		if inf != nil {
			wg.Go(func() { inf.RunWithContext(ctx) })
		}
	}
	// The informers' and the worker's goroutines end with ctx.
	defer wg.Wait()
	if cache.WaitForCacheSync(ctx.Done(), w.informersSynced...) {
		// Every event of the initial list has now been handed to the
		// handler and so is in w.dirty; the worker calls SetSynced after
		// writing them.
		w.syncRequested.Store(true)
		w.signal()
	}
	<-ctx.Done()
	return nil
}

// work is the worker goroutine: it writes changed services to the Sink.
func (w *Watcher) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		// Load the flag before draining: Run sets it only after every event
		// of the initial list was queued, so once it is seen here a drain
		// that follows writes all of them before SetSynced. Loaded after
		// the drain, it could report an event queued during the drain as
		// written, and the resolver would answer NXDOMAIN for it.
		syncRequested := w.syncRequested.Load()
		for {
			batch, all := w.take()
			if all {
				w.syncAll(batch)
			}
			if len(batch) == 0 {
				break
			}
			for k, times := range batch {
				w.syncService(k, times)
			}
		}
		if w.testHookDrained != nil {
			w.testHookDrained()
		}
		if !w.synced.Load() && syncRequested {
			// The gauge and LastSynced first: whoever sees the Sink synced
			// (a test, a probe) then sees them set too. Every service of
			// the initial list is in the Sink already.
			w.metrics.synced.Set(1)
			w.syncedAt.Store(time.Now().UnixNano())
			w.sink.SetSynced()
			w.synced.Store(true)
			w.log.Info("endpointslices synced", "services", len(w.known), "duration", time.Since(w.start))
			// The initial list is the most memory the process ever holds at
			// once (every slice decoded, every service merged); hand the
			// garbage back now instead of keeping RSS at that peak.
			debug.FreeOSMemory()
		}
	}
}

// take returns and clears the set of changed services.
func (w *Watcher) take() (batch map[serviceKey][]time.Time, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.dirty) == 0 && !w.resyncAll {
		return nil, false
	}
	batch, all = w.dirty, w.resyncAll
	w.dirty, w.resyncAll = map[serviceKey][]time.Time{}, false
	return batch, all
}

// syncAll adds every service, known to the Sink or in the cache, to batch.
func (w *Watcher) syncAll(batch map[serviceKey][]time.Time) {
	for k := range w.known {
		if _, ok := batch[k]; !ok {
			batch[k] = nil
		}
	}
	for _, inf := range []cache.SharedIndexInformer{w.informer, w.unlabelled} {
		if inf == nil {
			continue
		}
		for _, s := range inf.GetIndexer().List() {
			if k, ok := serviceOf(s); ok {
				if _, ok := batch[k]; !ok {
					batch[k] = nil
				}
			}
		}
	}
}

// syncService rebuilds service k from the cache and writes it to the Sink.
// times are the trigger times of the slice changes that led here; they are
// observed once the Sink has the new state.
func (w *Watcher) syncService(k serviceKey, times []time.Time) {
	objs, err := w.informer.GetIndexer().ByIndex(serviceIndex, k.String())
	if err == nil && w.unlabelled != nil && w.headless(k) {
		var more []any
		more, err = w.unlabelled.GetIndexer().ByIndex(serviceIndex, k.String())
		objs = append(objs, more...)
	}
	if err != nil {
		// Only possible if the index were not registered.
		w.log.Error("read endpointslice cache", "service", k.String(), "err", err)
		return
	}
	slices := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok && s.AddressType != discoveryv1.AddressTypeFQDN {
			slices = append(slices, s)
		}
	}
	if len(slices) == 0 {
		if _, ok := w.known[k]; ok {
			w.sink.Delete(k.namespace, k.name)
			delete(w.known, k)
			w.log.Debug("service deleted", "namespace", k.namespace, "service", k.name)
		}
		return
	}
	svc := mergeService(k, slices)
	w.sink.Upsert(svc)
	w.known[k] = struct{}{}
	now := time.Now()
	for _, t := range times {
		w.metrics.programming.Observe(max(0, now.Sub(t).Seconds()))
	}
	w.log.Debug("service updated", "namespace", k.namespace, "service", k.name, "slices", len(slices), "endpoints", len(svc.Endpoints), "ports", len(svc.Ports))
}

// markDirty notes that service k changed; t, when ok, is the trigger time of
// the change.
func (w *Watcher) markDirty(k serviceKey, t time.Time, ok bool) {
	w.mu.Lock()
	times := w.dirty[k]
	if ok && !slices.ContainsFunc(times, t.Equal) {
		times = append(times, t)
	}
	w.dirty[k] = times
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) markAll() {
	w.mu.Lock()
	w.resyncAll = true
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// watchError logs why a list or watch of resource what ended. The
// reflector retries by itself with backoff; the Sink keeps its state
// meanwhile.
func (w *Watcher) watchError(what string, err error) {
	switch {
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		w.log.Info("watch expired, relisting", "resource", what, "err", err)
	case errors.Is(err, io.EOF):
		// The watch closed normally; it is reopened.
	case errors.Is(err, io.ErrUnexpectedEOF):
		w.log.Info("watch closed early, reconnecting", "resource", what, "err", err)
	default:
		w.log.Warn("list or watch failed, retrying; answering from the last known state", "resource", what, "err", err)
	}
}

// handler receives the informer's events. It runs on the informer's
// goroutine and only notes which services changed.
type handler struct{ w *Watcher }

func (h handler) OnAdd(obj any, isInInitialList bool) {
	h.w.metrics.adds.Inc()
	h.w.metrics.lastEvent.SetToCurrentTime()
	k, ok := serviceOf(obj)
	if !ok {
		h.w.debug("ignoring endpointslice without service-name label", obj, serviceKey{})
		return
	}
	var t time.Time
	var hasT bool
	if s, isSlice := obj.(*discoveryv1.EndpointSlice); isSlice && !isInInitialList {
		// Slices of the initial list describe old changes: they would fill
		// the programming-latency histogram with the age of the slices.
		t, hasT = triggerTime(s)
	}
	h.w.debug("endpointslice added", obj, k)
	h.w.markDirty(k, t, hasT)
}

func (h handler) OnUpdate(oldObj, newObj any) {
	h.w.metrics.updates.Inc()
	h.w.metrics.lastEvent.SetToCurrentTime()
	old, _ := oldObj.(*discoveryv1.EndpointSlice)
	cur, _ := newObj.(*discoveryv1.EndpointSlice)
	if old == nil || cur == nil {
		return
	}
	if sameForDNS(old, cur) {
		// A relist that found the slice unchanged, or a change of fields
		// DNS does not use (pod status churn that leaves ready alone).
		return
	}
	oldK, oldOK := serviceOf(old)
	newK, newOK := serviceOf(cur)
	if oldOK && (!newOK || oldK != newK) {
		// The slice moved away from its service (its label changed).
		h.w.markDirty(oldK, time.Time{}, false)
	}
	if !newOK {
		return
	}
	t, hasT := triggerTime(cur)
	if ot, oldHasT := triggerTime(old); hasT && oldHasT && ot.Equal(t) {
		hasT = false // not a new change: nothing to measure
	}
	h.w.debug("endpointslice updated", cur, newK)
	h.w.markDirty(newK, t, hasT)
}

func (h handler) OnDelete(obj any) {
	h.w.metrics.deletes.Inc()
	h.w.metrics.lastEvent.SetToCurrentTime()
	k, ok := serviceOf(obj)
	if !ok {
		o := obj
		if t, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
			o = t.Obj
		}
		if _, isSlice := o.(*discoveryv1.EndpointSlice); !isSlice {
			// Cannot tell which service lost a slice: rebuild them all
			// rather than risk serving a deleted endpoint.
			h.w.log.Warn("endpointslice deleted with unknown final state; rebuilding every service", "slice", objectKey(obj), "type", fmt.Sprintf("%T", o))
			h.w.markAll()
		}
		return
	}
	h.w.debug("endpointslice deleted", obj, k)
	h.w.markDirty(k, time.Time{}, false)
}

// sameForDNS reports whether two lean slices publish the same DNS data.
func sameForDNS(a, b *discoveryv1.EndpointSlice) bool {
	return a.AddressType == b.AddressType &&
		a.Labels[labelServiceName] == b.Labels[labelServiceName] &&
		reflect.DeepEqual(a.Ports, b.Ports) &&
		reflect.DeepEqual(a.Endpoints, b.Endpoints)
}

// debug logs an event at Debug, building its attributes only when Debug is
// enabled: events come at a high rate.
func (w *Watcher) debug(msg string, obj any, k serviceKey) {
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if k == (serviceKey{}) {
		w.log.Debug(msg, "slice", objectKey(obj))
		return
	}
	w.log.Debug(msg, "slice", objectKey(obj), "service", k.String())
}

// objectKey names obj for logs.
func objectKey(obj any) string {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Key
	}
	k, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return k
}
