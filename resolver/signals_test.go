package resolver

import (
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// newSignalHandler is newTestHandler with NSID "peerdns-0" and edit
// applied to the config.
func newSignalHandler(t testing.TB, synced bool, edit func(*Config)) *Handler {
	t.Helper()
	st := NewStore()
	for _, s := range seed() {
		st.Upsert(s)
	}
	if synced {
		st.SetSynced()
	}
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa."}
	cfg.NSID = "peerdns-0"
	if edit != nil {
		edit(&cfg)
	}
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func queryWith(name string, qtype uint16, opts ...dns.EDNS0) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if opts != nil {
		m.SetEdns0(1232, false)
		o := m.IsEdns0()
		o.Option = opts
	}
	return m
}

func option[T dns.EDNS0](r *dns.Msg) (T, bool) {
	var zero T
	if o := r.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if v, ok := opt.(T); ok {
				return v, true
			}
		}
	}
	return zero, false
}

func TestNSID(t *testing.T) {
	const name = "web-1.nginx.default.svc.cluster.local."
	h := newSignalHandler(t, true, nil)
	r := exchange(t, h, queryWith(name, dns.TypeA, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}), UDP)
	if nsid, ok := option[*dns.EDNS0_NSID](r); !ok || nsid.Nsid != hex.EncodeToString([]byte("peerdns-0")) {
		t.Errorf("NSID %v, want peerdns-0 in\n%v", nsid, r)
	}
	if len(r.Answer) != 1 {
		t.Errorf("answer %v", r.Answer)
	}
	r = exchange(t, h, queryWith(name, dns.TypeA, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}), UDP)
	if _, ok := option[*dns.EDNS0_NSID](r); ok {
		t.Errorf("NSID sent unasked:\n%v", r)
	}
	h = newSignalHandler(t, true, func(c *Config) { c.NSID = "" })
	r = exchange(t, h, queryWith(name, dns.TypeA, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}), UDP)
	if _, ok := option[*dns.EDNS0_NSID](r); ok {
		t.Errorf("NSID sent without one configured:\n%v", r)
	}
}

func TestChaosIdentity(t *testing.T) {
	ch := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Question[0].Qclass = dns.ClassCHAOS
		return m
	}
	h := newSignalHandler(t, true, nil)
	for _, name := range []string{"id.server.", "hostname.bind.", "ID.Server."} {
		r := exchange(t, h, ch(name, dns.TypeTXT), UDP)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s CH TXT: %v", name, r)
		}
		txt, ok := r.Answer[0].(*dns.TXT)
		if !ok || txt.Hdr.Class != dns.ClassCHAOS || !strings.EqualFold(txt.Hdr.Name, name) || len(txt.Txt) != 1 || txt.Txt[0] != "peerdns-0" {
			t.Errorf("%s CH TXT: %v, want the NSID", name, r.Answer[0])
		}
	}
	if r := exchange(t, h, ch("id.server.", dns.TypeA), UDP); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("id.server CH A: %v, want NODATA", r)
	}
	if r := exchange(t, h, ch("version.bind.", dns.TypeTXT), UDP); r.Rcode != dns.RcodeRefused {
		t.Errorf("version.bind CH TXT: %v, want REFUSED", r)
	}
	h = newSignalHandler(t, true, func(c *Config) { c.NSID = "" })
	if r := exchange(t, h, ch("id.server.", dns.TypeTXT), UDP); r.Rcode != dns.RcodeRefused {
		t.Errorf("id.server CH TXT without an NSID: %v, want REFUSED", r)
	}
}

// syncedAt is a SyncStatus whose last sync the test sets.
type syncedAt struct{ unixNano atomic.Int64 }

func (s *syncedAt) LastSynced() time.Time { return time.Unix(0, s.unixNano.Load()) }

