package resolver

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// zoneCopy is what a secondary holds: the SOA serial and the other
// records, as text.
type zoneCopy struct {
	serial uint32
	rrs    map[string]bool
}

func (z zoneCopy) lines() []string { return slices.Sorted(maps.Keys(z.rrs)) }

// loadAXFR is the copy an AXFR reply gives.
func loadAXFR(t testing.TB, rrs []dns.RR) zoneCopy {
	t.Helper()
	if len(rrs) < 2 {
		t.Fatalf("AXFR of %d records", len(rrs))
	}
	z := zoneCopy{serial: rrs[0].(*dns.SOA).Serial, rrs: map[string]bool{}}
	for _, rr := range rrs[1 : len(rrs)-1] {
		z.rrs[rr.String()] = true
	}
	return z
}

// applyIXFR applies an IXFR reply to z as a secondary does (RFC 1995 §4):
// the SOA alone (nothing to do), the whole zone, or sequences of deletions
// and additions. It fails the test on a reply out of that form.
func applyIXFR(t testing.TB, z zoneCopy, rrs []dns.RR) (zoneCopy, string) {
	t.Helper()
	soa := func(i int) *dns.SOA { s, _ := rrs[i].(*dns.SOA); return s }
	if len(rrs) == 0 || soa(0) == nil {
		t.Fatalf("IXFR reply does not start with the SOA: %v", rrs)
	}
	if len(rrs) == 1 {
		return z, "soa_only"
	}
	if soa(1) == nil {
		return loadAXFR(t, rrs), "full"
	}
	last := soa(0).Serial
	next := zoneCopy{serial: z.serial, rrs: maps.Clone(z.rrs)}
	i := 1
	for i < len(rrs)-1 {
		if s := soa(i); s == nil || s.Serial != next.serial {
			t.Fatalf("record %d: %v, want the SOA of serial %d opening deletions", i, rrs[i], next.serial)
		}
		for i++; soa(i) == nil; i++ {
			if !next.rrs[rrs[i].String()] {
				t.Fatalf("deleting %v, which the copy does not hold", rrs[i])
			}
			delete(next.rrs, rrs[i].String())
		}
		next.serial = soa(i).Serial
		for i++; soa(i) == nil; i++ {
			if next.rrs[rrs[i].String()] {
				t.Fatalf("adding %v, which the copy holds", rrs[i])
			}
			next.rrs[rrs[i].String()] = true
		}
	}
	if i != len(rrs)-1 || next.serial != last {
		t.Fatalf("IXFR ends at serial %d, its first SOA says %d", next.serial, last)
	}
	return next, "incremental"
}

