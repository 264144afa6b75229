package resolver

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// xfrBenchStore is a handler with transfers over services services of 10
// ready endpoints each, in cluster.local. and 10.in-addr.arpa.
func xfrBenchStore(b *testing.B, services int) (*Handler, *Transfers) {
	b.Helper()
	st := NewStore()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa."}
	h, err := NewHandler(st, cfg)
	if err != nil {
		b.Fatal(err)
	}
	xc := DefaultTransferConfig()
	xc.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	x, err := NewTransfers(h, xc)
	if err != nil {
		b.Fatal(err)
	}
	for i := range services {
		st.Upsert(benchService(i, 10))
	}
	st.SetSynced()
	return h, x
}

func benchService(i, n int) Service {
	svc := Service{Namespace: "default", Name: fmt.Sprintf("svc-%d", i), Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	for e := range n {
		svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("web-%d", e),
			Addrs: addrs(fmt.Sprintf("10.%d.%d.%d", i/250%250, i%250, e+1)), Ready: true})
	}
	return svc
}

// replyBytes runs q against x and returns the reply's size on the wire.
func replyBytes(b *testing.B, x *Transfers, q *dns.Msg) int {
	b.Helper()
	wire, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	req, refusal, _ := x.admit(wire, netipLoopback, TCP)
	if refusal != nil {
		b.Fatalf("refused: %v", refusal)
	}
	total := 0
	if _, _, err := x.transfer(req, x.cfg.MessageBytes, func(m *dns.Msg, s *tsigSigner) (int, error) {
		p, err := s.pack(m)
		total += 2 + len(p)
		return len(p), err
	}); err != nil {
		b.Fatal(err)
	}
	return total
}

// BenchmarkAXFR measures building and packing the whole forward zone of
// 1,000 services × 10 endpoints (both trees), and reports its size.
func BenchmarkAXFR(b *testing.B) {
	_, x := xfrBenchStore(b, 1000)
	var n int
	for b.Loop() {
		n = replyBytes(b, x, axfrQuery("cluster.local."))
	}
	b.ReportMetric(float64(n), "zone-bytes")
}

// BenchmarkIXFROneEndpoint measures the IXFR after one endpoint of one
// service is added, and reports its size: it depends on the service's
// size (every SRV weight of it changes), not the zone's.
func BenchmarkIXFROneEndpoint(b *testing.B) {
	for _, services := range []int{100, 1000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			h, x := xfrBenchStore(b, services)
			from := h.store.snapshot().serialOf(0)
			h.store.Upsert(benchService(0, 11))
			var n int
			for b.Loop() {
				n = replyBytes(b, x, ixfrQuery("cluster.local.", from))
			}
			b.ReportMetric(float64(n), "ixfr-bytes")
		})
	}
}

// BenchmarkUpsertJournal measures what journaling costs a write: one
// service of 10 endpoints changed, with and without transfers.
func BenchmarkUpsertJournal(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("transfers=%v", on), func(b *testing.B) {
			st := NewStore()
			cfg := DefaultConfig()
			cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa."}
			h, err := NewHandler(st, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if on {
				if _, err := NewTransfers(h, DefaultTransferConfig()); err != nil {
					b.Fatal(err)
				}
			}
			st.SetSynced() // journaling starts at the sync
			svcs := [2]Service{benchService(0, 10), benchService(0, 9)}
			i := 0
			for b.Loop() {
				st.Upsert(svcs[i%2])
				i++
			}
		})
	}
}
