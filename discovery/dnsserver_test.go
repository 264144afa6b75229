package discovery

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// testDNS is an authoritative DNS server on 127.0.0.1 (UDP and TCP, same
// port) whose records tests change while agents run.
type testDNS struct {
	addr     string
	servfail atomic.Bool
	// rcode, when not zero, is the rcode of every answer; silent drops
	// every question unanswered.
	rcode  atomic.Int32
	silent atomic.Bool

	mu    sync.Mutex
	hosts map[string][]netip.Addr // owner (absolute, lower case) → addresses
	srvs  map[string][]dns.SRV    // owner → records (target and port set)
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{hosts: map[string][]netip.Addr{}, srvs: map[string][]dns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for range 20 { // the TCP port must match the UDP one
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if ln == nil {
		t.Fatalf("no port free for both UDP and TCP: %v", err)
	}
	d.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: d},
		{Listener: ln, Handler: d},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return d
}

func (d *testDNS) setHost(name string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts[dns.Fqdn(strings.ToLower(name))] = addrs
}

func (d *testDNS) deleteHost(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.hosts, dns.Fqdn(strings.ToLower(name)))
}

// setTarget adds or moves target in the SRV set name.
func (d *testDNS) setTarget(name, target string, port uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	owner, target := dns.Fqdn(strings.ToLower(name)), dns.Fqdn(strings.ToLower(target))
	recs := d.srvs[owner][:0:0]
	for _, r := range d.srvs[owner] {
		if r.Target != target {
			recs = append(recs, r)
		}
	}
	d.srvs[owner] = append(recs, dns.SRV{Target: target, Port: port, Priority: 0, Weight: 10})
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if d.silent.Load() {
		return
	}
	if d.servfail.Load() || len(req.Question) != 1 {
		resp.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(resp)
		return
	}
	if rcode := d.rcode.Load(); rcode != 0 {
		resp.Rcode = int(rcode)
		_ = w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	owner := strings.ToLower(q.Name)
	d.mu.Lock()
	hosts, hostOK := d.hosts[owner]
	srvs, srvOK := d.srvs[owner]
	switch {
	case q.Qtype == dns.TypeSRV && srvOK:
		for _, s := range srvs {
			rr := s
			rr.Hdr = dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 5}
			resp.Answer = append(resp.Answer, &rr)
			for _, a := range d.hosts[s.Target] {
				resp.Extra = append(resp.Extra, addrRR(s.Target, a))
			}
		}
	case (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) && hostOK:
		for _, a := range hosts {
			if a.Is4() == (q.Qtype == dns.TypeA) {
				resp.Answer = append(resp.Answer, addrRR(q.Name, a))
			}
		}
	case hostOK || srvOK:
		// NODATA: the name exists, not with this type.
	default:
		resp.Rcode = dns.RcodeNameError
	}
	d.mu.Unlock()
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

func addrRR(name string, a netip.Addr) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 5}, AAAA: a.AsSlice()}
}
