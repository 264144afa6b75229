package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkUnrelatedQueryDuringBigChanges measures what a client of a small
// service sees while a 20,000-endpoint service changes every 100 ms and
// clients keep asking for its SRV records (every change makes their next
// query a cache miss). It serves on loopback with the server's default UDP
// workers; each op is one A query for an unrelated name over UDP. It
// reports the latency's p50, p99 and max, lost (no answer within 1 s, per
// op), and big-builds (SRV answers the big clients got, per change).
func BenchmarkUnrelatedQueryDuringBigChanges(b *testing.B) {
	gens := []Service{hugeService(0, 20000), hugeService(1, 20000)}
	h := newTestHandler(b, true, append(seed(), gens[0])...)
	s, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Handler: h})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	addr := s.Addr().String()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var changes, bigAnswers atomic.Int64
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			h.store.Upsert(gens[i%2])
			changes.Add(1)
		}
	})
	for range 4 {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			m := new(dns.Msg)
			m.SetQuestion("_http._tcp.huge.default.svc.cluster.local.", dns.TypeSRV)
			m.SetEdns0(1232, false)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := c.Exchange(m, addr); err == nil {
					bigAnswers.Add(1)
				}
			}
		})
	}

	c := &dns.Client{Net: "udp", Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion("web-1.nginx.default.svc.cluster.local.", dns.TypeA)
	var lat []time.Duration
	lost := 0
	changes.Store(0)
	for b.Loop() {
		start := time.Now()
		if _, _, err := c.Exchange(m, addr); err != nil {
			lost++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	cancel()
	if err := <-served; err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	}
	b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
	if n := changes.Load(); n > 0 {
		b.ReportMetric(float64(bigAnswers.Load())/float64(n), "big-answers/change")
	}
}

// hugeService is a StatefulSet of n endpoints, named huge, whose addresses
// move from one gen to the next.
func hugeService(gen, n int) Service {
	svc := Service{Namespace: "default", Name: "huge", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(200 + gen%2), byte(i / 250), byte(i%250 + 1)})
		svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("huge-%d", i), Addrs: []netip.Addr{a}, Ready: true})
	}
	return svc
}
