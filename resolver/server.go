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
	// MaxTCPConnections caps open TCP connections; connections over the
	// cap are closed at once. Each connection answers one query at a time.
	// Default 1000.
	MaxTCPConnections int
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
	cfg  ServerConfig
	udp  []*net.UDPConn
	tcp  *net.TCPListener
	sem  chan struct{}
	bufs sync.Pool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	tcpConns    prometheus.Gauge
	tcpRejected prometheus.Counter
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
		cfg:   cfg,
		sem:   make(chan struct{}, cfg.MaxTCPConnections),
		conns: map[net.Conn]struct{}{},
		bufs:  sync.Pool{New: func() any { b := make([]byte, 2+dns.MaxMsgSize); return &b }},
	}
	f := promauto.With(cfg.Registerer)
	s.tcpConns = f.NewGauge(prometheus.GaugeOpts{
		Name: "peerdns_dns_tcp_connections",
		Help: "Open DNS TCP connections.",
	})
	s.tcpRejected = f.NewCounter(prometheus.CounterOpts{
		Name: "peerdns_dns_tcp_connections_rejected_total",
		Help: "DNS TCP connections closed at once because max TCP connections were open.",
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
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", s.cfg.Addr, err)
	}
	lc := listenConfig(s.cfg.UDPSockets > 1)
	first, err := lc.ListenPacket(context.Background(), "udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen udp: %w", err)
	}
	udp := []*net.UDPConn{first.(*net.UDPConn)}
	port = strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port)
	addr := net.JoinHostPort(host, port)
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
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
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
		resp := s.cfg.Handler.Answer(out, in[:n], UDP)
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
		select {
		case s.sem <- struct{}{}:
		default:
			s.tcpRejected.Inc()
			c.Close()
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.tcpConns.Inc()
		s.wg.Go(func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				s.tcpConns.Dec()
				<-s.sem
			}()
			s.serveConn(c)
		})
	}
}

// serveConn answers the queries of one TCP connection, one at a time, until
// the client closes it, idles too long or sends garbage.
func (s *Server) serveConn(c net.Conn) {
	var prefix [2]byte
	idle := s.cfg.TCPReadTimeout // the first query must come promptly
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		if _, err := io.ReadFull(c, prefix[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(prefix[:]))
		if n < headerSize {
			return
		}
		if !s.answerTCP(c, n) {
			return
		}
		idle = s.cfg.TCPIdleTimeout
	}
}

// answerTCP reads a query of n bytes and writes its answer.
func (s *Server) answerTCP(c net.Conn, n int) bool {
	in, out := s.bufs.Get().(*[]byte), s.bufs.Get().(*[]byte)
	defer s.bufs.Put(in)
	defer s.bufs.Put(out)
	q := (*in)[:n]
	c.SetReadDeadline(time.Now().Add(s.cfg.TCPReadTimeout))
	if _, err := io.ReadFull(c, q); err != nil {
		return false
	}
	resp := s.cfg.Handler.Answer((*out)[2:2], q, TCP)
	if resp == nil {
		return true
	}
	msg := (*out)[:2+len(resp)]
	binary.BigEndian.PutUint16(msg, uint16(len(resp)))
	c.SetWriteDeadline(time.Now().Add(s.cfg.TCPWriteTimeout))
	_, err := c.Write(msg)
	return err == nil
}
