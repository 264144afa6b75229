package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// programmingResult is, for each EndpointSlice write, the time from the API
// server acknowledging it to the new answer at each server.
type programmingResult struct {
	writes   int
	ack      latencySummary            // the write itself, request to response
	servers  map[string]latencySummary // ack → new answer
	timeouts map[string]int            // changes never seen within the timeout
	rtt      map[string]time.Duration  // one probe's round trip, the resolution
}

// programming rewrites the address of web-0 of the prog service writes
// times. After each acknowledged write it polls both servers in a tight
// loop, each with its own UDP socket, until web-0's A answer is the new
// address; the next write waits for both.
func (b *bench) programming(ctx context.Context) (*programmingResult, error) {
	servers := []*dnsServer{b.peerdns, b.coredns}
	res := &programmingResult{writes: b.cfg.writes, servers: map[string]latencySummary{}, timeouts: map[string]int{}, rtt: map[string]time.Duration{}}
	probers := make([]*prober, len(servers))
	for i, s := range servers {
		p, err := newProber(s.addr)
		if err != nil {
			return nil, err
		}
		defer p.close()
		probers[i] = p
	}
	name := fqdn(benchNamespace, svcProg, hostname(0))
	for i, p := range probers {
		var rtts []time.Duration
		for range 200 {
			t := time.Now()
			if _, err := p.query(name, dns.TypeA, 0, time.Second); err != nil {
				return nil, err
			}
			rtts = append(rtts, time.Since(t))
		}
		res.rtt[servers[i].name] = median(rtts)
	}

	api := b.client.DiscoveryV1().EndpointSlices(benchNamespace)
	cur, err := api.Get(ctx, svcProg+"-0", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var acks []time.Duration
	seen := make([][]time.Duration, len(servers))
	for w := range b.cfg.writes {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// 10.200.0.1 onwards: a new address each time.
		addr := netip.AddrFrom4([4]byte{10, 200 + byte(w/62500), byte(w / 250 % 250), byte(w%250 + 1)})
		upd := cur.DeepCopy()
		upd.Endpoints[0].Addresses = []string{addr.String()}
		sent := time.Now()
		if cur, err = api.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("write %d: %w", w, err)
		}
		ack := time.Now()
		acks = append(acks, ack.Sub(sent))
		var wg sync.WaitGroup
		for i, p := range probers {
			wg.Go(func() {
				if d, ok := pollUntil(p, name, addr, ack, b.cfg.writeTimeout); ok {
					seen[i] = append(seen[i], d)
				}
			})
		}
		wg.Wait()
		if (w+1)%250 == 0 {
			b.log.Info("programming", "writes", w+1,
				"peerdns_p50", summarize(seen[0]).p50, "coredns_p50", summarize(seen[1]).p50)
		}
	}
	res.ack = summarize(acks)
	for i, s := range servers {
		res.servers[s.name] = summarize(seen[i])
		res.timeouts[s.name] = b.cfg.writes - len(seen[i])
	}
	return res, nil
}

// pollUntil queries name until the answer is exactly want, and returns how
// long after since that was, or false after timeout.
func pollUntil(p *prober, name string, want netip.Addr, since time.Time, timeout time.Duration) (time.Duration, bool) {
	for time.Since(since) < timeout {
		r, err := p.query(name, dns.TypeA, 0, 100*time.Millisecond)
		if err == nil && answersA(r, want) {
			return time.Since(since), true
		}
	}
	return 0, false
}
