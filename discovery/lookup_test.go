package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestResolvers(t *testing.T) {
	d := startDNS(t)
	d.setHost("web-0.web.test", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"))
	d.setHost("web-1.web.test", netip.MustParseAddr("10.0.0.2"))
	d.setTarget("_gossip._tcp.web.test", "web-0.web.test", 7946)
	d.setTarget("_gossip._tcp.web.test", "web-1.web.test", 7947)
	// Enough targets that the UDP answer is truncated and retried over TCP.
	for i := range 60 {
		name := fmt.Sprintf("big-%d.big.test", i)
		d.setHost(name, netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}))
		d.setTarget("_gossip._tcp.big.test", name, 7946)
	}

	system := systemResolver{r: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, network, d.addr)
	}}}
	for _, tc := range []struct {
		name string
		r    Resolver
	}{
		{"direct", NewDNSResolver(d.addr, time.Second)},
		{"system", system},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srvs, err := tc.r.LookupSRV(ctx, "_gossip._tcp.web.test.")
			if err != nil || len(srvs) != 2 {
				t.Fatalf("LookupSRV = %+v, %v; want 2 records", srvs, err)
			}
			big, err := tc.r.LookupSRV(ctx, "_gossip._tcp.big.test.")
			if err != nil || len(big) != 60 {
				t.Fatalf("large LookupSRV = %d records, %v; want 60", len(big), err)
			}
			v4, err := tc.r.LookupAddrs(ctx, "web-0.web.test.", false)
			if err != nil || len(v4) != 1 || v4[0] != netip.MustParseAddr("10.0.0.1") {
				t.Fatalf("A = %v, %v", v4, err)
			}
			v6, err := tc.r.LookupAddrs(ctx, "web-0.web.test.", true)
			if err != nil || len(v6) != 1 || v6[0] != netip.MustParseAddr("fd00::1") {
				t.Fatalf("AAAA = %v, %v", v6, err)
			}
			if _, err := tc.r.LookupAddrs(ctx, "web-1.web.test.", true); !errors.Is(err, ErrNotFound) {
				t.Errorf("AAAA of a v4-only name: %v, want ErrNotFound (NODATA)", err)
			}
			if _, err := tc.r.LookupAddrs(ctx, "web-9.web.test.", false); !errors.Is(err, ErrNotFound) {
				t.Errorf("A of a missing name: %v, want ErrNotFound (NXDOMAIN)", err)
			}
			if _, err := tc.r.LookupSRV(ctx, "_gossip._tcp.none.test."); !errors.Is(err, ErrNotFound) {
				t.Errorf("SRV of a missing name: %v, want ErrNotFound", err)
			}
			d.servfail.Store(true)
			defer d.servfail.Store(false)
			if _, err := tc.r.LookupAddrs(ctx, "web-0.web.test.", false); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("A on SERVFAIL: %v, want an error other than ErrNotFound", err)
			}
		})
	}
}

func TestDirectResolverUsesAdditionalSection(t *testing.T) {
	d := startDNS(t)
	d.setHost("web-0.web.test", netip.MustParseAddr("10.0.0.1"))
	d.setTarget("_gossip._tcp.web.test", "web-0.web.test", 7946)
	srvs, err := NewDNSResolver(d.addr, time.Second).LookupSRV(context.Background(), "_gossip._tcp.web.test")
	if err != nil || len(srvs) != 1 || len(srvs[0].Addrs) != 1 || srvs[0].Addrs[0] != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("LookupSRV = %+v, %v; want web-0 with its address from the additional section", srvs, err)
	}
}

// recordingResolver notes every name the agent asks its resolver about.
type recordingResolver struct {
	Resolver
	mu    sync.Mutex
	names []string
}

func (r *recordingResolver) note(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
}

func (r *recordingResolver) LookupSRV(ctx context.Context, name string) ([]SRV, error) {
	r.note(name)
	return r.Resolver.LookupSRV(ctx, name)
}

func (r *recordingResolver) LookupAddrs(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error) {
	r.note(host)
	return r.Resolver.LookupAddrs(ctx, host, ipv6)
}

