package resolver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TransferConfig configures zone transfers (AXFR, IXFR) and NOTIFY.
type TransferConfig struct {
	// Allow are the client addresses that may transfer the zones. Default
	// none: every transfer is refused.
	Allow []netip.Prefix
	// Key, when set, must sign every transfer request (RFC 8945); every
	// message of the reply is signed with it, and so are NOTIFYs. Default
	// none: requests must not be signed.
	Key *TSIGKey
	// Notify are the secondaries (host:port) told by NOTIFY (RFC 1996)
	// when a zone's serial moves. Default none.
	Notify []string
	// NotifyInterval is the least time between two NOTIFYs to one
	// secondary; changes within it are told in one. Default 1s.
	NotifyInterval time.Duration
	// NotifyTimeout is how long a NOTIFY waits for its acknowledgement
	// before it is retried, with the wait doubled up to NotifyMaxBackoff.
	// Default 2s.
	NotifyTimeout time.Duration
	// NotifyMaxBackoff caps the wait between retries of an unacknowledged
	// NOTIFY. Default 1m.
	NotifyMaxBackoff time.Duration
	// JournalRecords bounds each zone's IXFR journal: the deleted and added
	// records it holds over all its steps. The oldest steps go first; a
	// client whose serial is older than the journal gets the whole zone.
	// Default 100,000 (some tens of MB at most).
	JournalRecords int
	// MessageBytes is the most record bytes (uncompressed) a transfer
	// puts in one message before starting the next. Default 16,384, which
	// keeps every message far below the 65,535-byte limit.
	MessageBytes int
	// Registerer receives the transfer metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives NOTIFY failures; nil discards them.
	Logger *slog.Logger
}

// DefaultTransferConfig returns the defaults documented on TransferConfig:
// no client allowed.
func DefaultTransferConfig() TransferConfig {
	return TransferConfig{
		NotifyInterval:   time.Second,
		NotifyTimeout:    2 * time.Second,
		NotifyMaxBackoff: time.Minute,
		JournalRecords:   100_000,
		MessageBytes:     16_384,
	}
}

// Transfers serves zone transfers of a Handler's zones and sends NOTIFYs
// for them. A Server given one hands it every AXFR and IXFR query; Run
// sends the NOTIFYs.
type Transfers struct {
	cfg      TransferConfig
	h        *Handler
	journals []*journal // per zone
	metrics  *xfrMetrics
	notifier *notifier
}

