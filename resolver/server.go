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
	"slices"
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
	// port, the same for both. Default ":53". On a wildcard address (no
	// host, 0.0.0.0 or ::) each UDP answer goes out from the address its
	// query was sent to (on Linux; elsewhere, from the one the route to the
	// client prefers).
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
	// queries, spread over the sockets. On Linux each reads the queries
	// queued on its socket, up to 16, with one system call, answers them
	// in turn and sends the answers with one more; elsewhere it reads and
	// answers one query at a time. So 16×UDPWorkers (UDPWorkers outside
	// Linux) caps the UDP queries in flight: a flood fills the socket
	// buffers and the kernel drops the excess instead of the server
	// growing goroutines without bound. Each worker holds 16 64 KiB query
	// buffers on Linux (1 MiB of address space); memory fresh from the
	// kernel becomes resident only where queries touch it, but memory the
	// Go heap reuses is zeroed, and so resident, whole. Default
	// 2×GOMAXPROCS.
	UDPWorkers int
	// UDPReceiveBuffer is the receive buffer asked for each UDP socket, in
	// bytes: how many queries wait for a worker in a burst before the kernel
	// drops the excess (counted in peerdns_dns_udp_receive_drops_total).
	// Default 1 MiB, five times Linux's usual default (208 KiB): about 2,500
	// queries of 66 bytes a socket (measured on loopback; the kernel counts
	// each datagram's overhead too). While a socket's queue is full the
	// kernel holds up to twice the size, charged to the process's memory
	// cgroup: 2 MiB for each of the UDPSockets. Linux grants more than
	// net.core.rmem_max only with CAP_NET_ADMIN;
	// peerdns_dns_udp_receive_buffer_bytes shows what it granted. Outside
	// Linux the system default is kept.
	UDPReceiveBuffer int
	// MaxTCPConnections caps open TCP connections. Each connection answers
	// its queries one at a time, in order. When the cap is reached, a new
	// connection evicts the connection that has been idle longest to take
	// its place, as Unbound and BIND do; when none is idle, it is closed at
	// once. Idle means waiting for a query with no byte of it read by the
	// server nor (on Linux) queued for it in the kernel; a connection whose
	// next query's first bytes it reads while being evicted answers that
	// query, then closes (no longer counted against the cap meanwhile). A query sent after that finds the connection
	// closed, as after an idle timeout, and the client retries on a new one.
	// Default 1000: NodeLocal DNSCache forwarding with force_tcp holds one
	// connection per node while its queries do not overlap (CoreDNS's
	// forward opens another only while all of its are busy, and closes one
	// unused for 10 s), so 1000 serves about 1000 nodes per replica without
	// evicting. An idle connection costs about 2 KiB of heap besides its
	// goroutine's stack and the kernel's socket buffers.
	MaxTCPConnections int
	// MaxTCPConnectionsPerClient caps the TCP connections of one client
	// address, in the same way: a client at its cap that opens another
	// closes its own longest-idle connection, or has the new one closed when
	// all of its connections are busy. So one client cannot hold every slot
	// and lock other clients out of the TCP fallback. A cluster DNS
	// forwarding to peerdns is one client per replica: keep this above the
	// TCP queries one replica has in flight. Default 100.
	MaxTCPConnectionsPerClient int
	// TCPReadTimeout bounds the wait for a connection's first query, and
	// for the rest of a query once its first byte arrived. Default 2s.
	TCPReadTimeout time.Duration
	// TCPIdleTimeout closes a connection that sends no query for this long
	// after the previous answer; clients that send edns-tcp-keepalive (RFC
	// 7828) are told it. Default 30s, as BIND's and Unbound's: longer than
	// the 10 s after which CoreDNS's forward (and so NodeLocal DNSCache)
	// stops reusing a pooled connection, so the client, not the server,
	// closes an idle connection, and never one the client is about to reuse.
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
	// keepalive is TCPIdleTimeout in units of 100 ms, as edns-tcp-keepalive
	// tells it to clients (RFC 7828).
	keepalive uint16
	// dstAddr is set when the UDP sockets report each query's destination
	// address, which the answer is sent from: on a wildcard bind.
	dstAddr bool
	// outBufs hold TCP answers, 2+64 KiB each; a connection takes one only
	// once it has read a whole query, and returns it after the write.
	outBufs sync.Pool

	mu      sync.Mutex
	closing bool // Serve is returning: admit no connection
	conns   map[*tcpConn]struct{}
	clients map[netip.Addr]int // open connections by client address
	wg      sync.WaitGroup

	// udpDrops is each UDP socket's drop count as last reported.
	udpDrops    []atomic.Uint32
	udpDropped  prometheus.Counter
	tcpConns    prometheus.Gauge
	tcpRejected prometheus.Counter
	tcpEvicted  prometheus.Counter

	// Test hooks, nil outside tests: after a connection is accepted and
	// before it is admitted; after Serve closed every connection; after a
	// connection read a query's length prefix; after a connection that
	// answered a query became idle again; after an idle connection read the
	// first bytes of a query, before it marks itself busy.
	testHookAccepted func()
	testHookClosed   func()
	testHookPrefix   func()
	testHookIdle     func()
	testHookRead     func()
	testHookUDPRead  func() // before a UDP worker reads
}

