package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNotFound is returned by a Resolver when the name does not exist
// (NXDOMAIN) or has no record of the type asked for: the peer is not there
// yet. Any other error (a timeout, SERVFAIL, REFUSED or another rcode)
// means the answer is unknown, and the agent keeps the last good one.
var ErrNotFound = errors.New("not found")

// SRV is one SRV record: a target and its port, with the target's addresses
// when the server sent them in the additional section.
type SRV struct {
	Target string
	Port   uint16
	Addrs  []netip.Addr
}

// Resolver looks up the records peers are found through. Implementations
// must be safe for concurrent use and honour ctx's deadline. The agent
// passes every name absolute, with a trailing dot: an implementation that
// applies a search list must not apply it to such a name.
type Resolver interface {
	// LookupSRV returns the SRV records of name.
	LookupSRV(ctx context.Context, name string) ([]SRV, error)
	// LookupAddrs returns host's IPv6 addresses if ipv6, else its IPv4
	// addresses: only the family gossip uses, so a dual-stack name never
	// yields an address this agent cannot reach.
	LookupAddrs(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error)
}

// NewDNSResolver returns a Resolver that sends every query to server
// ("host" or "host:port", port 53 by default) over UDP, retrying over TCP
// when the answer is truncated. Names are queried as given, made absolute:
// no search path applies.
func NewDNSResolver(server string, timeout time.Duration) Resolver {
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	return &dnsResolver{server: server, timeout: timeout}
}

type dnsResolver struct {
	server  string
	timeout time.Duration
}

func (r *dnsResolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: r.timeout, UDPSize: 1232}
	resp, _, err := c.ExchangeContext(ctx, q, r.server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, r.server)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s: %w", dns.TypeToString[qtype], name, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return resp, nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], name, ErrNotFound)
	}
	return nil, fmt.Errorf("query %s %s: %s", dns.TypeToString[qtype], name, dns.RcodeToString[resp.Rcode])
}

func (r *dnsResolver) LookupSRV(ctx context.Context, name string) ([]SRV, error) {
	resp, err := r.exchange(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	extra := map[string][]netip.Addr{}
	for _, rr := range resp.Extra {
		if a, ok := rrAddr(rr); ok {
			owner := strings.ToLower(rr.Header().Name)
			extra[owner] = append(extra[owner], a)
		}
	}
	var out []SRV
	for _, rr := range resp.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		target := strings.ToLower(srv.Target)
		out = append(out, SRV{Target: target, Port: srv.Port, Addrs: extra[target]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("SRV %s: %w", name, ErrNotFound)
	}
	return out, nil
}

func (r *dnsResolver) LookupAddrs(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error) {
	qtype := dns.TypeA
	if ipv6 {
		qtype = dns.TypeAAAA
	}
	resp, err := r.exchange(ctx, host, qtype)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rrAddr(rr); ok { // CNAMEs in the chain are skipped
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], host, ErrNotFound)
	}
	return out, nil
}

// NewSystemResolver returns a Resolver using the Go resolver, which reads
// /etc/resolv.conf and does not cache. Its search list applies only to
// names without a trailing dot (and Go then returns the error of the last
// name it tried); the agent passes absolute names only.
func NewSystemResolver() Resolver { return systemResolver{r: &net.Resolver{}} }

type systemResolver struct{ r *net.Resolver }

func (s systemResolver) LookupSRV(ctx context.Context, name string) ([]SRV, error) {
	_, recs, err := s.r.LookupSRV(ctx, "", "", name)
	if err != nil {
		return nil, systemError("SRV", name, err)
	}
	out := make([]SRV, 0, len(recs))
	for _, rec := range recs {
		out = append(out, SRV{Target: strings.ToLower(rec.Target), Port: rec.Port})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("SRV %s: %w", name, ErrNotFound)
	}
	return out, nil
}

func (s systemResolver) LookupAddrs(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error) {
	network, qtype := "ip4", "A"
	if ipv6 {
		network, qtype = "ip6", "AAAA"
	}
	addrs, err := s.r.LookupNetIP(ctx, network, host)
	if err != nil {
		return nil, systemError(qtype, host, err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Unmap())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: %w", qtype, host, ErrNotFound)
	}
	return out, nil
}

func systemError(qtype, name string, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("%s %s: %w", qtype, name, ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", qtype, name, err)
}

// rrAddr is the address of an A or AAAA record.
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	var ip net.IP
	switch rr := rr.(type) {
	case *dns.A:
		ip = rr.A
	case *dns.AAAA:
		ip = rr.AAAA
	default:
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
