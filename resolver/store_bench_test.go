package resolver

import (
	"fmt"
	"math/bits"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkLookupsDuringUpdates measures cached lookups from every CPU while
// one writer keeps replacing a 10,000-endpoint service (a rollout of a large
// StatefulSet), with reverse zones on so each update also rewrites the PTR
// index. The lookups cycle through an A record of a small service, the PTR
// record of one of its addresses and a reverse empty non-terminal
// ("0.1.10.in-addr.arpa."). ns/op is per lookup; updates/op says how many
// updates ran meanwhile; p99.9-ns (a power of two: the upper bound of the
// bucket) and max-ns are the slowest lookups' wall time, which includes
// waiting for a CPU on a loaded machine.
func BenchmarkLookupsDuringUpdates(b *testing.B) {
	h := newTestHandler(b, true, append(seed(), bigService(0))...)
	var queries [][]byte
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web-1.nginx.default.svc.cluster.local.", dns.TypeA},
		{"1.0.1.10.in-addr.arpa.", dns.TypePTR},
		{"0.1.10.in-addr.arpa.", dns.TypePTR}, // an empty non-terminal of the PTR tree
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		p, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		queries = append(queries, p)
	}
	updates := []Service{bigService(1), bigService(0)}
	stop := make(chan struct{})
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.store.Upsert(updates[i%2])
			n.Add(1)
		}
	})
	runtime.GC() // the set-up's garbage is not the lookups' cost
	b.ReportAllocs()
	b.ResetTimer()
	var mu sync.Mutex
	var all [64]int64 // lookups by bits.Len64 of their duration in ns
	var slowest time.Duration
	b.RunParallel(func(pb *testing.PB) {
		out := make([]byte, 0, 512)
		var hist [64]int64
		var worst time.Duration
		i := 0
		for pb.Next() {
			start := time.Now()
			if h.Answer(out, queries[i%len(queries)], UDP) == nil {
				panic("no answer")
			}
			d := time.Since(start)
			hist[bits.Len64(uint64(d))]++
			worst = max(worst, d)
			i++
		}
		mu.Lock()
		defer mu.Unlock()
		for i, c := range hist {
			all[i] += c
		}
		slowest = max(slowest, worst)
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(n.Load())/float64(b.N), "updates/op")
	// The slowest lookups show waits for a writer; at ns/op they vanish
	// in the average.
	var seen int64
	for i, c := range all {
		if seen += c; seen*1000 >= int64(b.N)*999 {
			b.ReportMetric(float64(uint64(1)<<i), "p99.9-ns") // the bucket's upper bound
			break
		}
	}
	b.ReportMetric(float64(slowest), "max-ns")
}

// bigService is a 10,000-endpoint StatefulSet whose addresses move to
// another /16 from one gen to the next.
func bigService(gen int) Service {
	svc := Service{Namespace: "default", Name: "big", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(100 + gen%2), byte(i / 250), byte(i%250 + 1)})
		svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("big-%d", i), Addrs: []netip.Addr{a}, Ready: true})
	}
	return svc
}

// BenchmarkUpsert measures one change of a small service (two endpoints that
// move to new addresses, so the PTR index changes too) in stores of 1,000 to
// 100,000 such services with reverse zones on: the cost of a change should
// not grow with the size of the store. The last case changes bigService
// (every address moves) among 1,000 small services. cpu-ns/op is the process's CPU time
// per change, the garbage collector's included, which a shared machine
// disturbs less than ns/op. heap-B/service is the live heap after the
// services were loaded (the handler's included), per service.
func BenchmarkUpsert(b *testing.B) {
	small := func(i, gen int) Service {
		svc := Service{Namespace: fmt.Sprintf("ns-%d", i%100), Name: fmt.Sprintf("s-%d", i), Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
		for e := range 2 {
			j := 2*i + e
			a := netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)})
			if gen%2 == 1 {
				a = netip.AddrFrom4([4]byte{10, 255, 255, byte(e + 1)})
			}
			svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("s-%d", e), Addrs: []netip.Addr{a}, Ready: true})
		}
		return svc
	}
	for _, bc := range []struct {
		name     string
		services int
		big      bool // change bigService instead of a small one
	}{
		{name: "services=1000", services: 1000},
		{name: "services=10000", services: 10000},
		{name: "services=100000", services: 100000},
		{name: "services=1000/endpoints=10000", services: 1000, big: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			services := bc.services
			all := make([]Service, services)
			for i := range all {
				all[i] = small(i, 0)
			}
			updates := []Service{small(services/2, 1), small(services/2, 0)}
			if bc.big {
				all = append(all, bigService(0))
				updates = []Service{bigService(1), bigService(0)}
			}
			h := newTestHandler(b, true, all...)
			runtime.GC() // the set-up's garbage is not the changes' cost
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap := ms.HeapAlloc
			b.ReportAllocs()
			var cpu time.Duration
			i := 0
			for b.Loop() {
				if i == 0 {
					cpu = processCPU()
				}
				h.store.Upsert(updates[i%2])
				i++
			}
			if cpu > 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			}
			b.ReportMetric(float64(heap)/float64(services), "heap-B/service")
		})
	}
}
