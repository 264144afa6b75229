package resolver

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkLookupsDuringUpdates measures cached lookups from every CPU while
// one writer keeps replacing a 5,000-endpoint service (a rollout of a large
// StatefulSet), with reverse zones on so each update also rewrites the PTR
// index. Half the lookups are of names whose answers are cached, half are
// reverse empty non-terminals (reverseExists). ns/op is per lookup; updates/op
// says how many updates ran meanwhile.
func BenchmarkLookupsDuringUpdates(b *testing.B) {
	big := func(gen int) Service {
		svc := Service{Namespace: "default", Name: "big", Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
		for i := range 5000 {
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
		{"3.0.0.10.in-addr.arpa.", dns.TypePTR}, // empty non-terminal of the PTR tree
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