// NewTransfers returns the transfers of h's zones with cfg. Every field of
// cfg must be valid: start from DefaultTransferConfig. It keeps a journal
// of h's store's changes from now on.
func NewTransfers(h *Handler, cfg TransferConfig) (*Transfers, error) {
	switch {
	case cfg.NotifyInterval <= 0 || cfg.NotifyTimeout <= 0 || cfg.NotifyMaxBackoff <= 0:
		return nil, errors.New("transfers: notify interval, timeout and backoff must be positive")
	case cfg.JournalRecords < 0:
		return nil, errors.New("transfers: negative journal size")
	case cfg.MessageBytes < 512 || cfg.MessageBytes > 32_768:
		return nil, fmt.Errorf("transfers: message bytes %d: not in [512, 32768]", cfg.MessageBytes)
	}
	for _, a := range cfg.Notify {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("transfers: notify address %q: %w", a, err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	x := &Transfers{cfg: cfg, h: h, journals: make([]*journal, len(h.zones))}
	for i := range x.journals {
		x.journals[i] = &journal{limit: cfg.JournalRecords}
	}
	x.metrics = newXfrMetrics(cfg.Registerer, x)
	x.notifier = newNotifier(x)
	h.store.watch(x.record) // journal.go
	return x, nil
}

// isTransferQuery reports whether q is for the Transfers rather than the
// Handler: AXFR and IXFR queries, and SOA queries with additional records
// (secondaries sign the SOA query that checks the serial before a
// transfer; Transfers answers an unsigned one as the Handler does).
func isTransferQuery(q []byte) bool {
	if len(q) < headerSize || q[2]&0x80 != 0 || q[2]>>3&0xf != dns.OpcodeQuery || binary.BigEndian.Uint16(q[4:]) != 1 {
		return false
	}
	off, ok := skipName(q, headerSize)
	if !ok || off+2 > len(q) {
		return false
	}
	t := binary.BigEndian.Uint16(q[off:])
	return t == dns.TypeAXFR || t == dns.TypeIXFR || t == dns.TypeSOA && binary.BigEndian.Uint16(q[10:]) > 0
}

// unsignedSOA reports whether q is a SOA query without TSIG, which the
// Handler answers.
func unsignedSOA(q []byte) bool {
	m := new(dns.Msg)
	return m.Unpack(q) == nil && len(m.Question) == 1 && m.Question[0].Qtype == dns.TypeSOA && m.IsTsig() == nil
}

// request is a transfer request that passed the checks.
type request struct {
	m      *dns.Msg
	qtype  uint16
	zi     int
	st     *state
	signer *tsigSigner
}

// admit checks transfer query q from client over t. It returns the request,
// or the refusal to send (already counted) and its signer (nil: unsigned).
func (x *Transfers) admit(q []byte, client netip.Addr, t Transport) (*request, *dns.Msg, *tsigSigner) {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil || len(m.Question) != 1 || len(m.Answer) != 0 || misplacedTSIG(m) {
		return nil, x.refuse(m, dns.RcodeFormatError, "malformed", 0), nil
	}
	qt := m.Question[0].Qtype
	client = client.Unmap()
	switch {
	case qt == dns.TypeAXFR && t == UDP:
		return nil, x.refuse(m, dns.RcodeRefused, "udp", qt), nil // RFC 5936 §4.2
	case qt == dns.TypeIXFR && (len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA):
		return nil, x.refuse(m, dns.RcodeFormatError, "malformed", qt), nil // RFC 1995 §3
	case !slices.ContainsFunc(x.cfg.Allow, func(p netip.Prefix) bool { return p.Contains(client) }):
		return nil, x.refuse(m, dns.RcodeRefused, "address", qt), nil
	}
	chk := checkTSIG(q, m, x.cfg.Key)
	if chk.rcode != 0 {
		r := x.refuse(m, chk.rcode, chk.reason, qt)
		if chk.err == dns.RcodeBadTime {
			// RFC 8945 §5.2.3: the MAC was right, so the error is
			// signed, carrying the request's time and ours.
			ts := m.IsTsig()
			return nil, r, &tsigSigner{key: x.cfg.Key, mac: ts.MAC, err: chk.err, timeSigned: int64(ts.TimeSigned)}
		}
		if chk.rcode == dns.RcodeNotAuth {
			// RFC 8945 §5.3.2: a BADKEY or BADSIG error goes back
			// unsigned, with the request's TSIG fields.
			ts := m.IsTsig()
			r.Extra = append(r.Extra, &dns.TSIG{
				Hdr:       dns.RR_Header{Name: ts.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
				Algorithm: ts.Algorithm, TimeSigned: ts.TimeSigned, Fudge: ts.Fudge, OrigId: ts.OrigId, Error: chk.err,
			})
		}
		return nil, r, nil
	}
	signer := &tsigSigner{key: x.cfg.Key, mac: chk.mac}
	if m.IsTsig() == nil {
		signer = nil
	}
	zi := slices.IndexFunc(x.h.zones, func(z zone) bool { return z.name == dns.CanonicalName(m.Question[0].Name) })
	switch {
	case zi < 0:
		return nil, x.refuse(m, dns.RcodeNotAuth, "zone", qt), signer // RFC 5936 §2.2.1
	case !x.h.store.Synced():
		// A zone from a partial view of the cluster would empty a
		// secondary's copy.
		return nil, x.refuse(m, dns.RcodeServerFailure, "not_synced", qt), signer
	}
	return &request{m: m, qtype: qt, zi: zi, st: x.h.store.snapshot(), signer: signer}, nil, nil
}

// misplacedTSIG reports a TSIG record that is not the last record of m
// (RFC 8945 §5.1), which IsTsig would not see.
func misplacedTSIG(m *dns.Msg) bool {
	for i, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeTSIG && i != len(m.Extra)-1 {
			return true
		}
	}
	return false
}

// refuse builds a refusal of m and counts it with reason.
func (x *Transfers) refuse(m *dns.Msg, rcode int, reason string, qtype uint16) *dns.Msg {
	x.metrics.refused(qtype, reason)
	r := new(dns.Msg)
	r.SetRcode(m, rcode)
	r.Authoritative = false
	r.Ns, r.Extra = nil, nil
	if opt := m.IsEdns0(); opt != nil {
		r.SetEdns0(x.h.cfg.UDPSize, opt.Do()) // RFC 6891 §7: an OPT answers an OPT
	}
	return r
}

// ServeTCP answers transfer query q from client on c, writing each message
// within writeTimeout. It reports whether c may serve more queries.
func (x *Transfers) ServeTCP(c net.Conn, client netip.Addr, q []byte, writeTimeout time.Duration) bool {
	if unsignedSOA(q) {
		return x.answerPlain(c, q, writeTimeout)
	}
	w := &frameWriter{c: c, timeout: writeTimeout}
	req, refusal, rs := x.admit(q, client, TCP)
	if refusal != nil {
		_, err := w.send(refusal, rs)
		return err == nil
	}
	sent, kind, err := x.transfer(req, x.cfg.MessageBytes, w.send)
	x.metrics.done(req.qtype, kind, err, sent)
	return err == nil
}

// AnswerUDP answers transfer query q from client over UDP into dst[:0]:
// AXFR is refused; an IXFR reply that does not fit one datagram is
// replaced by the zone's SOA, which tells the client to use TCP (RFC 1995
// §2).
func (x *Transfers) AnswerUDP(dst, q []byte, client netip.Addr) []byte {
	if unsignedSOA(q) {
		return x.h.Answer(dst, q, UDP)
	}
	req, refusal, rs := x.admit(q, client, UDP)
	if refusal != nil {
		b, err := rs.pack(refusal)
		if err != nil {
			return nil
		}
		return append(dst[:0], b...)
	}
	limit := dns.MinMsgSize
	if opt := req.m.IsEdns0(); opt != nil {
		limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), x.h.cfg.MaxUDPSize)
	}
	// Records are batched at the datagram's size: a reply that needs a
	// second message is stopped there, so a whole zone is never built for
	// a datagram.
	var msgs []*dns.Msg
	_, kind, err := x.transfer(req, limit, func(m *dns.Msg, _ *tsigSigner) (int, error) {
		if len(msgs) > 0 {
			return 0, errNotOneDatagram
		}
		msgs = append(msgs, m)
		return 0, nil
	})
	var out []byte
	if err == nil && len(msgs) == 1 {
		if b, err := req.signer.pack(x.withEDNS(req, msgs[0])); err == nil && len(b) <= limit {
			out = b
		}
	}
	if out == nil {
		m := x.reply(req)
		m.Answer = []dns.RR{x.h.zoneSOA(req.zi, req.st.serialOf(req.zi))}
		b, err := req.signer.pack(x.withEDNS(req, m))
		if err != nil {
			x.metrics.done(req.qtype, kind, err, 0)
			return nil
		}
		out, kind = b, "soa_only"
	}
	x.metrics.done(req.qtype, kind, nil, len(out))
	return append(dst[:0], out...)
}

