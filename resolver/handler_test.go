package resolver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// seed is the data most handler tests answer from.
func seed() []Service {
	big := Service{Namespace: "default", Name: "big", Ports: []Port{{Name: "web", Protocol: "tcp", Port: 80}}}
	for i := range 60 {
		big.Endpoints = append(big.Endpoints, Endpoint{Hostname: fmt.Sprintf("big-%d", i), Addrs: addrs(fmt.Sprintf("10.9.0.%d", i+1)), Ready: true})
	}
	return []Service{
		{
			Namespace: "default", Name: "nginx",
			Ports: []Port{{Name: "web", Protocol: "tcp", Port: 80}, {Protocol: "tcp", Port: 8080}},
			Endpoints: []Endpoint{
				{Hostname: "web-1", Addrs: addrs("10.1.0.2"), Ready: true},
				{Hostname: "web-0", Addrs: addrs("10.1.0.1"), Ready: true},
				{Hostname: "web-2", Addrs: addrs("10.1.0.3"), Ready: false},
			},
		},
		{
			// Dual stack: the IPv4 and the IPv6 slice each list every pod,
			// and the IPv4 slice lists db-0 twice (a slice being rebalanced).
			Namespace: "db", Name: "pg",
			Ports: []Port{{Name: "client", Protocol: "tcp", Port: 5432}, {Name: "gossip", Protocol: "udp", Port: 7946}},
			Endpoints: []Endpoint{
				{Hostname: "pg-0", Addrs: addrs("10.2.0.1"), Ready: true},
				{Hostname: "pg-1", Addrs: addrs("10.2.0.2"), Ready: true},
				{Hostname: "pg-0", Addrs: addrs("10.2.0.1"), Ready: true},
				{Hostname: "pg-0", Addrs: addrs("fd00::1"), Ready: true},
				{Hostname: "pg-1", Addrs: addrs("fd00::2"), Ready: true},
			},
		},
		{
			// No hostnames: each address is named by its dashed form.
			Namespace: "default", Name: "anon",
			Ports:     []Port{{Name: "http", Protocol: "TCP", Port: 8000}},
			Endpoints: []Endpoint{{Addrs: addrs("10.3.0.5"), Ready: true}, {Addrs: addrs("fd00::3:0"), Ready: true}},
		},
		{
			Namespace: "default", Name: "sleepy",
			Ports:     []Port{{Name: "web", Protocol: "tcp", Port: 80}},
			Endpoints: []Endpoint{{Hostname: "s-0", Addrs: addrs("10.4.0.1"), Ready: false}},
		},
		big,
	}
}

func newTestHandler(t testing.TB, synced bool, services ...Service) *Handler {
	t.Helper()
	st := NewStore()
	for _, s := range services {
		st.Upsert(s)
	}
	if synced {
		st.SetSynced()
	}
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa.", "0.0.d.f.ip6.arpa."}
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// exchange sends m to h as raw bytes over transport t, as a server would,
// and unpacks the response.
func exchange(t testing.TB, h *Handler, m *dns.Msg, tr Transport) *dns.Msg {
	t.Helper()
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	b := h.Answer(make([]byte, 0, 512), q, tr)
	if b == nil {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatalf("unpack response to %v: %v", m.Question, err)
	}
	if r.Id != m.Id {
		t.Errorf("response ID %d, query ID %d", r.Id, m.Id)
	}
	return r
}

// zoneText renders records one per line in zone-file form, sorted, so tests
// can state answers as text.
func zoneText(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// parseZone parses zone-file lines into the same form as zoneText.
func parseZone(t testing.TB, lines ...string) []string {
	t.Helper()
	var rrs []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("test record %q: %v", l, err)
		}
		rrs = append(rrs, rr)
	}
	return zoneText(rrs)
}

type queryCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer []string // zone-file text
	extra  []string
	soa    bool // the zone's SOA in the authority section (negative answers)
}

func runCases(t *testing.T, h *Handler, cases []queryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			r := exchange(t, h, m, TCP)
			if got, want := dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode]; got != want {
				t.Fatalf("rcode %s, want %s\n%v", got, want, r)
			}
			if diff := cmp.Diff(parseZone(t, tc.answer...), zoneText(r.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(parseZone(t, tc.extra...), zoneText(r.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
			hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
			if hasSOA != tc.soa {
				t.Errorf("authority %v, want SOA: %v", r.Ns, tc.soa)
			}
			if authoritative := tc.rcode == dns.RcodeSuccess || tc.rcode == dns.RcodeNameError; r.Authoritative != authoritative {
				t.Errorf("AA %v, want %v", r.Authoritative, authoritative)
			}
		})
	}
}