func TestExtendedErrors(t *testing.T) {
	ede := func(r *dns.Msg) string {
		if e, ok := option[*dns.EDNS0_EDE](r); ok {
			return dns.ExtendedErrorCodeToString[e.InfoCode]
		}
		return ""
	}
	const name = "web-1.nginx.default.svc.cluster.local."
	edns := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	t.Run("not ready", func(t *testing.T) {
		h := newSignalHandler(t, false, nil)
		for _, q := range []string{name, "1.0.1.10.in-addr.arpa."} {
			r := exchange(t, h, queryWith(q, dns.TypeA, edns), UDP)
			if r.Rcode != dns.RcodeServerFailure || ede(r) != "Not Ready" {
				t.Errorf("%s before sync: %s, EDE %q; want SERVFAIL, Not Ready", q, dns.RcodeToString[r.Rcode], ede(r))
			}
		}
	})
	h := newSignalHandler(t, true, nil)
	for _, bc := range []struct {
		name  string
		query *dns.Msg
		rcode int
		ede   string
	}{
		{name: "out of zone", query: queryWith("example.com.", dns.TypeA, edns), rcode: dns.RcodeRefused, ede: "Not Authoritative"},
		{name: "zone transfer", query: queryWith("cluster.local.", dns.TypeAXFR, edns), rcode: dns.RcodeRefused, ede: "Not Supported"},
		{name: "an answer", query: queryWith(name, dns.TypeA, edns), rcode: dns.RcodeSuccess},
	} {
		t.Run(bc.name, func(t *testing.T) {
			r := exchange(t, h, bc.query, UDP)
			if r.Rcode != bc.rcode || ede(r) != bc.ede {
				t.Errorf("%s, EDE %q; want %s, %q", dns.RcodeToString[r.Rcode], ede(r), dns.RcodeToString[bc.rcode], bc.ede)
			}
		})
	}
	t.Run("no EDNS, no OPT", func(t *testing.T) {
		if r := exchange(t, h, queryWith("example.com.", dns.TypeA), UDP); r.IsEdns0() != nil || r.Rcode != dns.RcodeRefused {
			t.Errorf("REFUSED without EDNS:\n%v", r)
		}
	})
	t.Run("stale", func(t *testing.T) {
		var sync syncedAt
		sync.unixNano.Store(time.Now().UnixNano())
		h := newSignalHandler(t, true, func(c *Config) { c.Sync, c.StaleAfter = &sync, time.Minute })
		if r := exchange(t, h, queryWith(name, dns.TypeA, edns), UDP); ede(r) != "" {
			t.Errorf("fresh: EDE %q", ede(r))
		}
		sync.unixNano.Store(time.Now().Add(-2 * time.Minute).UnixNano())
		for _, q := range []string{name, "nope.default.svc.cluster.local.", "1.0.1.10.in-addr.arpa."} {
			r := exchange(t, h, queryWith(q, dns.TypeA, edns), UDP)
			if ede(r) != "Stale Answer" || r.Rcode == dns.RcodeServerFailure {
				t.Errorf("%s, synced 2 minutes ago: %s, EDE %q; want the answer with Stale Answer", q, dns.RcodeToString[r.Rcode], ede(r))
			}
		}
		if r := exchange(t, h, queryWith("cluster.local.", dns.TypeSOA, edns), UDP); ede(r) != "" {
			t.Errorf("the apex SOA, not from the store: EDE %q", ede(r))
		}
	})
}

func TestReadyFailsWhenStale(t *testing.T) {
	var sync syncedAt
	sync.unixNano.Store(time.Now().UnixNano())
	h := newSignalHandler(t, true, func(c *Config) { c.Sync, c.MaxStaleness = &sync, time.Minute })
	if err := h.Ready(); err != nil {
		t.Errorf("fresh: %v", err)
	}
	sync.unixNano.Store(time.Now().Add(-2 * time.Minute).UnixNano())
	if err := h.Ready(); err == nil {
		t.Error("ready 2 minutes after the last sync, with a 1 minute limit")
	}
	h = newSignalHandler(t, true, func(c *Config) { c.Sync = &sync })
	if err := h.Ready(); err != nil {
		t.Errorf("without MaxStaleness: %v", err)
	}
}

