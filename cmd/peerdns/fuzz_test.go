package main

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/resolver"
)

// FuzzFlags gives the zone and address flags arbitrary values. No value may
// panic, and whatever resolverConfig accepts the resolver accepts too, and
// answers the apex of every zone with a response that unpacks: a bad value
// is refused as a bad flag (exit 2), never found at start-up.
func FuzzFlags(f *testing.F) {
	for _, s := range [][3]string{
		{"peerdns.internal.", "", ":53"},
		{".", "10.0.0.53", "127.0.0.1:5353"},
		{"cluster.local.,peers.cluster.local.", "fd00::53", "[::1]:53"},
		{"10.in-addr.arpa.,0.0.d.f.ip6.arpa.", "", "0.0.0.0:0"},
		{"a..b", "ns1.", "53"},
		{"\\000.", "::ffff:10.0.0.1", ":99999"},
		{"in-addr.arpa.", "fe80::1%eth0", "localhost:domain"},
		{"x.", "", "[fe80::1%25eth0]:53"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, zones, nsAddr, listen string) {
		var cfg config
		args := []string{"--dns.zone", zones, "--dns.listen-address", listen}
		if nsAddr != "" {
			args = append(args, "--dns.ns-address", nsAddr)
		}
		if _, err := newFlags(&cfg).Parse(args); err != nil {
			return
		}
		rcfg, err := cfg.resolverConfig()
		if err != nil {
			return
		}
		h, err := resolver.NewHandler(resolver.NewStore(), rcfg)
		if err != nil {
			t.Fatalf("resolverConfig accepted %q, NewHandler refused it: %v", zones, err)
		}
		for _, z := range rcfg.Zones {
			for _, qtype := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeA} {
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(z), qtype)
				q, err := m.Pack()
				if err != nil {
					continue
				}
				resp := h.Answer(nil, q, resolver.TCP)
				if err := new(dns.Msg).Unpack(resp); err != nil {
					t.Fatalf("zone %q, %s: response does not unpack: %v", z, dns.TypeToString[qtype], err)
				}
			}
		}
	})
}