// tcpConn is an open TCP connection.
type tcpConn struct {
	net.Conn
	client netip.Addr
	// idleSince is when the connection last began to wait for a query, in
	// Unix nanoseconds; 0 while it reads or answers a query (and before it
	// first waits), when it must not be evicted; -1 once evicted.
	idleSince atomic.Int64
	// evicting is held while the connection is evicted, so its goroutine
	// sets its next read deadline only after the evictor's.
	evicting sync.Mutex
}

// markIdle records that c waits for a query, and returns the mark for
// markBusy. Only c's goroutine changes a busy mark, so a store will do.
func (c *tcpConn) markIdle() int64 {
	t := time.Now().UnixNano()
	c.idleSince.Store(t)
	return t
}

// markBusy records that c, idle since t, has read bytes of a query, and
// reports false when c was evicted meanwhile. Then c's read deadline is
// reset to readTimeout from now, after the evictor's, so c can read the
// rest of the query it began.
func (c *tcpConn) markBusy(t int64, readTimeout time.Duration) bool {
	if c.idleSince.CompareAndSwap(t, 0) {
		return true
	}
	c.evicting.Lock()
	defer c.evicting.Unlock()
	_ = c.SetReadDeadline(time.Now().Add(readTimeout)) // fails only on a closed connection
	return false
}

// evict claims c, idle since t, and wakes its goroutine's read, which then
// closes c. It reports false when c has become busy, or the kernel holds
// bytes of c's next query that c has not read yet. A query whose first
// bytes c reads while it is evicted is still answered.
func (c *tcpConn) evict(t int64) bool {
	c.evicting.Lock()
	defer c.evicting.Unlock()
	if unreadBytes(c.Conn) > 0 || !c.idleSince.CompareAndSwap(t, -1) {
		return false
	}
	_ = c.SetReadDeadline(time.Now()) // fails only on a closed connection
	return true
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
	if cfg.UDPReceiveBuffer <= 0 {
		cfg.UDPReceiveBuffer = 1 << 20
	}
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
		cfg.TCPIdleTimeout = 30 * time.Second
	}
	if cfg.TCPWriteTimeout <= 0 {
		cfg.TCPWriteTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		keepalive: uint16(min(cfg.TCPIdleTimeout/(100*time.Millisecond), 0xffff)),
		conns:     map[*tcpConn]struct{}{},
		clients:   map[netip.Addr]int{},
		outBufs:   sync.Pool{New: func() any { b := make([]byte, 2+dns.MaxMsgSize); return &b }},
	}
	f := promauto.With(cfg.Registerer)
	s.udpDropped = f.NewCounter(prometheus.CounterOpts{
		Name: "peerdns_dns_udp_receive_drops_total",
		Help: "UDP packets the kernel dropped because a socket's receive buffer was full (SO_RXQ_OVFL), counted when the next packet the socket queues after them is read. Linux only.",
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "peerdns_dns_udp_receive_buffer_bytes",
		Help: "Receive buffer of each UDP socket as the kernel reports it (SO_RCVBUF: twice the size granted, half of it for the kernel's bookkeeping). Linux only; 0 elsewhere.",
	}, s.receiveBuffer)
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
	// A socket bound to one address answers from it; a wildcard one
	// learns each query's destination to answer from it.
	ip, _ := netip.ParseAddr(host)
	s.dstAddr = dstAddrSupported && (host == "" || ip.IsUnspecified())
	lc := listenConfig(s.cfg.UDPSockets > 1, s.dstAddr, s.cfg.UDPReceiveBuffer)
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
	s.udpDrops = make([]atomic.Uint32, len(udp))
	return nil
}