func TestHeadlessNames(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	const z = "cluster.local."
	runCases(t, h, []queryCase{
		{name: "service A lists ready endpoints in ordinal order", qname: "nginx.default.svc." + z, qtype: dns.TypeA,
			answer: []string{"nginx.default.svc.cluster.local. 5 IN A 10.1.0.1", "nginx.default.svc.cluster.local. 5 IN A 10.1.0.2"}},
		{name: "service AAAA without IPv6 is NODATA", qname: "nginx.default.svc." + z, qtype: dns.TypeAAAA, soa: true},
		{name: "per-ordinal A", qname: "web-0.nginx.default.svc." + z, qtype: dns.TypeA,
			answer: []string{"web-0.nginx.default.svc.cluster.local. 5 IN A 10.1.0.1"}},
		{name: "unready endpoint is NXDOMAIN", qname: "web-2.nginx.default.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "service SRV lists every named port", qname: "nginx.default.svc." + z, qtype: dns.TypeSRV,
			answer: []string{
				"nginx.default.svc.cluster.local. 5 IN SRV 0 50 80 web-0.nginx.default.svc.cluster.local.",
				"nginx.default.svc.cluster.local. 5 IN SRV 0 50 80 web-1.nginx.default.svc.cluster.local.",
			},
			extra: []string{"web-0.nginx.default.svc.cluster.local. 5 IN A 10.1.0.1", "web-1.nginx.default.svc.cluster.local. 5 IN A 10.1.0.2"}},
		{name: "port SRV", qname: "_web._tcp.nginx.default.svc." + z, qtype: dns.TypeSRV,
			answer: []string{
				"_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 50 80 web-0.nginx.default.svc.cluster.local.",
				"_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 50 80 web-1.nginx.default.svc.cluster.local.",
			},
			extra: []string{"web-0.nginx.default.svc.cluster.local. 5 IN A 10.1.0.1", "web-1.nginx.default.svc.cluster.local. 5 IN A 10.1.0.2"}},
		{name: "port name with wrong protocol is NXDOMAIN", qname: "_web._udp.nginx.default.svc." + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: true},
		{name: "protocol label is an empty non-terminal", qname: "_tcp.nginx.default.svc." + z, qtype: dns.TypeSRV, soa: true},
		{name: "protocol without named ports does not exist", qname: "_udp.nginx.default.svc." + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: true},
		{name: "A on a port name is NODATA", qname: "_web._tcp.nginx.default.svc." + z, qtype: dns.TypeA, soa: true},
		{name: "SRV on an endpoint name is NODATA", qname: "web-0.nginx.default.svc." + z, qtype: dns.TypeSRV, soa: true},
		{name: "TXT on a service is NODATA", qname: "nginx.default.svc." + z, qtype: dns.TypeTXT, soa: true},
		{name: "namespace is an empty non-terminal", qname: "default.svc." + z, qtype: dns.TypeA, soa: true},
		{name: "unknown namespace", qname: "nope.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "svc is an empty non-terminal", qname: "svc." + z, qtype: dns.TypeA, soa: true},
		{name: "unknown service", qname: "nope.default.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "too deep", qname: "a.b.c.nginx.default.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "pod tree is not served", qname: "10-1-0-1.default.pod." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "no ready endpoints is NXDOMAIN", qname: "sleepy.default.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "no ready endpoints, SRV is NXDOMAIN", qname: "_web._tcp.sleepy.default.svc." + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: true},

		{name: "dual stack A", qname: "pg.db.svc." + z, qtype: dns.TypeA,
			answer: []string{"pg.db.svc.cluster.local. 5 IN A 10.2.0.1", "pg.db.svc.cluster.local. 5 IN A 10.2.0.2"}},
		{name: "dual stack AAAA", qname: "pg.db.svc." + z, qtype: dns.TypeAAAA,
			answer: []string{"pg.db.svc.cluster.local. 5 IN AAAA fd00::1", "pg.db.svc.cluster.local. 5 IN AAAA fd00::2"}},
		{name: "dual stack per-ordinal AAAA", qname: "pg-1.pg.db.svc." + z, qtype: dns.TypeAAAA,
			answer: []string{"pg-1.pg.db.svc.cluster.local. 5 IN AAAA fd00::2"}},
		{name: "dual stack SRV has both families in additional", qname: "_client._tcp.pg.db.svc." + z, qtype: dns.TypeSRV,
			answer: []string{
				"_client._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 50 5432 pg-0.pg.db.svc.cluster.local.",
				"_client._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 50 5432 pg-1.pg.db.svc.cluster.local.",
			},
			extra: []string{
				"pg-0.pg.db.svc.cluster.local. 5 IN A 10.2.0.1", "pg-0.pg.db.svc.cluster.local. 5 IN AAAA fd00::1",
				"pg-1.pg.db.svc.cluster.local. 5 IN A 10.2.0.2", "pg-1.pg.db.svc.cluster.local. 5 IN AAAA fd00::2",
			}},
		{name: "service SRV over two ports", qname: "pg.db.svc." + z, qtype: dns.TypeSRV,
			answer: []string{
				"pg.db.svc.cluster.local. 5 IN SRV 0 50 5432 pg-0.pg.db.svc.cluster.local.",
				"pg.db.svc.cluster.local. 5 IN SRV 0 50 5432 pg-1.pg.db.svc.cluster.local.",
				"pg.db.svc.cluster.local. 5 IN SRV 0 50 7946 pg-0.pg.db.svc.cluster.local.",
				"pg.db.svc.cluster.local. 5 IN SRV 0 50 7946 pg-1.pg.db.svc.cluster.local.",
			},
			extra: []string{
				"pg-0.pg.db.svc.cluster.local. 5 IN A 10.2.0.1", "pg-0.pg.db.svc.cluster.local. 5 IN AAAA fd00::1",
				"pg-1.pg.db.svc.cluster.local. 5 IN A 10.2.0.2", "pg-1.pg.db.svc.cluster.local. 5 IN AAAA fd00::2",
			}},

		{name: "dashed IPv4 name", qname: "10-3-0-5.anon.default.svc." + z, qtype: dns.TypeA,
			answer: []string{"10-3-0-5.anon.default.svc.cluster.local. 5 IN A 10.3.0.5"}},
		{name: "dashed IPv6 name ends in 0", qname: "fd00--3-0.anon.default.svc." + z, qtype: dns.TypeAAAA,
			answer: []string{"fd00--3-0.anon.default.svc.cluster.local. 5 IN AAAA fd00::3:0"}},
		{name: "SRV targets the dashed names", qname: "_http._tcp.anon.default.svc." + z, qtype: dns.TypeSRV,
			answer: []string{
				"_http._tcp.anon.default.svc.cluster.local. 5 IN SRV 0 50 8000 10-3-0-5.anon.default.svc.cluster.local.",
				"_http._tcp.anon.default.svc.cluster.local. 5 IN SRV 0 50 8000 fd00--3-0.anon.default.svc.cluster.local.",
			},
			extra: []string{"10-3-0-5.anon.default.svc.cluster.local. 5 IN A 10.3.0.5", "fd00--3-0.anon.default.svc.cluster.local. 5 IN AAAA fd00::3:0"}},

		{name: "PTR IPv4", qname: "1.0.1.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.1.10.in-addr.arpa. 5 IN PTR web-0.nginx.default.svc.cluster.local."}},
		{name: "PTR IPv6", qname: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR pg-0.pg.db.svc.cluster.local."}},
		{name: "no PTR for unready endpoints", qname: "3.0.1.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: true},
		{name: "reverse empty non-terminal", qname: "1.10.in-addr.arpa.", qtype: dns.TypePTR, soa: true},
		{name: "reverse name with nothing below", qname: "77.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: true},
		{name: "reverse name that is not an address", qname: "x.0.1.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: true},
		{name: "A on a PTR name is NODATA", qname: "1.0.1.10.in-addr.arpa.", qtype: dns.TypeA, soa: true},

		{name: "schema version", qname: "dns-version." + z, qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 28800 IN TXT "1.1.0"`}},
		{name: "apex NS", qname: z, qtype: dns.TypeNS, answer: []string{"cluster.local. 5 IN NS ns.dns.cluster.local."}},
		{name: "apex A is NODATA", qname: z, qtype: dns.TypeA, soa: true},
		{name: "NS target exists without records", qname: "ns.dns." + z, qtype: dns.TypeA, soa: true},
		{name: "second-level label that is not served", qname: "foo." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "out of zone is REFUSED", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "zone transfers are REFUSED", qname: z, qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	})
}

func TestPeerView(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	const z = "cluster.local."
	runCases(t, h, []queryCase{
		{name: "unready endpoints are peers", qname: "nginx.default.peers." + z, qtype: dns.TypeA,
			answer: []string{
				"nginx.default.peers.cluster.local. 5 IN A 10.1.0.1",
				"nginx.default.peers.cluster.local. 5 IN A 10.1.0.2",
				"nginx.default.peers.cluster.local. 5 IN A 10.1.0.3",
			}},
		{name: "unready peer by name", qname: "web-2.nginx.default.peers." + z, qtype: dns.TypeA,
			answer: []string{"web-2.nginx.default.peers.cluster.local. 5 IN A 10.1.0.3"}},
		{name: "peer SRV targets stay in the peer view", qname: "_web._tcp.sleepy.default.peers." + z, qtype: dns.TypeSRV,
			answer: []string{"_web._tcp.sleepy.default.peers.cluster.local. 5 IN SRV 0 100 80 s-0.sleepy.default.peers.cluster.local."},
			extra:  []string{"s-0.sleepy.default.peers.cluster.local. 5 IN A 10.4.0.1"}},
		{name: "a namespace of only unready endpoints exists in the peer view", qname: "default.peers." + z, qtype: dns.TypeA, soa: true},
	})
}

func TestNotSynced(t *testing.T) {
	h := newTestHandler(t, false, seed()...)
	runCases(t, h, []queryCase{
		{name: "unknown service is SERVFAIL, never NXDOMAIN", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "known service is SERVFAIL too", qname: "nginx.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "reverse is SERVFAIL", qname: "1.0.1.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeServerFailure},
		{name: "apex SOA needs no data", qname: "cluster.local.", qtype: dns.TypeSOA,
			answer: []string{soaText(h, 0)}},
	})
	if err := h.Ready(); err == nil {
		t.Error("Ready before sync: want an error")
	}
}

func soaText(h *Handler, zi int) string {
	rr, _, err := dns.UnpackRR(h.soa(zi), 0)
	if err != nil {
		panic(err)
	}
	return rr.String()
}

func TestNegativeAnswersCarryTheNegativeTTL(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	m := new(dns.Msg)
	m.SetQuestion("nope.default.svc.cluster.local.", dns.TypeA)
	r := exchange(t, h, m, UDP)
	soa := r.Ns[0].(*dns.SOA)
	if soa.Hdr.Ttl != 1 || soa.Minttl != 1 || soa.Hdr.Name != "cluster.local." {
		t.Errorf("SOA %v: want cluster.local. with TTL and minimum 1", soa)
	}
}

func TestCaseIsPreserved(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	m := new(dns.Msg)
	m.SetQuestion("_Web._TCP.NGINX.default.SVC.Cluster.Local.", dns.TypeSRV)
	r := exchange(t, h, m, UDP)
	if r.Question[0].Name != m.Question[0].Name {
		t.Errorf("question %q, want %q", r.Question[0].Name, m.Question[0].Name)
	}
	for _, rr := range r.Answer {
		if rr.Header().Name != m.Question[0].Name {
			t.Errorf("owner %q, want the query's %q", rr.Header().Name, m.Question[0].Name)
		}
	}
	// The same name in another case must not see the first one's bytes.
	m.SetQuestion("_web._tcp.nginx.default.svc.cluster.local.", dns.TypeSRV)
	if r := exchange(t, h, m, UDP); r.Answer[0].Header().Name != m.Question[0].Name {
		t.Errorf("owner %q after a mixed-case query, want %q", r.Answer[0].Header().Name, m.Question[0].Name)
	}
}

// packQuery packs a query for name and type, with an OPT record of the
// given UDP size unless it is 0.
func packQuery(t testing.TB, name string, qtype uint16, ednsSize uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if ednsSize != 0 {
		m.SetEdns0(ednsSize, false)
	}
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// numbered is a service of n ready endpoints web-0 … web-<n-1> with one
// named port.
func numbered(name string, n int) Service {
	svc := Service{Namespace: "default", Name: name, Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	for i := range n {
		svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("web-%d", i), Addrs: addrs(fmt.Sprintf("10.8.%d.%d", i/250, i%250+1)), Ready: true})
	}
	return svc
}

func TestTruncation(t *testing.T) {
	st := NewStore()
	for _, s := range seed() {
		st.Upsert(s)
	}
	st.SetSynced()
	h, err := NewHandler(st, Config{Zones: []string{"cluster.local."}, MaxUDPSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	// big's SRV answer: 60 SRV records (about 2,800 bytes), then the 60
	// targets' A records as additional records, 4,357 bytes in all.
	const name = "big.default.svc.cluster.local."
	for _, tc := range []struct {
		name      string
		edns      uint16 // 0: no OPT
		tr        Transport
		truncated bool // TC, and some SRV records left out
		allExtra  bool
		limit     int
	}{
		{name: "UDP without EDNS fits 512 bytes", tr: UDP, truncated: true, limit: 512},
		{name: "UDP with EDNS 1232", edns: 1232, tr: UDP, truncated: true, limit: 1232},
		{name: "every SRV fits 4096 bytes: leaving out glue is not truncation", edns: 4096, tr: UDP, limit: 4096},
		{name: "UDP above the server cap is capped", edns: 65000, tr: UDP, limit: 4096},
		{name: "EDNS below 512 counts as 512", edns: 100, tr: UDP, truncated: true, limit: 512},
		{name: "TCP retry gets everything", tr: TCP, allExtra: true, limit: dns.MaxMsgSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.Answer(nil, packQuery(t, name, dns.TypeSRV, tc.edns), tc.tr)
			if len(b) > tc.limit {
				t.Errorf("response is %d bytes, limit %d", len(b), tc.limit)
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatal(err)
			}
			if r.Truncated != tc.truncated {
				t.Errorf("TC %v, want %v", r.Truncated, tc.truncated)
			}
			if r.Truncated != (len(r.Answer) < 60) {
				t.Errorf("TC %v with %d of 60 SRV records: TC must mean answers were left out", r.Truncated, len(r.Answer))
			}
			if r.Truncated && len(r.Extra) > 1 {
				t.Errorf("%d additional records in a truncated response, want none besides OPT", len(r.Extra)-1)
			}
			glue := 0
			for _, rr := range r.Extra {
				if rr.Header().Rrtype == dns.TypeA {
					glue++
				}
			}
			if tc.allExtra && glue != 60 {
				t.Errorf("%d additional records, want all 60", glue)
			}
			if tc.edns != 0 && r.IsEdns0() == nil {
				t.Error("no OPT in the response to an EDNS query")
			}
		})
	}
}

// TestTCOnlyWhenAnswersAreLeftOut is RFC 2181 §9 with the default
// settings: 20 SRV records fit a 1232-byte response, their glue does not,
// and the client must not be sent to TCP for glue it can do without.
func TestTCOnlyWhenAnswersAreLeftOut(t *testing.T) {
	h := newTestHandler(t, true, numbered("db", 20))
	for _, tc := range []struct {
		name      string
		qname     string
		truncated bool
	}{
		{name: "20 SRV fit, part of the glue does not", qname: "_http._tcp.db.default.svc.cluster.local."},
		{name: "service SRV too", qname: "db.default.svc.cluster.local."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := new(dns.Msg)
			if err := r.Unpack(h.Answer(nil, packQuery(t, tc.qname, dns.TypeSRV, 1232), UDP)); err != nil {
				t.Fatal(err)
			}
			if r.Truncated || len(r.Answer) != 20 {
				t.Fatalf("TC %v with %d SRV records, want all 20 without TC", r.Truncated, len(r.Answer))
			}
			glue := 0
			for _, rr := range r.Extra {
				if a, ok := rr.(*dns.A); ok {
					glue++
					want := fmt.Sprintf("web-%d.db.default.svc.cluster.local.", int(a.A[3])-1)
					if a.Hdr.Name != want {
						t.Errorf("glue %v, want the address of %s", a, want)
					}
				}
			}
			if glue == 0 || glue == 20 {
				t.Errorf("%d glue records, want some but not all of 20 in 1232 bytes", glue)
			}
		})
	}
}

// TestGlueKeepsWholeRRsets: a response cut in the additional section never
// carries part of an RRset, which a cache would take for all of it.
func TestGlueKeepsWholeRRsets(t *testing.T) {
	svc := numbered("multi", 12)
	for i := range svc.Endpoints {
		// Three addresses a host, an RRset of three A records each.
		svc.Endpoints[i].Addrs = addrs(fmt.Sprintf("10.7.%d.1", i), fmt.Sprintf("10.7.%d.2", i), fmt.Sprintf("10.7.%d.3", i))
	}
	h := newTestHandler(t, true, svc)
	for size := uint16(512); size <= 1232; size += 7 {
		r := new(dns.Msg)
		if err := r.Unpack(h.Answer(nil, packQuery(t, "_http._tcp.multi.default.svc.cluster.local.", dns.TypeSRV, size), UDP)); err != nil {
			t.Fatal(err)
		}
		perOwner := map[string]int{}
		for _, rr := range r.Extra {
			if rr.Header().Rrtype == dns.TypeA {
				perOwner[rr.Header().Name]++
			}
		}
		for owner, n := range perOwner {
			if n != 3 {
				t.Errorf("EDNS %d: %d of the 3 A records of %s", size, n, owner)
			}
		}
	}
}

// TestMixedSizesDoNotAllocate: clients of different EDNS sizes asking for
// the same large answer are served from the same bytes, as a client of one
// size is, instead of unpacking and truncating the answer again each time
// the size changes.
func TestMixedSizesDoNotAllocate(t *testing.T) {
	h := newTestHandler(t, true, numbered("web", 200))
	const name = "_http._tcp.web.default.svc.cluster.local."
	queries := [][]byte{
		packQuery(t, name, dns.TypeSRV, 0),
		packQuery(t, name, dns.TypeSRV, 1232),
		packQuery(t, name, dns.TypeSRV, 4096),
		packQuery(t, name, dns.TypeSRV, 700),
	}
	out := make([]byte, 0, dns.MaxMsgSize)
	for _, q := range queries {
		h.Answer(out, q, UDP) // builds the cached answer
	}
	if n := testing.AllocsPerRun(50, func() {
		for _, q := range queries {
			h.Answer(out, q, UDP)
		}
	}); n != 0 {
		t.Errorf("%v allocations per round of %d sizes, want 0", n, len(queries))
	}
}

func TestProtocolErrors(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	query := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	t.Run("class CH is REFUSED", func(t *testing.T) {
		m := query("version.bind.", dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		if r := exchange(t, h, m, UDP); r.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("class CH in the zone is REFUSED", func(t *testing.T) {
		m := query("nginx.default.svc.cluster.local.", dns.TypeA)
		m.Question[0].Qclass = dns.ClassCHAOS
		if r := exchange(t, h, m, UDP); r.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("EDNS version 1 is BADVERS", func(t *testing.T) {
		m := query("nginx.default.svc.cluster.local.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
		r := exchange(t, h, m, UDP)
		if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
			t.Errorf("rcode %s, OPT %v: want BADVERS with an OPT of version 0", dns.RcodeToString[r.Rcode], r.IsEdns0())
		}
	})
	t.Run("DO bit is copied", func(t *testing.T) {
		m := query("nginx.default.svc.cluster.local.", dns.TypeA)
		m.SetEdns0(1232, true)
		r := exchange(t, h, m, UDP)
		if r.IsEdns0() == nil || !r.IsEdns0().Do() || r.IsEdns0().UDPSize() != 1232 {
			t.Errorf("OPT %v: want DO set and size 1232", r.IsEdns0())
		}
	})
	t.Run("ANY answers one RRset (RFC 8482)", func(t *testing.T) {
		r := exchange(t, h, query("pg.db.svc.cluster.local.", dns.TypeANY), UDP)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Fatalf("got %v", r)
		}
		for _, rr := range r.Answer {
			if rr.Header().Rrtype != dns.TypeA {
				t.Errorf("ANY answer %v: want only the A RRset", rr)
			}
		}
	})
	t.Run("RD is copied, RA is not set", func(t *testing.T) {
		m := query("nginx.default.svc.cluster.local.", dns.TypeA)
		m.RecursionDesired = true
		r := exchange(t, h, m, UDP)
		if !r.RecursionDesired || r.RecursionAvailable {
			t.Errorf("RD %v RA %v, want RD and no RA", r.RecursionDesired, r.RecursionAvailable)
		}
	})
	t.Run("opcode NOTIFY is NOTIMP", func(t *testing.T) {
		m := query("cluster.local.", dns.TypeSOA)
		m.Opcode = dns.OpcodeNotify
		if r := exchange(t, h, m, UDP); r.Rcode != dns.RcodeNotImplemented {
			t.Errorf("rcode %s, want NOTIMP", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("two questions is FORMERR", func(t *testing.T) {
		m := query("cluster.local.", dns.TypeSOA)
		m.Question = append(m.Question, m.Question[0])
		if r := exchange(t, h, m, UDP); r.Rcode != dns.RcodeFormatError {
			t.Errorf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("a response is dropped", func(t *testing.T) {
		m := query("cluster.local.", dns.TypeSOA)
		m.Response = true
		if r := exchange(t, h, m, UDP); r != nil {
			t.Errorf("got %v, want no answer", r)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, q := range [][]byte{nil, {1, 2, 3}, make([]byte, 12), []byte("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01")} {
			b := h.Answer(nil, q, UDP)
			if b == nil {
				continue
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Errorf("response to %x does not parse: %v", q, err)
			} else if r.Rcode != dns.RcodeFormatError {
				t.Errorf("response to %x: rcode %s, want FORMERR", q, dns.RcodeToString[r.Rcode])
			}
		}
	})
}

func TestUpdatesReplaceAnswers(t *testing.T) {
	st := NewStore()
	st.SetSynced()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local."}
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := Service{Namespace: "default", Name: "nginx", Endpoints: []Endpoint{{Hostname: "web-0", Addrs: addrs("10.1.0.1"), Ready: true}}}
	a := func() []string {
		m := new(dns.Msg)
		m.SetQuestion("nginx.default.svc.cluster.local.", dns.TypeA)
		var out []string
		for _, rr := range exchange(t, h, m, UDP).Answer {
			out = append(out, rr.(*dns.A).A.String())
		}
		return out
	}
	st.Upsert(svc)
	if got := a(); !slices.Equal(got, []string{"10.1.0.1"}) {
		t.Fatalf("got %v", got)
	}
	svc.Endpoints[0].Addrs = addrs("10.1.0.9")
	st.Upsert(svc)
	if got := a(); !slices.Equal(got, []string{"10.1.0.9"}) {
		t.Fatalf("after update: got %v, want the new address", got)
	}
	st.Delete("default", "nginx")
	if got := a(); got != nil {
		t.Fatalf("after delete: got %v", got)
	}
}

func TestBadConfig(t *testing.T) {
	for _, zones := range [][]string{
		{"bad..zone"}, {"x.in-addr.arpa."}, {"a.", "A."}, {strings.Repeat("a.", 125)},
		{"."}, // the root: every name, and an NS target ns.dns.. that cannot be packed
		{"cluster.local.", "peers.cluster.local."},   // the longer zone would shadow the other's peer view
		{"Peers.Cluster.Local.", "cluster.local."},   // in either order, in any case
		{"10.in-addr.arpa.", "1.10.in-addr.arpa."},   // reverse zones too
		{"in-addr.arpa.", "cluster.local.", "arpa."}, // arpa. holds in-addr.arpa.
	} {
		if _, err := NewHandler(NewStore(), Config{Zones: zones}); err == nil {
			t.Errorf("zones %q: want an error", zones)
		}
	}
}

// TestDefaultUDPSizeCap: without configuration, no UDP response is larger
// than 1232 bytes, whatever the client advertises (DNS flag day 2020).
func TestDefaultUDPSizeCap(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	b := h.Answer(nil, packQuery(t, "big.default.svc.cluster.local.", dns.TypeSRV, 4096), UDP)
	if len(b) > 1232 {
		t.Errorf("response of %d bytes to EDNS 4096, want at most 1232", len(b))
	}
}

func TestErrorAnswers(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	const name = "nginx.default.svc.cluster.local."
	withEDNS := func(m *dns.Msg) *dns.Msg { m.SetEdns0(1232, true); return m }
	query := func(qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	for _, tc := range []struct {
		name     string
		query    func() *dns.Msg
		rcode    int
		question bool // the query's question echoed
	}{
		{name: "DSO without a question is NOTIMP (RFC 8490)", query: func() *dns.Msg {
			m := new(dns.Msg)
			m.Opcode = dns.OpcodeStateful
			return m
		}, rcode: dns.RcodeNotImplemented},
		{name: "DSO with EDNS is NOTIMP", query: func() *dns.Msg {
			m := withEDNS(new(dns.Msg))
			m.Opcode = dns.OpcodeStateful
			return m
		}, rcode: dns.RcodeNotImplemented},
		{name: "NOTIFY is NOTIMP", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeSOA))
			m.Opcode = dns.OpcodeNotify
			return m
		}, rcode: dns.RcodeNotImplemented, question: true},
		{name: "UPDATE is NOTIMP", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeSOA))
			m.Opcode = dns.OpcodeUpdate
			return m
		}, rcode: dns.RcodeNotImplemented, question: true},
		{name: "two questions are FORMERR", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.Question = append(m.Question, m.Question[0])
			return m
		}, rcode: dns.RcodeFormatError},
		{name: "no question is FORMERR", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.Question = nil
			return m
		}, rcode: dns.RcodeFormatError},
		{name: "an answer section in a query is FORMERR", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}}}
			return m
		}, rcode: dns.RcodeFormatError, question: true},
		{name: "two OPT records are FORMERR", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.Extra = append(m.Extra, m.Extra[0])
			return m
		}, rcode: dns.RcodeFormatError, question: true},
		{name: "qtype OPT is FORMERR", query: func() *dns.Msg { return withEDNS(query(dns.TypeOPT)) }, rcode: dns.RcodeFormatError, question: true},
		{name: "class CH is REFUSED", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}, rcode: dns.RcodeRefused, question: true},
		{name: "out of zone is REFUSED", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.Question[0].Name = "example.com."
			return m
		}, rcode: dns.RcodeRefused, question: true},
		{name: "EDNS version 1 is BADVERS", query: func() *dns.Msg {
			m := withEDNS(query(dns.TypeA))
			m.IsEdns0().SetVersion(1)
			return m
		}, rcode: dns.RcodeBadVers, question: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.query()
			m.Id = 4711
			r := exchange(t, h, m, UDP)
			if r == nil {
				t.Fatal("no answer")
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if r.Opcode != m.Opcode {
				t.Errorf("opcode %d, want the query's %d", r.Opcode, m.Opcode)
			}
			var want []dns.Question
			if tc.question {
				want = m.Question
			}
			if diff := cmp.Diff(want, r.Question, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("question (-want +got):\n%s", diff)
			}
			if len(r.Answer)+len(r.Ns) != 0 {
				t.Errorf("records in an error response: %v %v", r.Answer, r.Ns)
			}
			opt := r.IsEdns0()
			if m.IsEdns0() == nil {
				if opt != nil {
					t.Errorf("OPT %v in the response to a query without one", opt)
				}
				return
			}
			if opt == nil || opt.Version() != 0 || opt.UDPSize() != 1232 || !opt.Do() {
				t.Errorf("OPT %v, want version 0, size 1232 and DO copied (RFC 6891 §7)", opt)
			}
		})
	}
}

// TestTSIGIsBADKEY: peerdns has no keys, so a signed query gets NOTAUTH
// with an unsigned TSIG record carrying BADKEY (RFC 8945 §5.2), never an
// answer the client would take for a verified one.
func TestTSIGIsBADKEY(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	for _, tc := range []struct {
		name string
		edns bool
	}{{name: "without EDNS"}, {name: "with EDNS", edns: true}} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("nginx.default.svc.cluster.local.", dns.TypeA)
			if tc.edns {
				m.SetEdns0(1232, false)
			}
			signed := time.Now().Unix()
			m.SetTsig("transfer.key.", dns.HmacSHA256, 300, signed)
			q, _, err := dns.TsigGenerate(m, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "", false)
			if err != nil {
				t.Fatal(err)
			}
			b := h.Answer(nil, q, UDP)
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("response %x: %v", b, err)
			}
			if r.Rcode != dns.RcodeNotAuth || len(r.Answer) != 0 {
				t.Fatalf("rcode %s with %d answers, want NOTAUTH and none", dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			tsig := r.IsTsig()
			if tsig == nil || r.Extra[len(r.Extra)-1] != dns.RR(tsig) {
				t.Fatalf("additional %v: want a TSIG record last", r.Extra)
			}
			want := &dns.TSIG{
				Hdr:        dns.RR_Header{Name: "transfer.key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY, Rdlength: tsig.Hdr.Rdlength},
				Algorithm:  dns.HmacSHA256,
				TimeSigned: uint64(signed),
				Fudge:      300,
				OrigId:     m.Id,
				Error:      dns.RcodeBadKey,
			}
			if diff := cmp.Diff(want, tsig); diff != "" {
				t.Errorf("TSIG (-want +got):\n%s", diff)
			}
			if tc.edns != (r.IsEdns0() != nil) {
				t.Errorf("OPT %v, want one exactly when the query had one", r.IsEdns0())
			}
			if len(r.Question) != 1 || r.Question[0] != m.Question[0] {
				t.Errorf("question %v, want the query's", r.Question)
			}
		})
	}
}
