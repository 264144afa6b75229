package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Addr is the host:port to serve UDP and TCP on. Port 0 picks a free
	// port, the same for both. Default ":53".
	Addr string
	// Handler answers the queries. Required.
	Handler *Handler
	// Transfers, when set, answers every AXFR and IXFR query (transfer.go);
	// without it the Handler refuses them.
	Transfers *Transfers
	// UDPSockets is the number of UDP sockets bound to Addr with
	// SO_REUSEPORT, so the kernel spreads clients over them. Default
	// GOMAXPROCS. Platforms without SO_REUSEPORT use one.
	UDPSockets int
	// UDPWorkers is the number of goroutines reading and answering UDP
	// queries, spread over the sockets. Each answers one query at a time,
	// so this is also the cap on UDP queries in flight: a flood fills the
	// socket buffers and the kernel drops the excess instead of the server
	// growing goroutines without bound. Default 2×GOMAXPROCS.
	UDPWorkers int
	// MaxTCPConnections caps open TCP connections. Each connection answers
	// one query at a time. When the cap is reached, a new connection closes
	// the connection that has been idle longest (waiting for a query; never
	// one reading or answering a query) to take its place, as Unbound and
	// BIND do; when none is idle, it is closed at once. Default 1000.
	MaxTCPConnections int
	// MaxTCPConnectionsPerClient caps the TCP connections of one client
	// address, in the same way: a client at its cap that opens another
	// closes its own longest-idle connection, or has the new one closed when
	// all of its connections are busy. So one client cannot hold every slot
	// and lock other clients out of the TCP fallback. A cluster DNS
	// forwarding to peerdns is one client per replica: keep this above the
	// TCP queries one replica has in flight. Default 100.
	MaxTCPConnectionsPerClient int
	// TCPReadTimeout bounds reading a query once a connection is open or a
	// length prefix arrived. Default 2s.
	TCPReadTimeout time.Duration
	// TCPIdleTimeout closes a connection that sends no query for this long
	// after the previous answer. Default 10s.
	TCPIdleTimeout time.Duration
	// TCPWriteTimeout bounds writing an answer. Default 2s.
	TCPWriteTimeout time.Duration
	// Registerer receives the server's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// Server serves a Handler over UDP and TCP.
type Server struct {
	cfg ServerConfig
	udp []*net.UDPConn
	tcp *net.TCPListener
	// outBufs hold TCP answers, 2+64 KiB each; a connection takes one only
	// once it has read a whole query, and returns it after the write.
	outBufs sync.Pool

	mu      sync.Mutex
	closing bool // Serve is returning: admit no connection
	conns   map[*tcpConn]struct{}
	clients map[netip.Addr]int // open connections by client address
	wg      sync.WaitGroup

	tcpConns    prometheus.Gauge
	tcpRejected prometheus.Counter
	tcpEvicted  prometheus.Counter

	// Test hooks, nil outside tests: after a connection is accepted and
	// before it is admitted; after Serve closed every connection; after a
	// connection read a query's length prefix; after a connection that
	// answered a query became idle again.
	testHookAccepted func()
	testHookClosed   func()
	testHookPrefix   func()
	testHookIdle     func()
}

// tcpConn is an open TCP connection.
type tcpConn struct {
	net.Conn
	client netip.Addr
	// idleSince is when the connection last became idle (accepted, or an
	// answer written), in Unix nanoseconds; 0 while it reads or answers a
	// query, when it must not be closed to make room.
	idleSince atomic.Int64
}

