package resolver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// zoneOfLength returns a forward zone whose presentation form, trailing dot
// included, is n characters long.
func zoneOfLength(n int) string {
	var b strings.Builder
	for b.Len() < n-len("local.") {
		l := min(63, n-len("local.")-b.Len()-1)
		if l < 1 { // no room for a label and its dot: lengthen the last one
			break
		}
		b.WriteString(strings.Repeat("z", l) + ".")
	}
	return b.String() + "local."
}

// TestZoneLengthBound: a zone must leave room for the longest names the
// specification allows below it, <63>.<63>.<63>.peers.<zone>, within 255
// octets; longer zones are refused at start-up instead of producing answers
// that cannot be encoded.
func TestZoneLengthBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		zone string
		ok   bool
	}{
		{name: "longest", zone: zoneOfLength(56), ok: true},
		{name: "one too long", zone: zoneOfLength(57), ok: false},
		{name: "far too long", zone: zoneOfLength(200), ok: false},
		// A /96 IPv6 reverse zone: 57 characters, but its names are
		// addresses of fixed length.
		{name: "long reverse zone", zone: "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.zone) != len(dns.Fqdn(tc.zone)) {
				t.Fatalf("test zone %q not fully qualified", tc.zone)
			}
			cfg := DefaultConfig()
			cfg.Zones = []string{tc.zone, "10.in-addr.arpa."}
			_, err := NewHandler(NewStore(), cfg)
			if (err == nil) != tc.ok {
				t.Errorf("zone of %d characters: err = %v, want ok=%v", len(tc.zone), err, tc.ok)
			}
		})
	}
}

// TestLongestNamesEncode serves the longest names the specification allows
// under the longest zone accepted, and checks that every answer packs and
// unpacks with miekg/dns and holds the records.
func TestLongestNamesEncode(t *testing.T) {
	zone := zoneOfLength(56)
	l63 := func(c string) string { return strings.Repeat(c, 63) }
	svc := Service{Namespace: l63("n"), Name: l63("s"), Endpoints: []Endpoint{
		{Hostname: l63("h"), Addrs: addrs("10.0.0.1", "fd00::1"), Ready: true, Ports: []Port{{Name: "abcdefghijklmno", Protocol: "sctp", Port: 1}}},
		{Addrs: addrs("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), Ready: false, Ports: []Port{{Name: "abcdefghijklmno", Protocol: "sctp", Port: 2}}},
	}}
	st := NewStore()
	st.Upsert(svc)
	st.SetSynced()
	cfg := DefaultConfig()
	cfg.Zones = []string{zone, "10.in-addr.arpa.", "ip6.arpa."}
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := l63("s") + "." + l63("n") + "."
	host := l63("h") + "."
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"host A", host + base + "svc." + zone, dns.TypeA},
		{"host AAAA", host + base + "peers." + zone, dns.TypeAAAA},
		{"dashed host", "ffff-ffff-ffff-ffff-ffff-ffff-ffff-fffe." + base + "peers." + zone, dns.TypeAAAA},
		{"service SRV", base + "svc." + zone, dns.TypeSRV},
		{"service SRV peers", base + "peers." + zone, dns.TypeSRV},
		{"port SRV peers", "_abcdefghijklmno._sctp." + base + "peers." + zone, dns.TypeSRV},
		{"host ANY", host + base + "peers." + zone, dns.TypeANY},
		{"PTR v4", "1.0.0.10.in-addr.arpa.", dns.TypePTR},
		{"PTR v6", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR},
		{"apex NS", zone, dns.TypeNS},
		{"apex SOA", zone, dns.TypeSOA},
		{"version", "dns-version." + zone, dns.TypeTXT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tr := range []Transport{UDP, TCP} {
				m := new(dns.Msg)
				m.SetQuestion(tc.qname, tc.qtype)
				m.SetEdns0(4096, false)
				r := exchange(t, h, m, tr) // fails the test unless it unpacks
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
					t.Errorf("%s over %s: rcode %s, %d answers, want records", tc.qname, tr, dns.RcodeToString[r.Rcode], len(r.Answer))
				}
				if _, err := r.Pack(); err != nil {
					t.Errorf("%s over %s: repack: %v", tc.qname, tr, err)
				}
			}
		})
	}
}

// TestUnencodableNamesDropped: a name that cannot be one label drops only
// what carries it, and is counted.
func TestUnencodableNamesDropped(t *testing.T) {
	web := []Port{{Name: "web", Protocol: "tcp", Port: 80}}
	st := NewStore()
	st.Upsert(Service{Namespace: "default", Name: "odd", Endpoints: []Endpoint{
		{Hostname: "web-0", Addrs: addrs("10.6.0.1"), Ready: true, Ports: append([]Port{{Name: "sixteen-chars-xx", Protocol: "tcp", Port: 81}}, web...)},
		{Hostname: strings.Repeat("h", 64), Addrs: addrs("10.6.0.2"), Ready: true, Ports: web},
		{Hostname: "a.b", Addrs: addrs("10.6.0.3"), Ready: false, Ports: web},
		{Hostname: "_tcp", Addrs: addrs("10.6.0.4"), Ready: true, Ports: web},
	}})
	st.Upsert(Service{Namespace: "default", Name: "a.b", Endpoints: []Endpoint{{Hostname: "x", Addrs: addrs("10.6.1.1"), Ready: true}}})
	st.SetSynced()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local."}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const s = "odd.default.svc.cluster.local."
	for _, q := range []struct {
		qname string
		qtype uint16
		want  []string
	}{
		{"_web._tcp." + s, dns.TypeSRV, []string{"_web._tcp." + s + " 5 IN SRV 0 100 80 web-0." + s}},
		{s, dns.TypeA, []string{s + " 5 IN A 10.6.0.1"}},
		{"_web._tcp.odd.default.peers.cluster.local.", dns.TypeSRV, []string{"_web._tcp.odd.default.peers.cluster.local. 5 IN SRV 0 100 80 web-0.odd.default.peers.cluster.local."}},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.qname, q.qtype)
		r := exchange(t, h, m, TCP)
		if diff := cmp.Diff(parseZone(t, q.want...), zoneText(r.Answer)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", q.qname, diff)
		}
	}
	// 16-character port name, 64-octet hostname, "a.b", "_tcp" (read as a
	// protocol label), service "a.b".
	if got := gatherValue(t, reg, "peerdns_unencodable_names_total"); got != 5 {
		t.Errorf("peerdns_unencodable_names_total = %v, want 5", got)
	}
}

// gatherValue returns the value of the unlabelled metric name in reg.
func gatherValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