func TestTCPKeepalive(t *testing.T) {
	s := startServer(t, ServerConfig{})
	keepalive := func(net string) (*dns.EDNS0_TCP_KEEPALIVE, bool) {
		t.Helper()
		c := &dns.Client{Net: net, Timeout: 5 * time.Second}
		r, _, err := c.Exchange(queryWith("cluster.local.", dns.TypeSOA, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}), s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return option[*dns.EDNS0_TCP_KEEPALIVE](r)
	}
	if k, ok := keepalive("tcp"); !ok || k.Timeout != 300 {
		t.Errorf("TCP: keepalive %v, want 300 (30 s, the default idle timeout)", k)
	}
	if k, ok := keepalive("udp"); ok {
		t.Errorf("UDP: keepalive %v, want none (RFC 7828 §3.2.1)", k)
	}
	// A client's option with a TIMEOUT (RFC 7828 §3.1: it sends none) is
	// ignored.
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(queryWith("cluster.local.", dns.TypeSOA, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: 100}), s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := option[*dns.EDNS0_TCP_KEEPALIVE](r); ok || r.Rcode != dns.RcodeSuccess {
		t.Errorf("a client's TIMEOUT: %s, keepalive %v; want NOERROR without keepalive", dns.RcodeToString[r.Rcode], k)
	}
}

// TestDigSignals: what an operator sees with dig.
func TestDigSignals(t *testing.T) {
	s := startServer(t, ServerConfig{Handler: newSignalHandler(t, true, nil)})
	for _, bc := range []struct {
		args []string
		want []string
	}{
		{args: []string{"+nsid", "A", "web-1.nginx.default.svc.cluster.local"}, want: []string{"status: NOERROR", `NSID: 70 65 65 72 64 6e 73 2d 30 ("peerdns-0")`}},
		{args: []string{"+tcp", "+keepalive", "SOA", "cluster.local"}, want: []string{"TCP KEEPALIVE: 30.0 secs"}},
		{args: []string{"A", "example.com"}, want: []string{"status: REFUSED", "EDE: 20 (Not Authoritative)"}},
		{args: []string{"CH", "TXT", "id.server"}, want: []string{`id.server.		0	CH	TXT	"peerdns-0"`}},
	} {
		t.Run(strings.Join(bc.args, " "), func(t *testing.T) {
			out := dig(t, s, bc.args...)
			for _, want := range bc.want {
				if !strings.Contains(out, want) {
					t.Errorf("dig output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	t.Run("not ready", func(t *testing.T) {
		s := startServer(t, ServerConfig{Handler: newSignalHandler(t, false, nil)})
		out := dig(t, s, "A", "web-1.nginx.default.svc.cluster.local")
		if !strings.Contains(out, "status: SERVFAIL") || !strings.Contains(out, "EDE: 14 (Not Ready)") {
			t.Errorf("before sync:\n%s", out)
		}
	})
}

// TestSignalsDoNotAllocate: NSID, keepalive and the extended errors are
// written without an allocation, like the answers they come with.
func TestSignalsDoNotAllocate(t *testing.T) {
	var sync syncedAt
	sync.unixNano.Store(time.Now().Add(-time.Hour).UnixNano())
	h := newSignalHandler(t, true, func(c *Config) { c.Sync = &sync })
	var queries [][]byte
	for _, m := range []*dns.Msg{
		queryWith("web-1.nginx.default.svc.cluster.local.", dns.TypeA, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}),
		queryWith("example.com.", dns.TypeA, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}),
	} {
		q, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, q)
	}
	out := make([]byte, 0, dns.MaxMsgSize)
	for _, q := range queries {
		h.answerConn(out, q, via{t: TCP, keepalive: 300}) // builds the cached answer
	}
	if n := testing.AllocsPerRun(50, func() {
		for _, q := range queries {
			h.answerConn(out, q, via{t: TCP, keepalive: 300})
		}
	}); n != 0 {
		t.Errorf("%v allocations per round, want 0", n)
	}
}
