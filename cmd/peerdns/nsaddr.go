package main

import (
	"net"
	"net/netip"

	"github.com/peerdns/peerdns/internal/cli"
)

// nsAddresses picks the addresses served for the NS target ns.dns.<zone>:
// the --dns.ns-address values; else $POD_IP (podIP); else the IP of
// --dns.listen-address when it names one. None when nothing names one
// (listening on all addresses outside a pod): the NS target then has no
// address records, which main logs as a warning.
func nsAddresses(flagged []string, podIP, listen string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range flagged {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, cli.Invalid("dns.ns-address", "%q: not an IP address", s)
		}
		out = append(out, a.Unmap())
	}
	if len(out) > 0 {
		return out, nil
	}
	if a, err := netip.ParseAddr(podIP); err == nil && a.Zone() == "" {
		return []netip.Addr{a.Unmap()}, nil
	}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() && a.Zone() == "" {
			return []netip.Addr{a.Unmap()}, nil
		}
	}
	return nil, nil
}
