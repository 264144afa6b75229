package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
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
