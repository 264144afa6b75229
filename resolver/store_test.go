package resolver

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerdns/peerdns/internal/testtools"
)

// storeCase is a query and what it must be answered while the store is in
// a given state.
type storeCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer []string
}

// checkAnswers runs cases against h and returns the first mismatch.
func checkAnswers(t testing.TB, h *Handler, cases []storeCase) error {
	t.Helper()
	for _, c := range cases {
		if err := c.check(t, c.ask(t, h)); err != nil {
			return err
		}
	}
	return nil
}

func (c *storeCase) ask(t testing.TB, h *Handler) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(c.qname, c.qtype)
	return exchange(t, h, m, UDP)
}

// check returns how r differs from what c expects, or nil.
func (c *storeCase) check(t testing.TB, r *dns.Msg) error {
	t.Helper()
	if r.Rcode != c.rcode {
		return fmt.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
	}
	if diff := cmp.Diff(parseZone(t, c.answer...), zoneText(r.Answer)); diff != "" {
		return fmt.Errorf("%s: answer (-want +got):\n%s", c.name, diff)
	}
	return nil
}

// TestLookupsWhileWriterPublishes holds a writer at the moment it publishes
// a change and checks that lookups of every kind (a service's records, PTR,
// a reverse empty non-terminal, a namespace, the store's gauges) still
// answer, from the state before the change; once the writer goes on they
// answer from the state after it.
func TestLookupsWhileWriterPublishes(t *testing.T) {
	st := NewStore()
	for _, s := range seed() {
		st.Upsert(s)
	}
	st.SetSynced()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa."}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}

	publishing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.beforePublish = func() {
		close(publishing)
		<-release
	}
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // never leave the writer blocked
	// The change: a new service in a new namespace, in a new /16.
	written := make(chan struct{})
	go func() {
		defer close(written)
		st.Upsert(Service{Namespace: "queue", Name: "mq", Endpoints: []Endpoint{{Hostname: "mq-0", Addrs: addrs("10.77.0.1"), Ready: true}}})
	}()
	<-publishing

	before := []storeCase{
		{name: "existing service", qname: "web-1.nginx.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web-1.nginx.default.svc.cluster.local. 5 IN A 10.1.0.2"}},
		{name: "existing PTR", qname: "2.0.1.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.0.1.10.in-addr.arpa. 5 IN PTR web-1.nginx.default.svc.cluster.local."}},
		{name: "existing reverse empty non-terminal", qname: "1.10.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "new service", qname: "mq-0.mq.queue.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "new namespace", qname: "queue.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "new PTR", qname: "1.0.77.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError},
		{name: "new reverse empty non-terminal", qname: "77.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError},
	}
	looked := make(chan error, 1)
	go func() {
		err := checkAnswers(t, h, before)
		if err == nil {
			if n := gatherValue(t, reg, "peerdns_services"); n != 5 {
				err = fmt.Errorf("peerdns_services = %v, want 5", n)
			}
		}
		looked <- err
	}()
	var lookupErr error
	testtools.Eventually(t, "lookups while a writer publishes", 10*time.Second, func() error {
		select {
		case lookupErr = <-looked:
			return nil
		default:
			return errors.New("lookups are blocked by the writer")
		}
	})
	if lookupErr != nil {
		t.Fatalf("during the change: %v", lookupErr)
	}

	once.Do(func() { close(release) })
	<-written
	after := []storeCase{
		{name: "existing service", qname: "web-1.nginx.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web-1.nginx.default.svc.cluster.local. 5 IN A 10.1.0.2"}},
		{name: "new service", qname: "mq-0.mq.queue.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"mq-0.mq.queue.svc.cluster.local. 5 IN A 10.77.0.1"}},
		{name: "new namespace", qname: "queue.svc.cluster.local.", qtype: dns.TypeA},
		{name: "new PTR", qname: "1.0.77.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.77.10.in-addr.arpa. 5 IN PTR mq-0.mq.queue.svc.cluster.local."}},
		{name: "new reverse empty non-terminal", qname: "77.10.in-addr.arpa.", qtype: dns.TypePTR},
	}
	if err := checkAnswers(t, h, after); err != nil {
		t.Fatalf("after the change: %v", err)
	}
	if n := gatherValue(t, reg, "peerdns_services"); n != 6 {
		t.Errorf("peerdns_services = %v, want 6", n)
	}
}