// newTestFinder is the peer finder of web-0 of three, looking peers up
// through r by SRV name and per-ordinal name.
func newTestFinder(t *testing.T, r Resolver) *peerFinder {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Expected = "web-0", 3
	cfg.PeersSRV, cfg.PeersDomain, cfg.PeersPort = testSRV, testDomain, 7946
	cfg.LookupTimeout = 2 * time.Second // generous: a loaded CI machine with -race answers loopback slowly
	set := ExpectedSet{Set: "web", N: 3}
	m := newMetrics(prometheus.NewRegistry(), set, Identity{Set: "web"})
	f := newPeerFinder(&cfg, r, m, slog.New(slog.DiscardHandler))
	f.names = set.Names
	return f
}

// Every name the agent looks up is absolute (it ends in a dot), so that
// the system resolver applies no search list: with one, Go returns the
// error of the last name it tried, and a search-suffixed name's NXDOMAIN
// would hide the configured name's SERVFAIL.
func TestFinderAsksAbsoluteNames(t *testing.T) {
	d := startDNS(t)
	d.setHost("web-1."+testDomain, netip.MustParseAddr("10.0.0.2"))
	d.setHost("web-2."+testDomain, netip.MustParseAddr("10.0.0.3"))
	d.setTarget(testSRV, "web-1."+testDomain, 7946)
	d.setTarget(testSRV, "web-2."+testDomain, 7946)
	d.deleteHost("web-2." + testDomain) // an SRV target without its address in the additional section
	r := &recordingResolver{Resolver: NewDNSResolver(d.addr, time.Second)}
	f := newTestFinder(t, r)
	f.refresh(context.Background())
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.names) < 4 {
		t.Fatalf("looked up %q, want the SRV name, two per-ordinal names and an SRV target", r.names)
	}
	for _, name := range r.names {
		if !strings.HasSuffix(name, ".") {
			t.Errorf("looked up %q: not absolute", name)
		}
	}
}

// A failure other than NXDOMAIN (SERVFAIL, REFUSED, no answer) keeps the
// peers last found, through the SRV name and through per-ordinal names,
// with either resolver; NXDOMAIN drops them.
func TestFinderKeepsTheLastGoodAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(*testDNS)
		kept bool
	}{
		{name: "SERVFAIL", fail: func(d *testDNS) { d.rcode.Store(dns.RcodeServerFailure) }, kept: true},
		{name: "REFUSED", fail: func(d *testDNS) { d.rcode.Store(dns.RcodeRefused) }, kept: true},
		{name: "no answer", fail: func(d *testDNS) { d.silent.Store(true) }, kept: true},
		{name: "NXDOMAIN", fail: func(d *testDNS) { d.rcode.Store(dns.RcodeNameError) }, kept: false},
	} {
		for _, via := range []string{"direct", "system"} {
			for _, source := range []string{"SRV", "per-ordinal"} {
				t.Run(tc.name+"/"+via+"/"+source, func(t *testing.T) {
					d := startDNS(t)
					for i, name := range []string{"web-1", "web-2"} {
						d.setHost(name+"."+testDomain, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 2)}))
						d.setTarget(testSRV, name+"."+testDomain, 7946)
					}
					r := NewDNSResolver(d.addr, time.Second)
					if via == "system" {
						r = systemResolver{r: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
							var dialer net.Dialer
							return dialer.DialContext(ctx, network, d.addr)
						}}}
					}
					f := newTestFinder(t, r)
					if source == "SRV" {
						f.domain = ""
					} else {
						f.srvName = ""
					}
					want := []string{"web-1@10.0.0.2:7946", "web-2@10.0.0.3:7946"}
					if got := peerList(f.refresh(context.Background())); !slices.Equal(got, want) {
						t.Fatalf("before the failure: peers %q, want %q", got, want)
					}
					tc.fail(d)
					if !tc.kept {
						want = nil
					}
					if got := peerList(f.refresh(context.Background())); !slices.Equal(got, want) {
						t.Errorf("after %s: peers %q, want %q", tc.name, got, want)
					}
					if got := testutil.ToFloat64(f.metrics.peersResolved); int(got) != len(want) {
						t.Errorf("peeragent_peers_resolved = %v, want %d", got, len(want))
					}
				})
			}
		}
	}
}

func peerList(peers map[string]peer) []string {
	var out []string
	for _, p := range peers {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}
