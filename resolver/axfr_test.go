package resolver

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// xfrFixture is a server of seed() with transfers, on loopback.
type xfrFixture struct {
	h   *Handler
	x   *Transfers
	s   *Server
	reg *prometheus.Registry
}

func newXfrFixture(t *testing.T, tweak func(*TransferConfig)) *xfrFixture {
	t.Helper()
	st := NewStore()
	for _, s := range seed() {
		st.Upsert(s)
	}
	st.SetSynced()
	cfg := DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "10.in-addr.arpa.", "0.0.d.f.ip6.arpa."}
	cfg.NSAddresses = addrs("127.0.0.1", "::1")
	h, err := NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &xfrFixture{h: h, reg: prometheus.NewRegistry()}
	xc := DefaultTransferConfig()
	xc.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	xc.Registerer = f.reg
	if tweak != nil {
		tweak(&xc)
	}
	if f.x, err = NewTransfers(h, xc); err != nil {
		t.Fatal(err)
	}
	f.s = startServer(t, ServerConfig{Handler: h, Transfers: f.x})
	return f
}

// transferIn runs a transfer of q against f's server with miekg/dns's
// client, which checks the SOAs and, given a key, every message's
// signature. It returns the records and the number of messages.
func (f *xfrFixture) transferIn(t *testing.T, q *dns.Msg, key *TSIGKey) ([]dns.RR, int, error) {
	t.Helper()
	tr := new(dns.Transfer)
	if key != nil {
		tr.TsigSecret = map[string]string{key.Name: key.Secret}
		q.SetTsig(key.Name, key.Algorithm, 300, timeNow())
	}
	env, err := tr.In(q, f.s.Addr().String())
	if err != nil {
		return nil, 0, err
	}
	var rrs []dns.RR
	msgs := 0
	for e := range env {
		if e.Error != nil {
			err = e.Error
			continue
		}
		msgs++
		rrs = append(rrs, e.RR...)
	}
	return rrs, msgs, err
}

func (f *xfrFixture) axfr(t *testing.T, zone string) []dns.RR {
	t.Helper()
	q := new(dns.Msg)
	q.SetAxfr(zone)
	rrs, _, err := f.transferIn(t, q, nil)
	if err != nil {
		t.Fatalf("AXFR %s: %v", zone, err)
	}
	return rrs
}

