package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// prober sends single DNS queries over one connected UDP socket (or a
// fresh TCP connection) and waits for the matching answer. It is not safe
// for concurrent use.
type prober struct {
	server netip.AddrPort
	conn   *net.UDPConn
	id     uint16
	buf    []byte
}

func newProber(server netip.AddrPort) (*prober, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", server, err)
	}
	return &prober{server: server, conn: conn, buf: make([]byte, 65535)}, nil
}

func (p *prober) close() { p.conn.Close() }

// query asks name/qtype over UDP (with EDNS edns when not zero) and
// returns the answer, skipping late answers to earlier queries.
func (p *prober) query(name string, qtype uint16, edns uint16, timeout time.Duration) (*dns.Msg, error) {
	p.id++
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = p.id
	m.RecursionDesired = false
	if edns != 0 {
		m.SetEdns0(edns, false)
	}
	q, err := m.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := p.conn.Write(q); err != nil {
		return nil, fmt.Errorf("query %s: %w", p.server, err)
	}
	if err := p.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("query %s %s: %w", p.server, name, err)
	}
	for {
		n, err := p.conn.Read(p.buf)
		if err != nil {
			return nil, fmt.Errorf("query %s %s: %w", p.server, name, err)
		}
		if n < 2 || uint16(p.buf[0])<<8|uint16(p.buf[1]) != p.id {
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(p.buf[:n]); err != nil {
			return nil, fmt.Errorf("query %s %s: %w", p.server, name, err)
		}
		return r, nil
	}
}

// queryTCP asks name/qtype over a new TCP connection and returns the
// answer and its size on the wire.
func queryTCP(server netip.AddrPort, name string, qtype uint16, timeout time.Duration) (*dns.Msg, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	q, err := m.Pack()
	if err != nil {
		return nil, 0, err
	}
	c, err := net.DialTimeout("tcp", server.String(), timeout)
	if err != nil {
		return nil, 0, fmt.Errorf("query %s %s over tcp: %w", server, name, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, 0, fmt.Errorf("query %s %s over tcp: %w", server, name, err)
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		return nil, 0, fmt.Errorf("query %s %s over tcp: %w", server, name, err)
	}
	var prefix [2]byte
	if _, err := io.ReadFull(c, prefix[:]); err != nil {
		return nil, 0, fmt.Errorf("query %s %s over tcp: %w", server, name, err)
	}
	wire := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(c, wire); err != nil {
		return nil, 0, fmt.Errorf("query %s %s over tcp: %w", server, name, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(wire); err != nil {
		return nil, 0, fmt.Errorf("query %s %s over tcp: %w", server, name, err)
	}
	return r, len(wire), nil
}

// addrsOf returns the A records' addresses of an answer, sorted.
func addrsOf(m *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			if addr, ok := netip.AddrFromSlice(a.A.To4()); ok {
				out = append(out, addr)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// answersA reports whether the answer to an A query holds exactly want.
func answersA(m *dns.Msg, want netip.Addr) bool {
	got := addrsOf(m)
	return m.Rcode == dns.RcodeSuccess && len(got) == 1 && got[0] == want
}

// srvTargets returns "target:port" of each SRV record of an answer, sorted,
// and the number of A records in the additional section.
func srvTargets(m *dns.Msg) (targets []string, glue int) {
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			targets = append(targets, fmt.Sprintf("%s:%d", dns.CanonicalName(s.Target), s.Port))
		}
	}
	for _, rr := range m.Extra {
		if _, ok := rr.(*dns.A); ok {
			glue++
		}
	}
	slices.Sort(targets)
	return targets, glue
}