// Listen binds cfg.Addr for UDP and TCP, so the caller knows the address
// before serving.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("dns server: no handler")
	}
	procs := runtime.GOMAXPROCS(0)
	if cfg.Addr == "" {
		cfg.Addr = ":53"
	}
	if cfg.UDPSockets <= 0 {
		cfg.UDPSockets = procs
	}
	if cfg.UDPWorkers <= 0 {
		cfg.UDPWorkers = 2 * procs
	}
	cfg.UDPWorkers = max(cfg.UDPWorkers, cfg.UDPSockets)
	if cfg.MaxTCPConnections <= 0 {
		cfg.MaxTCPConnections = 1000
	}
	if cfg.MaxTCPConnectionsPerClient <= 0 {
		cfg.MaxTCPConnectionsPerClient = 100
	}
	if cfg.TCPReadTimeout <= 0 {
		cfg.TCPReadTimeout = 2 * time.Second
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.TCPWriteTimeout <= 0 {
		cfg.TCPWriteTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		conns:   map[*tcpConn]struct{}{},
		clients: map[netip.Addr]int{},
		outBufs: sync.Pool{New: func() any { b := make([]byte, 2+dns.MaxMsgSize); return &b }},
	}
	f := promauto.With(cfg.Registerer)
	s.tcpConns = f.NewGauge(prometheus.GaugeOpts{
		Name: "peerdns_dns_tcp_connections",
		Help: "Open DNS TCP connections.",
	})
	s.tcpRejected = f.NewCounter(prometheus.CounterOpts{
		Name: "peerdns_dns_tcp_connections_rejected_total",
		Help: "DNS TCP connections closed at once because max TCP connections (in all, or of the client's address) were open and none of them was idle.",
	})
	s.tcpEvicted = f.NewCounter(prometheus.CounterOpts{
		Name: "peerdns_dns_tcp_connections_evicted_total",
		Help: "Idle DNS TCP connections closed to make room for a new one when max TCP connections (in all, or of the client's address) were open.",
	})
	// With port 0 the UDP port is chosen first and TCP must get the same
	// one; another program may hold it for TCP, so try a few ports.
	var err error
	for range 5 {
		if err = s.bind(); err == nil {
			return s, nil
		}
		if _, port, _ := net.SplitHostPort(cfg.Addr); port != "0" {
			break
		}
	}
	return nil, fmt.Errorf("dns server: %w", err)
}

func (s *Server) bind() error {
	host, _, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", s.cfg.Addr, err)
	}
	lc := listenConfig(s.cfg.UDPSockets > 1)
	first, err := lc.ListenPacket(context.Background(), "udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen udp: %w", err)
	}
	udp := []*net.UDPConn{first.(*net.UDPConn)}
	// The port actually bound: with port 0 the TCP listener and the other
	// UDP sockets must take the one UDP got.
	addr := net.JoinHostPort(host, strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port))
	closeAll := func() {
		for _, c := range udp {
			c.Close()
		}
	}
	for i := 1; i < s.cfg.UDPSockets && reusePortSupported; i++ {
		c, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen udp (socket %d): %w", i+1, err)
		}
		udp = append(udp, c.(*net.UDPConn))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		closeAll()
		return fmt.Errorf("listen tcp: %w", err)
	}
	s.udp, s.tcp = udp, ln.(*net.TCPListener)
	return nil
}

// Addr is the address served, UDP and TCP alike.
func (s *Server) Addr() netip.AddrPort {
	return s.udp[0].LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close releases the sockets of a server that will not Serve.
func (s *Server) Close() {
	for _, c := range s.udp {
		c.Close()
	}
	s.tcp.Close()
}

// Serve answers queries until ctx is done, then closes every socket and
// connection and returns once all its goroutines have stopped.
func (s *Server) Serve(ctx context.Context) error {
	for i := range s.cfg.UDPWorkers {
		s.wg.Go(func() { s.serveUDP(s.udp[i%len(s.udp)]) })
	}
	errc := make(chan error, 1)
	s.wg.Go(func() { errc <- s.serveTCP() })
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.Close()
	s.mu.Lock()
	s.closing = true // a connection accepted before the listener closed is not admitted
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if s.testHookClosed != nil {
		s.testHookClosed()
	}
	s.wg.Wait()
	return err
}

func (s *Server) serveUDP(c *net.UDPConn) {
	in := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, dns.MaxMsgSize)
	for {
		n, addr, err := c.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors surface here; the next read goes on
		}
		var resp []byte
		if x := s.cfg.Transfers; x != nil && isTransferQuery(in[:n]) {
			resp = x.AnswerUDP(out, in[:n], addr.Addr()) // transfer.go
		} else {
			resp = s.cfg.Handler.Answer(out, in[:n], UDP)
		}
		if resp == nil {
			continue
		}
		if _, err := c.WriteToUDPAddrPort(resp, addr); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (s *Server) serveTCP() error {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: back off rather than
			// spin, and go on.
			s.cfg.Logger.Warn("dns tcp accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if s.testHookAccepted != nil {
			s.testHookAccepted()
		}
		tc := &tcpConn{Conn: c}
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			tc.client = a.AddrPort().Addr().Unmap()
		}
		tc.idleSince.Store(time.Now().UnixNano())
		if !s.admit(tc) {
			s.tcpRejected.Inc()
			c.Close()
			continue
		}
		s.wg.Go(func() {
			defer s.release(tc)
			s.serveConn(tc)
		})
	}
}