// collect runs a transfer query against x without a network and returns
// the records of the reply.
func collect(t testing.TB, x *Transfers, q *dns.Msg) []dns.RR {
	t.Helper()
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req, refusal, _ := x.admit(b, netipLoopback, TCP)
	if refusal != nil {
		t.Fatalf("refused: %v", refusal)
	}
	var rrs []dns.RR
	if _, _, err := x.transfer(req, x.cfg.MessageBytes, func(m *dns.Msg, _ *tsigSigner) (int, error) {
		rrs = append(rrs, m.Answer...)
		return 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	return rrs
}

func ixfrQuery(zone string, serial uint32) *dns.Msg {
	q := new(dns.Msg)
	q.SetIxfr(zone, serial, "ns.dns."+zone, "hostmaster."+zone)
	return q
}

func axfrQuery(zone string) *dns.Msg {
	q := new(dns.Msg)
	q.SetAxfr(zone)
	return q
}

func TestIXFR(t *testing.T) {
	f := newXfrFixture(t, nil)
	const zone = "cluster.local."
	first := loadAXFR(t, f.axfr(t, zone))
	st := f.h.store
	st.Upsert(numbered("scaled", 3))
	st.Upsert(numbered("scaled", 5))
	st.Delete("default", "sleepy")
	now := loadAXFR(t, f.axfr(t, zone))

	t.Run("from the first serial: the differences", func(t *testing.T) {
		q := ixfrQuery(zone, first.serial)
		rrs, _, err := f.transferIn(t, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, kind := applyIXFR(t, first, rrs)
		if kind != "incremental" {
			t.Fatalf("reply %s, want incremental", kind)
		}
		if diff := cmp.Diff(now.lines(), got.lines()); diff != "" {
			t.Errorf("journal applied to the first AXFR is not the last AXFR (-axfr +ixfr):\n%s", diff)
		}
		if len(rrs) > 60 {
			t.Errorf("IXFR of %d records for 5 endpoints added and one deleted", len(rrs))
		}
	})
	t.Run("current serial: the SOA alone", func(t *testing.T) {
		if _, kind := applyIXFR(t, now, collect(t, f.x, ixfrQuery(zone, now.serial))); kind != "soa_only" {
			t.Errorf("reply %s", kind)
		}
	})
	t.Run("unknown serial: the whole zone", func(t *testing.T) {
		got, kind := applyIXFR(t, zoneCopy{}, collect(t, f.x, ixfrQuery(zone, first.serial-1000)))
		if kind != "full" || !cmp.Equal(got.lines(), now.lines()) {
			t.Errorf("reply %s; equal to AXFR: %v", kind, cmp.Equal(got.lines(), now.lines()))
		}
	})
	t.Run("over UDP: the differences when they fit, else the SOA", func(t *testing.T) {
		c := &dns.Client{Net: "udp"}
		st.Upsert(Service{Namespace: "default", Name: "tiny", Endpoints: []Endpoint{{Hostname: "t-0", Addrs: addrs("10.6.0.1"), Ready: true}}})
		q := ixfrQuery(zone, now.serial)
		q.SetEdns0(1232, false)
		r, _, err := c.Exchange(q, f.s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, kind := applyIXFR(t, now, r.Answer); kind != "incremental" {
			t.Errorf("small change over UDP: %s", kind)
		}
		r, _, err = c.Exchange(ixfrQuery(zone, first.serial-1000), f.s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != st.snapshot().serialOf(0) {
			t.Errorf("whole zone over UDP: %d records, want the current SOA alone", len(r.Answer))
		}
	})
	if got := testutil.ToFloat64(f.x.metrics.transfers.WithLabelValues("ixfr", "incremental")); got != 2 {
		t.Errorf(`peerdns_transfers_total{type="ixfr",result="incremental"} = %v, want 2`, got)
	}
}

// FuzzJournal checks, for random sequences of changes, that the IXFR of
// every zone from the first serial, applied to the first AXFR, gives the
// last AXFR.
func FuzzJournal(f *testing.F) {
	f.Add([]byte{0x15, 0x26, 0x37, 0x00, 0x15})
	f.Add([]byte{0xff, 0x10, 0x20, 0x30, 0x41, 0x52, 0x63, 0x74, 0x85, 0x96})
	f.Add([]byte{0x31, 0x31, 0x30, 0x31, 0x02, 0x12, 0x22})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		fx := newXfrFixture(t, nil)
		zones := []string{"cluster.local.", "10.in-addr.arpa.", "0.0.d.f.ip6.arpa."}
		first := map[string]zoneCopy{}
		for _, z := range zones {
			first[z] = loadAXFR(t, collect(t, fx.x, axfrQuery(z)))
		}
		for _, op := range ops {
			fx.h.store.Upsert(randomService(op))
		}
		for _, z := range zones {
			last := loadAXFR(t, collect(t, fx.x, axfrQuery(z)))
			got, _ := applyIXFR(t, first[z], collect(t, fx.x, ixfrQuery(z, first[z].serial)))
			if diff := cmp.Diff(last.lines(), got.lines()); diff != "" {
				t.Errorf("zone %s after %x: IXFR applied to the first AXFR differs from the last AXFR (-axfr +ixfr):\n%s", z, ops, diff)
			}
			if got.serial != last.serial {
				t.Errorf("zone %s: IXFR reaches serial %d, AXFR says %d", z, got.serial, last.serial)
			}
		}
	})
}

// randomService is one of three services in a state chosen by op: up to 7
// endpoints, some not ready, dual stack, one of two port numbers.
func randomService(op byte) Service {
	name := fmt.Sprintf("s%d", op%3)
	n := int(op>>2) % 8
	svc := Service{Namespace: "fuzz", Name: name, Ports: []Port{{Name: "p", Protocol: "tcp", Port: 80 + uint16(op>>5&1)}}}
	for i := range n {
		ep := Endpoint{Hostname: fmt.Sprintf("%s-%d", name, i), Addrs: addrs(fmt.Sprintf("10.7.%d.%d", op%3, i+1)), Ready: (int(op)>>i)&1 == 0}
		if i%2 == 1 {
			ep.Addrs = append(ep.Addrs, netipMust(fmt.Sprintf("fd00::7:%d:%d", op%3, i+1)))
		}
		svc.Endpoints = append(svc.Endpoints, ep)
	}
	return svc
}

// A client whose serial fell out of the bounded journal gets the whole
// zone, and converges.
func TestIXFROlderThanTheJournal(t *testing.T) {
	f := newXfrFixture(t, func(c *TransferConfig) { c.JournalRecords = 150 })
	const zone = "cluster.local."
	first := loadAXFR(t, collect(t, f.x, axfrQuery(zone)))
	for n := 1; n <= 6; n++ {
		f.h.store.Upsert(numbered("grow", n))
	}
	steps := testutil.ToFloat64(f.x.metrics.journalStepsForTest(0))
	if steps < 1 || steps >= 6 {
		t.Fatalf("journal holds %v steps; the test wants some of the 6 dropped", steps)
	}
	last := loadAXFR(t, collect(t, f.x, axfrQuery(zone)))
	got, kind := applyIXFR(t, first, collect(t, f.x, ixfrQuery(zone, first.serial)))
	if kind != "full" || !cmp.Equal(got.lines(), last.lines()) {
		t.Errorf("reply %s; converged: %v", kind, cmp.Equal(got.lines(), last.lines()))
	}
}

// The initial load, before the store syncs, is not journaled: transfers
// wait for the sync, so no secondary holds a serial from before it.
func TestJournalStartsAtSync(t *testing.T) {
	st := NewStore()
	h, err := NewHandler(st, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewTransfers(h, DefaultTransferConfig())
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		st.Upsert(numbered("load", n))
	}
	if d := x.journals[0].depth(); d != 0 {
		t.Errorf("%d steps journaled before the sync", d)
	}
	st.SetSynced()
	st.Upsert(numbered("load", 4))
	if d := x.journals[0].depth(); d != 1 {
		t.Errorf("%d steps journaled for one change after the sync", d)
	}
}