// receiveBuffer is the first UDP socket's receive buffer, as the kernel
// reports it; they are all asked for the same.
func (s *Server) receiveBuffer() float64 {
	rc, err := s.udp[0].SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n = receiveBuffer(int(fd)) })
	return float64(n)
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
		if udpBatchSupported {
			s.wg.Go(func() { s.serveUDPBatch(i % len(s.udp)) })
		} else {
			s.wg.Go(func() { s.serveUDP(i % len(s.udp)) })
		}
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

// serveUDP answers the queries of UDP socket si, one at a time: where
// there is no batched path (udpbatch_linux.go).
func (s *Server) serveUDP(si int) {
	c := s.udp[si]
	in := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, dns.MaxMsgSize)
	oob := make([]byte, udpOOB)
	ctl := newUDPControl()
	shard := s.cfg.Handler.metrics.newShard()
	for {
		if s.testHookUDPRead != nil {
			s.testHookUDPRead()
		}
		n, oobn, _, addr, err := c.ReadMsgUDPAddrPort(in, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors surface here; the next read goes on
		}
		reply, drops, ok := ctl.read(oob[:oobn])
		if ok {
			s.countDrops(si, drops)
		}
		resp := s.answerUDP(out, in[:n], addr.Addr().Unmap(), shard)
		if resp == nil {
			continue
		}
		if _, _, err := c.WriteMsgUDPAddrPort(resp, reply, addr); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// countDrops adds to the drop counter what socket si's count, now drops,
// grew by since it was last seen. Workers sharing the socket may report
// out of order; a count below the last one seen is an old one.
func (s *Server) countDrops(si int, drops uint32) {
	last := &s.udpDrops[si]
	for {
		old := last.Load()
		d := drops - old // modulo 2^32: the kernel's count wraps
		if d == 0 || d > 1<<31 {
			return
		}
		if last.CompareAndSwap(old, drops) {
			s.udpDropped.Add(float64(d))
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

// evictIdle evicts the connection idle longest, of client when byClient is
// set, and reports whether there was one. s.mu is held.
func (s *Server) evictIdle(client netip.Addr, byClient bool) bool {
	var spared []*tcpConn // became busy while chosen
	for range 4 {
		var victim *tcpConn
		var since int64
		for c := range s.conns {
			t := c.idleSince.Load()
			if t <= 0 || byClient && c.client != client || slices.Contains(spared, c) {
				continue
			}
			if victim == nil || t < since {
				victim, since = c, t
			}
		}
		if victim == nil {
			return false
		}
		if !victim.evict(since) {
			spared = append(spared, victim)
			continue
		}
		s.forget(victim) // its slot is free now; its goroutine closes it
		s.tcpEvicted.Inc()
		return true
	}
	return false
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

// answerUDP answers one UDP query from client, appending to out: a zone
// transfer query by the Transfers (transfer.go), any other by the handler,
// counted in shard.
func (s *Server) answerUDP(out, q []byte, client netip.Addr, shard *metricShard) []byte {
	if x := s.cfg.Transfers; x != nil && isTransferQuery(q) {
		return x.AnswerUDP(out, q, client)
	}
	return s.cfg.Handler.answerConn(out, q, via{t: UDP, v6: !client.Is4(), shard: shard})
}

// serveConn answers the queries of one TCP connection, in order, until the
// client closes it, idles too long, sends garbage or is evicted.
//
// Queries are read through a buffer: pipelined queries that arrive together
// are answered from it without another read. A deadline is set only before
// a read that waits: TCPIdleTimeout (TCPReadTimeout for the first query)
// while no byte of the next query has arrived, TCPReadTimeout for the rest
// of a query once its first byte has.
//
// Memory: the buffer starts at tcpReadBuffer bytes and grows only when it
// is full and holds an incomplete query (to at most twice its size, and to
// at most that query's length), so a client that announces a 64 KiB query
// and sends a byte makes the server hold 512 bytes; past 4 KiB it is
// dropped once empty. The 64 KiB output buffer is taken only to answer.
func (s *Server) serveConn(c *tcpConn) {
	buf := make([]byte, tcpReadBuffer)
	r, w := 0, 0 // unread bytes are buf[r:w]
	first, evicted := true, false
	announced := false // the length of the query at buf[r:] was read
	for {
		if r == w {
			if evicted {
				return
			}
			r = 0 // and w is set by the read
			if len(buf) > 4096 {
				buf = make([]byte, tcpReadBuffer)
			}
			// Nothing of the next query has arrived: the connection is
			// idle, and may be evicted to make room.
			idle := s.cfg.TCPIdleTimeout
			if first {
				idle = s.cfg.TCPReadTimeout // the first query must come promptly
			}
			since := c.markIdle()
			if s.testHookIdle != nil && !first {
				s.testHookIdle()
			}
			// A deadline fails to set only on a closed connection, whose
			// next read would fail as well.
			if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
				return
			}
			// An error that comes with data is seen again by the next
			// read.
			if w, _ = c.Read(buf); w == 0 {
				return // closed, timed out, evicted
			}
			if s.testHookRead != nil {
				s.testHookRead()
			}
			// Evicted while the first bytes arrived: answer the queries
			// that began, then close.
			evicted = !c.markBusy(since, s.cfg.TCPReadTimeout)
		}
		first = false
		need := 2
		if w-r >= 2 {
			n := int(binary.BigEndian.Uint16(buf[r:]))
			if n < headerSize {
				return
			}
			need = 2 + n
			if s.testHookPrefix != nil && !announced {
				s.testHookPrefix()
			}
			announced = true
		}
		if w-r < need {
			// The rest of this query: one deadline for the whole wait.
			if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPReadTimeout)); err != nil {
				return
			}
			var err error
			if buf, r, w, err = fill(c, buf, r, w, need); err != nil {
				return
			}
			continue // a completed prefix: read the length
		}
		query := buf[r+2 : r+need]
		if x := s.cfg.Transfers; x != nil && isTransferQuery(query) {
			if !x.ServeTCP(c, c.client, query, s.cfg.TCPWriteTimeout) { // transfer.go
				return
			}
		} else if !s.answerTCP(c, query) {
			return
		}
		r += need
		announced = false
	}
}

// tcpReadBuffer is a connection's initial read buffer: enough for the
// queries a connection carries, several of them pipelined.
const tcpReadBuffer = 512

// fill reads from c until buf[r:w] holds need bytes, moving the unread
// bytes to the front and growing buf only when it is full (to at most twice
// its size, and at most need), so memory follows the bytes that arrive.
func fill(c io.Reader, buf []byte, r, w, need int) ([]byte, int, int, error) {
	if r > 0 && len(buf)-r < need {
		w = copy(buf, buf[r:w])
		r = 0
	}
	for w-r < need {
		if w == len(buf) {
			grown := make([]byte, min(r+need, max(tcpReadBuffer, 2*len(buf))))
			copy(grown, buf[:w])
			buf = grown
		}
		k, err := c.Read(buf[w:])
		w += k
		if err != nil && w-r < need {
			return buf, r, w, err
		}
	}
	return buf, r, w, nil
}

// answerTCP writes the answer to query q.
func (s *Server) answerTCP(c *tcpConn, q []byte) bool {
	out := s.outBufs.Get().(*[]byte)
	defer s.outBufs.Put(out)
	resp := s.cfg.Handler.answerConn((*out)[2:2], q, via{t: TCP, v6: !c.client.Is4(), keepalive: s.keepalive})
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
