package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scaleResult is memory and start-up with many services.
type scaleResult struct {
	asked, endpoints int
	load             scaleLoad
	list             time.Duration // one LIST of the headless slices by the bench
	listed           int           // slices in that list
	servers          []scaleServer
}

// scaleServer is one server started on the scale data.
type scaleServer struct {
	name string
	// ready is the time from the process's start to its readiness URL
	// answering 200 (polled every readyPoll).
	ready time.Duration
	// synced is peerdns's own "endpointslices synced" duration, from the
	// start of its watch (zero for CoreDNS).
	synced time.Duration
	// answered is the time from the start to the last service created
	// answering with all its addresses.
	answered time.Duration
	rss, hwm int64 // after settling
	// heapInuse is peerdns's go_memstats_heap_inuse_bytes after settling:
	// its Go heap, live data and garbage not yet collected (0 for CoreDNS).
	heapInuse int64
}

// scaleSettle is how long a server runs after it answers before its memory
// is read: the initial list's garbage is collected by then.
const scaleSettle = 10 * time.Second

// scale stops the servers of the earlier phases, creates the scale
// services, then starts peerdns and CoreDNS one after the other on them,
// each alone, and measures start-up and memory.
func (b *bench) scale(ctx context.Context) (*scaleResult, error) {
	res := &scaleResult{asked: b.cfg.scaleServices, endpoints: b.cfg.scaleEndpoints}
	for _, s := range []*dnsServer{b.peerdns, b.coredns} {
		if err := s.stop(); err != nil {
			return nil, err
		}
	}
	b.log.Info("creating scale services", "services", b.cfg.scaleServices, "endpoints", b.cfg.scaleEndpoints, "budget", b.cfg.scaleBudget)
	load, err := loadScale(ctx, b.client, b.cfg.scaleServices, b.cfg.scaleEndpoints, b.cfg.createWorkers, b.cfg.scaleBudget,
		func(done int) { b.log.Info("scale services created", "done", done) })
	res.load = load
	if err != nil {
		return nil, err
	}
	b.log.Info("scale services created", "services", load.services, "took", load.took.Round(100*time.Millisecond), "budget_hit", load.budgetHit)
	if load.services == 0 {
		return nil, fmt.Errorf("no scale service created within %s", b.cfg.scaleBudget)
	}

	// The list every watcher starts with, timed from here for reference.
	var lists []time.Duration
	for range 3 {
		start := time.Now()
		l, err := b.client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{LabelSelector: corev1.IsHeadlessService})
		if err != nil {
			return nil, err
		}
		lists = append(lists, time.Since(start))
		res.listed = len(l.Items)
	}
	res.list = median(lists)
	b.log.Info("list of headless slices", "slices", res.listed, "took", res.list)

	// Services are created in order but finish out of order: when the
	// budget cut the creation short, only the first is surely complete.
	last := fqdn(scaleNamespace, scaleServiceName(load.services-1), "")
	if load.budgetHit {
		last = fqdn(scaleNamespace, scaleServiceName(0), "")
	}
	for _, start := range []func(string, string) (*dnsServer, error){b.startPeerdns, b.startCoreDNS} {
		s, err := start(b.cp.Kubeconfig(), "scale")
		if err != nil {
			return nil, err
		}
		if err := s.waitReady(ctx, 3*time.Minute, last, b.cfg.scaleEndpoints); err != nil {
			return nil, err
		}
		ss := scaleServer{name: s.name, ready: s.readyAfter, answered: time.Since(s.proc.Started)}
		if s.name == "peerdns" {
			ss.synced, _ = peerdnsSynced(s.proc.LogPath)
		}
		if err := sleepCtx(ctx, scaleSettle); err != nil {
			return nil, err
		}
		if ss.rss, ss.hwm, err = procStatus(s.proc.Pid()); err != nil {
			return nil, err
		}
		if s.metrics != "" {
			heap, err := s.metric(ctx, "go_memstats_heap_inuse_bytes")
			if err != nil {
				return nil, err
			}
			ss.heapInuse = int64(heap)
		}
		b.log.Info("scale", "server", s.name, "ready", ss.ready.Round(time.Millisecond), "rss_mb", ss.rss>>20, "hwm_mb", ss.hwm>>20)
		res.servers = append(res.servers, ss)
		if err := s.stop(); err != nil {
			return nil, err
		}
	}
	return res, nil
}