// rrsets groups records by owner and type, each set's lines sorted.
func rrsets(rrs []dns.RR) map[string][]string {
	out := map[string][]string{}
	for _, rr := range rrs {
		k := strings.ToLower(rr.Header().Name) + " " + dns.TypeToString[rr.Header().Rrtype]
		out[k] = append(out[k], rr.String())
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// Every record set of the transferred zone is what a query for it answers,
// and every name the zone answers is in it.
func TestAXFRIsWhatQueriesAnswer(t *testing.T) {
	f := newXfrFixture(t, nil)
	for _, zone := range []string{"cluster.local.", "10.in-addr.arpa.", "0.0.d.f.ip6.arpa."} {
		t.Run(zone, func(t *testing.T) {
			rrs := f.axfr(t, zone)
			if rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
				t.Fatalf("first %v, last %v: want the SOA", rrs[0], rrs[len(rrs)-1])
			}
			if again := f.axfr(t, zone); !slices.EqualFunc(rrs, again, func(a, b dns.RR) bool { return a.String() == b.String() }) {
				t.Error("two transfers of an unchanged zone differ in content or order")
			}
			sets := rrsets(rrs[1 : len(rrs)-1])
			for k, want := range sets {
				name, typ, _ := strings.Cut(k, " ")
				m := new(dns.Msg).SetQuestion(name, dns.StringToType[typ])
				r := exchange(t, f.h, m, TCP)
				if diff := cmp.Diff(want, rrsets(r.Answer)[k]); diff != "" {
					t.Errorf("%s: transferred records differ from the answer (-axfr +query):\n%s", k, diff)
				}
			}
			for _, k := range wantNames[zone] {
				if sets[k] == nil {
					t.Errorf("%s: not in the transfer", k)
				}
			}
		})
	}
}

var wantNames = map[string][]string{
	"cluster.local.": {
		"cluster.local. NS", "ns.dns.cluster.local. A", "ns.dns.cluster.local. AAAA", "dns-version.cluster.local. TXT",
		"nginx.default.svc.cluster.local. A", "nginx.default.svc.cluster.local. SRV",
		"web-0.nginx.default.svc.cluster.local. A", "_web._tcp.nginx.default.svc.cluster.local. SRV",
		"web-2.nginx.default.peers.cluster.local. A", "s-0.sleepy.default.peers.cluster.local. A",
		"pg.db.svc.cluster.local. AAAA", "pg-0.pg.db.svc.cluster.local. AAAA", "_gossip._udp.pg.db.svc.cluster.local. SRV",
		"10-3-0-5.anon.default.svc.cluster.local. A",
	},
	"10.in-addr.arpa.":  {"10.in-addr.arpa. NS", "1.0.1.10.in-addr.arpa. PTR", "5.0.3.10.in-addr.arpa. PTR"},
	"0.0.d.f.ip6.arpa.": {"0.0.d.f.ip6.arpa. NS", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. PTR"},
}

func TestAXFRInSeveralMessages(t *testing.T) {
	f := newXfrFixture(t, nil)
	f.h.store.Upsert(numbered("many", 2000))
	q := new(dns.Msg)
	q.SetAxfr("cluster.local.")
	rrs, msgs, err := f.transferIn(t, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if msgs < 2 {
		t.Errorf("%d records in %d message(s); want several", len(rrs), msgs)
	}
	if n := len(rrsets(rrs)["web-1999.many.default.svc.cluster.local. A"]); n != 1 {
		t.Errorf("the last endpoint's A record: %d in the transfer, want 1", n)
	}
}

// refusal sends q over net to f and returns the rcode.
func (f *xfrFixture) refusal(t *testing.T, q *dns.Msg, network string, key *TSIGKey) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network}
	if key != nil {
		c.TsigSecret = map[string]string{key.Name: key.Secret}
		q.SetTsig(key.Name, key.Algorithm, 300, timeNow())
	}
	r, _, err := c.Exchange(q, f.s.Addr().String())
	return r, err
}

func TestTransferRefusals(t *testing.T) {
	key := testKey(t, "xfr.", "hmac-sha256")
	other := testKey(t, "xfr.", "hmac-sha256") // same name, another secret
	axfr := func(zone string) *dns.Msg { q := new(dns.Msg); q.SetAxfr(zone); return q }
	cases := []struct {
		name    string
		cfg     func(*TransferConfig)
		q       *dns.Msg
		network string
		key     *TSIGKey
		rcode   int
		reason  string
	}{
		{"AXFR over UDP", nil, axfr("cluster.local."), "udp", nil, dns.RcodeRefused, "udp"},
		{"AXFR over UDP with EDNS", nil, axfr("cluster.local.").SetEdns0(1232, false), "udp", nil, dns.RcodeRefused, "udp"},
		{"address not allowed", func(c *TransferConfig) { c.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, axfr("cluster.local."), "tcp", nil, dns.RcodeRefused, "address"},
		{"default: nobody allowed", func(c *TransferConfig) { c.Allow = nil }, axfr("cluster.local."), "tcp", nil, dns.RcodeRefused, "address"},
		{"unsigned when a key is required", func(c *TransferConfig) { c.Key = key }, axfr("cluster.local."), "tcp", nil, dns.RcodeRefused, "unsigned"},
		{"not a zone served", nil, axfr("svc.cluster.local."), "tcp", nil, dns.RcodeNotAuth, "zone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newXfrFixture(t, tc.cfg)
			r, err := f.refusal(t, tc.q, tc.network, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.rcode || len(r.Answer) != 0 {
				t.Errorf("rcode %s with %d records; want %s and none", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tc.rcode])
			}
			if (tc.q.IsEdns0() != nil) != (r.IsEdns0() != nil) {
				t.Errorf("OPT in the query: %v, in the refusal: %v", tc.q.IsEdns0() != nil, r.IsEdns0() != nil)
			}
			if got := testutil.ToFloat64(f.x.metrics.refusals.WithLabelValues(tc.reason)); got != 1 {
				t.Errorf("peerdns_transfer_refusals_total{reason=%q} = %v, want 1", tc.reason, got)
			}
		})
	}
	t.Run("TSIG not the last record", func(t *testing.T) {
		f := newXfrFixture(t, nil)
		q := axfr("cluster.local.")
		q.Extra = []dns.RR{
			&dns.TSIG{Hdr: dns.RR_Header{Name: "xfr.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY}, Algorithm: dns.HmacSHA256, Fudge: 300},
			&dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}},
		}
		r, err := f.refusal(t, q, "tcp", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeFormatError || len(r.Answer) != 0 {
			t.Errorf("rcode %s with %d records; want FORMERR and none", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	})
	t.Run("signed too long ago", func(t *testing.T) {
		f := newXfrFixture(t, func(c *TransferConfig) { c.Key = key })
		q := axfr("cluster.local.")
		q.SetTsig(key.Name, key.Algorithm, 300, timeNow()-3600)
		wire, reqMAC, err := dns.TsigGenerate(q, key.Secret, "", false)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", f.s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dc := &dns.Conn{Conn: c}
		if _, err := dc.Write(wire); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, dns.MaxMsgSize)
		n, err := dc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		ts := r.IsTsig()
		if r.Rcode != dns.RcodeNotAuth || len(r.Answer) != 0 || ts == nil || ts.Error != dns.RcodeBadTime || ts.MAC == "" || ts.OtherLen != 6 {
			t.Errorf("reply %v; want NOTAUTH, no records, a signed TSIG with error BADTIME and the server's time", r)
		}
		// The MAC covers the request's MAC, the reply and its TSIG fields.
		// workaround: miekg/dns's TsigVerify rejects every NOTAUTH message
		// before looking at the MAC, so the test signs the same reply
		// again and compares.
		if ts != nil {
			again := r.Copy()
			again.Extra = again.Extra[:len(again.Extra)-1]
			again.SetTsig(ts.Hdr.Name, ts.Algorithm, ts.Fudge, int64(ts.TimeSigned))
			sig := again.Extra[len(again.Extra)-1].(*dns.TSIG)
			sig.Error, sig.OtherLen, sig.OtherData = ts.Error, ts.OtherLen, ts.OtherData
			if _, mac, err := dns.TsigGenerate(again, key.Secret, reqMAC, false); err != nil || !strings.EqualFold(mac, ts.MAC) {
				t.Errorf("the BADTIME reply's MAC is not the key's over the request's MAC (%v)", err)
			}
		}
		if got := testutil.ToFloat64(f.x.metrics.refusals.WithLabelValues("bad_time")); got != 1 {
			t.Errorf("bad_time refusals %v, want 1", got)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		f := newXfrFixture(t, func(c *TransferConfig) { c.Key = key })
		_, _, err := f.transferIn(t, axfr("cluster.local."), other)
		if err == nil {
			t.Fatal("a transfer signed with another secret succeeded")
		}
		if got := testutil.ToFloat64(f.x.metrics.refusals.WithLabelValues("bad_signature")); got != 1 {
			t.Errorf("bad_signature refusals %v, want 1", got)
		}
	})
}

// With a key, the transfer succeeds when signed with it, and the client
// (miekg/dns, which verifies every message) accepts every message.
func TestTransferSignedWithTSIG(t *testing.T) {
	key := testKey(t, "xfr.", "hmac-sha256")
	f := newXfrFixture(t, func(c *TransferConfig) { c.Key = key; c.MessageBytes = 1024 })
	q := new(dns.Msg)
	q.SetAxfr("cluster.local.")
	rrs, msgs, err := f.transferIn(t, q, key)
	if err != nil {
		t.Fatal(err)
	}
	if msgs < 3 {
		t.Errorf("%d messages; the test wants several to check the chained signatures", msgs)
	}
	if want := f.axfrUnsignedCount(t); len(rrs) != want {
		t.Errorf("%d records signed, %d unsigned", len(rrs), want)
	}
}

func (f *xfrFixture) axfrUnsignedCount(t *testing.T) int {
	t.Helper()
	n := 2 // the SOAs
	f.h.zoneBody(f.h.store.snapshot(), 0, func(dns.RR) bool { n++; return true })
	return n
}

// testKey is a new key with a random secret.
func testKey(t *testing.T, name, alg string) *TSIGKey {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	k, err := ParseTSIGKey(fmt.Sprintf("key %q {\n\talgorithm %s;\n\tsecret %q;\n};\n", name, alg, base64.StdEncoding.EncodeToString(secret)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func timeNow() int64 { return time.Now().Unix() }

var netipLoopback = netip.MustParseAddr("127.0.0.1")

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

func (m *xfrMetrics) journalStepsForTest(zi int) prometheus.Collector { return m.journal[zi] }

// Secondaries sign the SOA query with which they check the serial: it is
// answered, signed back; an unsigned one is answered as any query.
func TestSignedSOAQuery(t *testing.T) {
	key := testKey(t, "xfr.", "hmac-sha256")
	f := newXfrFixture(t, func(c *TransferConfig) { c.Key = key })
	for _, network := range []string{"udp", "tcp"} {
		for _, k := range []*TSIGKey{key, nil} {
			t.Run(fmt.Sprintf("%s/signed=%v", network, k != nil), func(t *testing.T) {
				q := new(dns.Msg).SetQuestion("cluster.local.", dns.TypeSOA)
				q.SetEdns0(1232, false)
				r, err := f.refusal(t, q, network, k) // the client verifies the reply's signature
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != f.h.store.snapshot().serialOf(0) {
					t.Errorf("reply %v", r)
				}
				if (r.IsTsig() != nil) != (k != nil) {
					t.Errorf("reply signed: %v, query signed: %v", r.IsTsig() != nil, k != nil)
				}
			})
		}
	}
}

// Before the EndpointSlices are loaded, a transfer would hand out a partial
// zone: SERVFAIL, counted, no data.
func TestTransferBeforeSyncIsServfail(t *testing.T) {
	h := newTestHandler(t, false, seed()...)
	xc := DefaultTransferConfig()
	xc.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	x, err := NewTransfers(h, xc)
	if err != nil {
		t.Fatal(err)
	}
	q, err := axfrQuery("cluster.local.").Pack()
	if err != nil {
		t.Fatal(err)
	}
	req, refusal, _ := x.admit(q, netipLoopback, TCP)
	if req != nil || refusal == nil || refusal.Rcode != dns.RcodeServerFailure || len(refusal.Answer) != 0 {
		t.Fatalf("before the sync: request %v, refusal %v; want SERVFAIL and no records", req, refusal)
	}
	if got := testutil.ToFloat64(x.metrics.refusals.WithLabelValues("not_synced")); got != 1 {
		t.Errorf("not_synced refusals %v, want 1", got)
	}
}
