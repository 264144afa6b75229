package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/testtools"
)

// The two reference points run as child processes of the bench (the bench
// binary itself, run as `bench serve-reference -kind … -addr …`), so that
// each is a process of its own like peerdns and CoreDNS, with its own CPU
// time to read.

const referenceCommand = "serve-reference"

// Kinds of reference server.
const (
	kindEcho  = "echo"
	kindFixed = "fixed"
)

// serveReference is the child's side: serve until ctx is done.
func serveReference(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(referenceCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", kindEcho, "echo or fixed")
	addr := fs.String("addr", "127.0.0.1:0", "UDP address to serve on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var stop func()
	switch *kind {
	case kindEcho:
		s, err := startEchoServer(*addr)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		stop = s.close
	case kindFixed:
		s, err := startFixedServer(*addr)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		stop = s.close
	default:
		fmt.Fprintf(stderr, "unknown kind %q\n", *kind)
		return 2
	}
	<-ctx.Done()
	stop()
	return 0
}

// startReference runs a reference server as a child and waits until it
// answers.
func (b *bench) startReference(ctx context.Context, kind, name string) (*dnsServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ports, err := testtools.FreePorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	s := &dnsServer{name: name, addr: loopback(port)}
	s.proc, err = b.procs.start("reference-"+kind, self, []string{referenceCommand, "-kind", kind, "-addr", s.addr.String()}, filepath.Join(b.dir, "reference-"+kind+".log"))
	if err != nil {
		return nil, err
	}
	p, err := newProber(s.addr)
	if err != nil {
		return nil, err
	}
	defer p.close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.query(fqdn(benchNamespace, svcSmall, hostname(0)), dns.TypeA, 0, 100*time.Millisecond); err == nil {
			return s, nil
		}
		if s.proc.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s does not answer: %s", name, s.proc.Tail(10))
		}
	}
}

// echoServer is the floor of a UDP request/response with this client on
// this machine: each datagram is sent back as it came, with no DNS work at
// all. It has the shape peerdns has (one SO_REUSEPORT socket per core, two
// readers per socket), so that the only difference is the DNS work.
type echoServer struct {
	conns []*net.UDPConn
	wg    sync.WaitGroup
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
	})
	return errors.Join(err, serr)
}

func startEchoServer(addr string) (*echoServer, error) {
	lc := net.ListenConfig{Control: reusePort}
	s := &echoServer{}
	procs := runtime.GOMAXPROCS(0)
	for i := range procs {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("echo server: %w", err)
		}
		c := pc.(*net.UDPConn)
		s.conns = append(s.conns, c)
		if i == 0 {
			addr = c.LocalAddr().String() // the others bind the port chosen
		}
	}
	for _, c := range s.conns {
		for range 2 {
			s.wg.Go(func() {
				buf := make([]byte, 65535)
				for {
					n, from, err := c.ReadFromUDPAddrPort(buf)
					if err != nil {
						if errors.Is(err, net.ErrClosed) {
							return
						}
						continue
					}
					// A reply that cannot be sent is lost, as a dropped
					// datagram would be: the load generator counts it.
					_, _ = c.WriteToUDPAddrPort(buf[:n], from)
				}
			})
		}
	}
	return s, nil
}

func (s *echoServer) close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// fixedServer is miekg/dns's own server, as an application would run it
// (one UDP socket, a goroutine per query), answering every query with one
// fixed A record: the cost of miekg/dns's unpack → build → pack path.
type fixedServer struct {
	srv *dns.Server
	pc  net.PacketConn
}

func startFixedServer(addr string) (*fixedServer, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("miekg/dns server: %w", err)
	}
	a := &dns.A{
		Hdr: dns.RR_Header{Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
		A:   net.IPv4(10, 0, 0, 1),
	}
	started := make(chan struct{})
	s := &fixedServer{pc: pc, srv: &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			if len(r.Question) == 1 {
				rr := *a
				rr.Hdr.Name = r.Question[0].Name
				m.Answer = []dns.RR{&rr}
			}
			// A reply that cannot be sent is lost, as a dropped datagram
			// would be: the load generator counts it.
			_ = w.WriteMsg(m)
		}),
	}}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ActivateAndServe() }()
	select {
	case <-started:
		return s, nil
	case err := <-errc:
		pc.Close()
		return nil, fmt.Errorf("miekg/dns server: %w", err)
	}
}

// close stops the server. miekg/dns's Shutdown fails only for a server that
// never started, and a fixedServer exists only once it has.
func (s *fixedServer) close() { _ = s.srv.Shutdown() }
