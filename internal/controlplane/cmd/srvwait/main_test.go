package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/testtools"
)

const srvName = "_etcd-server._tcp.etcd.default.peers.peerdns.internal."

// zone answers SRV srvName with etcd-0 … etcd-2, and A for the members
// added with resolve: a member whose pod has no address yet is listed
// but does not resolve, as when etcd would bootstrap a partial cluster.
type zone struct {
	mu    sync.Mutex
	hosts map[string]bool
}

func (z *zone) resolve(host string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.hosts[host] = true
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	q := req.Question[0]
	switch {
	case q.Name == srvName && q.Qtype == dns.TypeSRV:
		for _, m := range []string{"etcd-0", "etcd-1", "etcd-2"} {
			rr, _ := dns.NewRR(srvName + " 5 IN SRV 0 33 2380 " + m + ".etcd.default.peers.peerdns.internal.")
			resp.Answer = append(resp.Answer, rr)
		}
	case z.hosts[strings.TrimSuffix(q.Name, ".")] && q.Qtype == dns.TypeA:
		rr, _ := dns.NewRR(q.Name + " 5 IN A 10.244.0.9")
		resp.Answer = append(resp.Answer, rr)
	case z.hosts[strings.TrimSuffix(q.Name, ".")]:
		// NODATA for AAAA.
	default:
		resp.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(resp)
}

// startZone serves z on a UDP port of 127.0.0.1 and returns a resolver
// asking it.
func startZone(t *testing.T, z *zone) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// While one listed member does not resolve, srvwait keeps waiting; once it
// does, srvwait returns.
func TestWaitsForEveryTarget(t *testing.T) {
	z := &zone{hosts: map[string]bool{}}
	z.resolve("etcd-0.etcd.default.peers.peerdns.internal")
	z.resolve("etcd-1.etcd.default.peers.peerdns.internal")
	r := startZone(t, z)
	out := &lines{}
	done := make(chan error, 1)
	go func() { done <- wait(t.Context(), r, srvName, 3, 10*time.Millisecond, out) }()
	testtools.Eventually(t, "srvwait sees 2 of 3", 10*time.Second, func() error {
		if !strings.Contains(out.String(), "srvwait: 2 of 3 targets resolve: [etcd-0.etcd.default.peers.peerdns.internal etcd-1.etcd.default.peers.peerdns.internal]; listed, not resolving: [etcd-2.etcd.default.peers.peerdns.internal]\n") {
			return errNotYet(out.String())
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("wait returned %v with 2 of 3 targets resolving", err)
	default:
	}
	z.resolve("etcd-2.etcd.default.peers.peerdns.internal")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("wait still waiting 10 s after every target resolves:\n%s", out)
	}
	if !strings.Contains(out.String(), "srvwait: 3 of 3 targets resolve:") {
		t.Errorf("output lacks 3 of 3:\n%s", out)
	}
}

// When the context ends first, wait says what it last saw.
func TestGivesUpSayingWhatItSaw(t *testing.T) {
	z := &zone{hosts: map[string]bool{}}
	z.resolve("etcd-0.etcd.default.peers.peerdns.internal")
	r := startZone(t, z)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	out := &lines{}
	err := wait(ctx, r, srvName, 3, 10*time.Millisecond, out)
	want := "gave up: 1 of 3 targets resolve: [etcd-0.etcd.default.peers.peerdns.internal]; listed, not resolving: [etcd-1.etcd.default.peers.peerdns.internal etcd-2.etcd.default.peers.peerdns.internal]"
	if err == nil || err.Error() != want {
		t.Fatalf("wait = %v, want %s", err, want)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want 1 (a line only when what it sees changes):\n%s", n, out)
	}
}

type errNotYet string

func (e errNotYet) Error() string { return "not yet; output so far:\n" + string(e) }