// answerPlain writes the Handler's answer to q on c.
func (x *Transfers) answerPlain(c net.Conn, q []byte, writeTimeout time.Duration) bool {
	b := x.h.Answer(make([]byte, 0, 512), q, TCP)
	if b == nil {
		return true
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return false
	}
	_, err := c.Write(append(out, b...))
	return err == nil
}

var errNotOneDatagram = errors.New("reply larger than one datagram")

// withEDNS adds an OPT record to m when the request had one.
func (x *Transfers) withEDNS(req *request, m *dns.Msg) *dns.Msg {
	if opt := req.m.IsEdns0(); opt != nil {
		m.SetEdns0(x.h.cfg.UDPSize, opt.Do())
	}
	return m
}

// reply starts a message of the reply to req.
func (x *Transfers) reply(req *request) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req.m)
	m.Authoritative = true
	m.Compress = true
	return m
}

// transfer sends req's reply as messages of at most limit record bytes
// through send: the whole zone for AXFR, the journal's differences (or
// the whole zone, or the SOA alone) for IXFR. It returns the bytes send
// reported, and the kind of reply.
func (x *Transfers) transfer(req *request, limit int, send func(*dns.Msg, *tsigSigner) (int, error)) (int, string, error) {
	out := &batcher{x: x, req: req, limit: limit, send: send}
	serial := req.st.serialOf(req.zi)
	soa := x.h.zoneSOA(req.zi, serial)
	kind := "full"
	switch req.qtype {
	case dns.TypeIXFR:
		kind = x.ixfr(req, soa, out) // ixfr.go
	case dns.TypeSOA:
		out.add(soa)
		kind = "soa_only"
	default:
		x.full(req, soa, out)
	}
	return out.sent, kind, out.finish()
}

