package main

import (
	"net"
	"net/netip"
	"strings"

	"github.com/peerdns/peerdns/internal/cli"
	"github.com/peerdns/peerdns/resolver"
)

// transferFlags are the --dns.transfer.* flags.
type transferFlags struct {
	allow   zoneList // CIDRs, in the same repeatable list form
	tsigKey string
	notify  zoneList // ADDR[:PORT]
}

func addTransferFlags(app *cli.App, f *transferFlags) {
	app.Flag("dns.transfer.allow", "Client address range (CIDR, or one address) allowed zone transfers (AXFR, IXFR over TCP; IXFR over UDP). Repeatable or comma-separated. Empty: every transfer is REFUSED.").
		SetValue(&f.allow)
	app.Flag("dns.transfer.tsig-key", "Path to a TSIG key file in BIND's format, as tsig-keygen writes it (key \"name\" { algorithm hmac-sha256; secret \"...\"; };). Transfer requests must then be signed with it; replies and NOTIFYs are signed with it. Empty: no key, requests must be unsigned.").
		StringVar(&f.tsigKey)
	app.Flag("dns.transfer.notify", "Secondary to send NOTIFY to when a zone's serial moves, ADDR[:PORT] (port 53 when left out). Repeatable or comma-separated. At most one NOTIFY in flight per secondary, rounds at least a second apart, each retried with backoff until acknowledged.").
		SetValue(&f.notify)
}

// enabled reports whether any transfer flag is set: only then is there a
// transfer service (without one, transfers are REFUSED by the handler).
func (f *transferFlags) enabled() bool {
	return len(f.allow) > 0 || f.tsigKey != "" || len(f.notify) > 0
}

// transferConfig checks the flags and returns the resolver's
// TransferConfig, Registerer and Logger left for the caller.
func (f *transferFlags) transferConfig() (resolver.TransferConfig, error) {
	cfg := resolver.DefaultTransferConfig()
	for _, s := range f.allow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return cfg, cli.Invalid("dns.transfer.allow", "%q: not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		cfg.Allow = append(cfg.Allow, p.Masked())
	}
	if f.tsigKey != "" {
		k, err := resolver.ReadTSIGKey(f.tsigKey)
		if err != nil {
			return cfg, cli.Invalid("dns.transfer.tsig-key", "%v", err)
		}
		cfg.Key = k
	}
	for _, s := range f.notify {
		addr, err := notifyAddress(s)
		if err != nil {
			return cfg, cli.Invalid("dns.transfer.notify", "%v", err)
		}
		cfg.Notify = append(cfg.Notify, addr)
	}
	return cfg, nil
}

// notifyAddress is s as host:port, port 53 when s has none ("10.0.0.1",
// "fd00::1", "[fd00::1]:5353", "ns1.example:5353").
func notifyAddress(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.HasPrefix(s, "[") {
			return "", err
		}
		host, port = s, "53"
	}
	if host == "" {
		return "", &net.AddrError{Err: "no host", Addr: s}
	}
	return net.JoinHostPort(host, port), nil
}
