package kube

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/resolver"
)

// teeSink writes to the resolver's store, then to a recording sink: once
// the recording sink reports a change, queries already see it.
type teeSink struct {
	store *resolver.Store
	rec   *recordingSink
}

func (s teeSink) Upsert(svc resolver.Service) { s.store.Upsert(svc); s.rec.Upsert(svc) }
func (s teeSink) Delete(namespace, name string) {
	s.store.Delete(namespace, name)
	s.rec.Delete(namespace, name)
}
func (s teeSink) SetSynced() { s.store.SetSynced(); s.rec.SetSynced() }

// dnsProbe asks a running peerdns DNS server, as a client would.
type dnsProbe struct {
	addr string
	rec  *recordingSink // wakes wait up when the store changed
}

// startDNS serves store on a loopback port until the test ends.
func startDNS(t *testing.T, store *resolver.Store, rec *recordingSink) dnsProbe {
	t.Helper()
	cfg := resolver.DefaultConfig()
	cfg.Zones = []string{"cluster.local."}
	h, err := resolver.NewHandler(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resolver.Listen(resolver.ServerConfig{Addr: "127.0.0.1:0", Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("DNS server: %v", err)
		}
	})
	return dnsProbe{addr: srv.Addr().String(), rec: rec}
}

// query returns the answer to name/qtype as its rcode ("NOERROR",
// "NXDOMAIN", …) followed by the answer records, sorted, each written
// "<type> <data>" without owner name, TTL and class. It asks over UDP and
// again over TCP when the answer was truncated.
func (p dnsProbe) query(t testing.TB, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, p.addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, p.addr)
	}
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	var rrs []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String()) // owner TTL class type data…
		rrs = append(rrs, strings.Join(f[3:], " "))
	}
	slices.Sort(rrs)
	return append([]string{dns.RcodeToString[r.Rcode]}, rrs...)
}

// wait waits until the answer to name/qtype is want (rcode first, then the
// records as query writes them, in any order), querying again after every
// change to the store. It returns how long that took.
func (p dnsProbe) wait(t testing.TB, name string, qtype uint16, want ...string) time.Duration {
	t.Helper()
	want = append([]string{want[0]}, slices.Sorted(slices.Values(want[1:]))...)
	start := time.Now()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		// Drain the change signal before asking, so a change during the
		// query is not missed.
		select {
		case <-p.rec.changed:
		default:
		}
		got := p.query(t, name, qtype)
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		select {
		case <-p.rec.changed:
		case <-deadline.C:
			t.Fatalf("%s %s:\n got %q\nwant %q", name, dns.TypeToString[qtype], got, want)
		}
	}
}