// full sends the whole zone between two copies of its SOA.
func (x *Transfers) full(req *request, soa *dns.SOA, out *batcher) {
	out.add(soa)
	x.h.zoneBody(req.st, req.zi, out.add)
	out.add(soa)
}

// batcher groups a reply's records into messages.
//
// workaround: miekg/dns's Transfer.Out sends each envelope as one message
// whatever its size ("assume it fits") and writes through a
// dns.ResponseWriter, which this server's own TCP loop does not have. So
// the messages are split here, and built and signed with the library's Msg
// and TsigGenerate, as Transfer.Out does; the tests read them back with the
// library's Transfer.In, which checks the SOAs and every signature.

type batcher struct {
	x     *Transfers
	req   *request
	limit int
	send  func(*dns.Msg, *tsigSigner) (int, error)
	rrs   []dns.RR
	size  int
	sent  int
	err   error
}

// add queues rr, sending the queued records first when rr would take the
// message past the limit. It reports false once sending failed.
func (b *batcher) add(rr dns.RR) bool {
	if b.err != nil {
		return false
	}
	n := dns.Len(rr)
	if len(b.rrs) > 0 && b.size+n > b.limit {
		b.flush()
	}
	b.rrs = append(b.rrs, rr)
	b.size += n
	return b.err == nil
}

func (b *batcher) flush() {
	if b.err != nil || len(b.rrs) == 0 {
		return
	}
	m := b.x.reply(b.req)
	m.Answer = b.rrs
	b.rrs, b.size = nil, 0
	n, err := b.send(m, b.req.signer)
	b.sent += n
	b.err = err
}

func (b *batcher) finish() error {
	b.flush()
	return b.err
}

// frameWriter writes messages on a TCP connection, each with its length.
type frameWriter struct {
	c       net.Conn
	timeout time.Duration
	buf     []byte
}

// send writes m, signed by s when not nil, and returns the bytes written.
func (w *frameWriter) send(m *dns.Msg, s *tsigSigner) (int, error) {
	b, err := s.pack(m)
	if err != nil {
		return 0, err
	}
	if len(b) > dns.MaxMsgSize {
		return 0, errors.New("transfer message too large")
	}
	w.buf = binary.BigEndian.AppendUint16(w.buf[:0], uint16(len(b)))
	w.buf = append(w.buf, b...)
	if err := w.c.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	n, err := w.c.Write(w.buf)
	return n, err
}