// TestQueriesSeeWholeChanges replaces a service back and forth between two
// versions while queries run, and checks that every answer is that of one
// version: the service's addresses, PTR records and reverse empty
// non-terminals change together.
func TestQueriesSeeWholeChanges(t *testing.T) {
	version := func(net byte) Service {
		svc := Service{Namespace: "default", Name: "flip"}
		for i := range 3 {
			svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("f-%d", i), Addrs: addrs(fmt.Sprintf("10.%d.0.%d", net, i+1)), Ready: true})
		}
		return svc
	}
	h := newTestHandler(t, true, version(50))
	answers := func(net, other byte) []storeCase {
		return []storeCase{
			{name: "A", qname: "flip.default.svc.cluster.local.", qtype: dns.TypeA, answer: []string{
				fmt.Sprintf("flip.default.svc.cluster.local. 5 IN A 10.%d.0.1", net),
				fmt.Sprintf("flip.default.svc.cluster.local. 5 IN A 10.%d.0.2", net),
				fmt.Sprintf("flip.default.svc.cluster.local. 5 IN A 10.%d.0.3", net),
			}},
			{name: "PTR", qname: fmt.Sprintf("2.0.%d.10.in-addr.arpa.", net), qtype: dns.TypePTR, answer: []string{
				fmt.Sprintf("2.0.%d.10.in-addr.arpa. 5 IN PTR f-1.flip.default.svc.cluster.local.", net),
			}},
			{name: "old PTR", qname: fmt.Sprintf("2.0.%d.10.in-addr.arpa.", other), qtype: dns.TypePTR, rcode: dns.RcodeNameError},
			{name: "empty non-terminal", qname: fmt.Sprintf("%d.10.in-addr.arpa.", net), qtype: dns.TypePTR},
			{name: "old empty non-terminal", qname: fmt.Sprintf("%d.10.in-addr.arpa.", other), qtype: dns.TypePTR, rcode: dns.RcodeNameError},
		}
	}
	v50, v51 := answers(50, 51), answers(51, 50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.store.Upsert(version(byte(50 + (i+1)%2)))
		}
	})
	defer wg.Wait()
	defer close(stop)
	// Each answer must be that of one version or the other.
	in51 := map[string]storeCase{}
	for _, c := range v51 {
		in51[c.qname] = c
	}
	for range 300 {
		for _, c50 := range v50 {
			c51 := in51[c50.qname]
			r := c50.ask(t, h)
			if err50, err51 := c50.check(t, r), c51.check(t, r); err50 != nil && err51 != nil {
				t.Fatalf("an answer of neither version: %v\n%v", err50, err51)
			}
		}
	}
}

// TestStoreLookupsDoNotAllocate: the lookups that read the store (a
// service's names, a namespace, PTR, a reverse empty non-terminal) answer a
// repeated query without allocating.
func TestStoreLookupsDoNotAllocate(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	var queries [][]byte
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web-1.nginx.default.svc.cluster.local.", dns.TypeA},
		{"_client._tcp.pg.db.peers.cluster.local.", dns.TypeSRV},
		{"default.svc.cluster.local.", dns.TypeA},
		{"2.0.1.10.in-addr.arpa.", dns.TypePTR},
		{"1.10.in-addr.arpa.", dns.TypePTR},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR},
		{"0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR},
	} {
		queries = append(queries, packQuery(t, q.name, q.qtype, 0))
	}
	out := make([]byte, 0, dns.MaxMsgSize)
	for _, q := range queries {
		// Builds the cached answers; every one of them is NOERROR.
		r := new(dns.Msg)
		if err := r.Unpack(h.Answer(out, q, UDP)); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("answer %v, %v; want NOERROR", r, err)
		}
	}
	if n := testing.AllocsPerRun(50, func() {
		for _, q := range queries {
			h.Answer(out, q, UDP)
		}
	}); n != 0 {
		t.Errorf("%v allocations per round of %d queries, want 0", n, len(queries))
	}
}