// admit registers c, making room by closing the longest-idle connection of
// its client, then of all, when a cap is reached. It reports false when
// there is no room, or Serve is returning.
func (s *Server) admit(c *tcpConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.clients[c.client] >= s.cfg.MaxTCPConnectionsPerClient && !s.evictIdle(c.client, true) {
		return false
	}
	if len(s.conns) >= s.cfg.MaxTCPConnections && !s.evictIdle(netip.Addr{}, false) {
		return false
	}
	s.conns[c] = struct{}{}
	s.clients[c.client]++
	s.tcpConns.Inc()
	return true
}

// evictIdle closes the connection idle longest, of client when byClient is
// set, and reports whether there was one. s.mu is held.
func (s *Server) evictIdle(client netip.Addr, byClient bool) bool {
	var victim *tcpConn
	var since int64
	for c := range s.conns {
		t := c.idleSince.Load()
		if t == 0 || byClient && c.client != client {
			continue
		}
		if victim == nil || t < since {
			victim, since = c, t
		}
	}
	if victim == nil {
		return false
	}
	s.forget(victim)
	victim.Close() // its goroutine sees the closed connection and ends
	s.tcpEvicted.Inc()
	return true
}

// forget unregisters c if it still is. s.mu is held.
func (s *Server) forget(c *tcpConn) {
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.clients[c.client]--; s.clients[c.client] == 0 {
		delete(s.clients, c.client)
	}
	s.tcpConns.Dec()
}

// release closes and unregisters c when its goroutine ends.
func (s *Server) release(c *tcpConn) {
	c.Close()
	s.mu.Lock()
	s.forget(c)
	s.mu.Unlock()
}

// serveConn answers the queries of one TCP connection, one at a time, until
// the client closes it, idles too long or sends garbage.
//
// Memory: the query buffer grows with the bytes that actually arrive (see
// readFrame), never to the announced length at once, and is dropped after a
// query of more than 4 KiB; the 64 KiB output buffer is taken only once a
// whole query was read. A connection that sent only a length prefix holds
// no buffer.
func (s *Server) serveConn(c *tcpConn) {
	var prefix [2]byte
	var in []byte
	idle := s.cfg.TCPReadTimeout // the first query must come promptly
	for {
		// A deadline fails to set only on a closed connection, whose next
		// read would fail as well.
		if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, prefix[:]); err != nil {
			return
		}
		c.idleSince.Store(0)
		if s.testHookPrefix != nil {
			s.testHookPrefix()
		}
		n := int(binary.BigEndian.Uint16(prefix[:]))
		if n < headerSize {
			return
		}
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPReadTimeout)); err != nil {
			return
		}
		var err error
		if in, err = readFrame(c, in, n); err != nil {
			return
		}
		if x := s.cfg.Transfers; x != nil && isTransferQuery(in) {
			if !x.ServeTCP(c, c.client, in, s.cfg.TCPWriteTimeout) { // transfer.go
				return
			}
		} else if !s.answerTCP(c, in) {
			return
		}
		if cap(in) > 4096 {
			in = nil
		}
		c.idleSince.Store(time.Now().UnixNano())
		if s.testHookIdle != nil {
			s.testHookIdle()
		}
		idle = s.cfg.TCPIdleTimeout
	}
}

// readFrame reads n bytes from r into buf[:0], growing buf as bytes arrive
// (to at most twice what arrived, and at most n) rather than to n at once:
// a client that announces a 64 KiB query and sends a byte makes the server
// hold 512 bytes, not 64 KiB.
func readFrame(r io.Reader, buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, max(512, 2*cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < n {
			return buf, err
		}
	}
	return buf, nil
}

// answerTCP writes the answer to query q.
func (s *Server) answerTCP(c net.Conn, q []byte) bool {
	out := s.outBufs.Get().(*[]byte)
	defer s.outBufs.Put(out)
	resp := s.cfg.Handler.Answer((*out)[2:2], q, TCP)
	if resp == nil {
		return true
	}
	msg := (*out)[:2+len(resp)]
	binary.BigEndian.PutUint16(msg, uint16(len(resp)))
	if err := c.SetWriteDeadline(time.Now().Add(s.cfg.TCPWriteTimeout)); err != nil {
		return false
	}
	_, err := c.Write(msg)
	return err == nil
}
