package resolver

import (
	"fmt"
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
// updates ran meanwhile.
func BenchmarkLookupsDuringUpdates(b *testing.B) {
	big := func(gen int) Service {
		svc := Service{Namespace: "default", Name: "big", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
		for i := range 10000 {
			a := netip.AddrFrom4([4]byte{10, byte(100 + gen%2), byte(i / 250), byte(i%250 + 1)})
			svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("big-%d", i), Addrs: []netip.Addr{a}, Ready: true})
		}
		return svc
	}
	h := newTestHandler(b, true, append(seed(), big(0))...)
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
	updates := []Service{big(1), big(0)}
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
	b.RunParallel(func(pb *testing.PB) {
		out := make([]byte, 0, 512)
		i := 0
		for pb.Next() {
			if h.Answer(out, queries[i%len(queries)], UDP) == nil {
				panic("no answer")
			}
			i++
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(n.Load())/float64(b.N), "updates/op")
}

// BenchmarkUpsert measures one change of a small service (two endpoints that
// move to new addresses, so the PTR index changes too) in stores of 1,000 to
// 100,000 such services with reverse zones on: the cost of a change should
// not grow with the size of the store. cpu-ns/op is the process's CPU time
// per change, the garbage collector's included, which a shared machine
// disturbs less than ns/op.
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
	for _, services := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			all := make([]Service, services)
			for i := range all {
				all[i] = small(i, 0)
			}
			h := newTestHandler(b, true, all...)
			updates := []Service{small(services/2, 1), small(services/2, 0)}
			runtime.GC() // the set-up's garbage is not the changes' cost
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
		})
	}
}
