package resolver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Handler.
type Config struct {
	// Zones are the zones to answer for, forward ("peerdns.internal.") and
	// reverse ("250.10.in-addr.arpa."; every address in it that is not a
	// ready endpoint's is NXDOMAIN). Every service is served under every
	// forward zone; PTR targets use the first forward zone. No zone may be
	// the root or lie inside another (see CheckZones). Default
	// ["peerdns.internal."]: a zone of its own that the cluster DNS forwards
	// to peerdns. Not the cluster domain: behind a cluster DNS, forwarding
	// cluster.local. here would hide every service that is not headless.
	Zones []string
	// TTL of every positive record. Default 5 seconds, as CoreDNS's
	// kubernetes plugin: long enough to absorb bursts, short enough that a
	// moved pod is found again quickly. 0 is used as given (caches should
	// not keep the answers), so start from DefaultConfig for the default.
	TTL uint32
	// NegativeTTL is the TTL and the SOA minimum of negative answers
	// (NXDOMAIN and NODATA), which caches keep that long (RFC 2308). Default
	// 1 second, so a pod that starts a second later is not hidden for 30
	// seconds by a cache in front (kubernetes/kubernetes#92559). 0 is used
	// as given, like TTL.
	NegativeTTL uint32
	// UDPSize is the EDNS payload size this server advertises. Default 1232
	// (DNS flag day 2020: fits every path without fragmenting).
	UDPSize uint16
	// NSAddresses are this server's own addresses, served as the A and
	// AAAA records of the NS target ns.dns.<zone> (in the first forward
	// zone for reverse zones), so the apex NS names a host that resolves.
	// Default none: the NS target then exists with no address records
	// (NODATA), which is a lame delegation for anything that follows it.
	NSAddresses []netip.Addr
	// MaxUDPSize caps the UDP response size whatever a client advertises;
	// larger answers are cut, with TC when answer records were left out, so
	// the client retries over TCP. Default 1232, as BIND's (DNS flag day
	// 2020): larger UDP responses fragment on many paths (VXLAN pod
	// networks among them) and multiply what a spoofed query can reflect.
	MaxUDPSize int
	// NSID names this server to clients that ask which replica answered:
	// the NSID option (RFC 5001) in responses to queries that carry one
	// (except the FORMERR, NOTIMP, BADVERS and NOTAUTH responses to queries
	// the fast path does not parse), and the TXT record of id.server. and
	// hostname.bind. in class CH. At most 255 bytes. Default empty: no
	// NSID, and those CH names are REFUSED.
	NSID string
	// Sync, when set, tells how current the store's records are; nil: they
	// are taken as current whenever the store has synced.
	Sync SyncStatus
	// StaleAfter: once Sync's last sync is longer ago than this, answers
	// from the store's records (names below svc.<zone>, peers.<zone> and
	// the reverse zones) to EDNS queries carry the Extended DNS Error Stale
	// Answer (RFC 8914). Default 2 minutes.
	StaleAfter time.Duration
	// MaxStaleness, when positive and Sync is set, makes Ready fail once
	// Sync's last sync is longer ago than this, so a replica whose watch is
	// broken leaves the Service while another serves. Default 0: readiness
	// does not depend on it.
	MaxStaleness time.Duration
	// ServerLabel is the server label of the handler's metrics, as
	// CoreDNS's: the scheme and the listen address. Default "dns://:53".
	ServerLabel string
	// Registerer receives the handler's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives rare events; nil discards them. Queries are counted,
	// never logged.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Zones:       []string{"peerdns.internal."},
		TTL:         5,
		NegativeTTL: 1,
		UDPSize:     1232,
		MaxUDPSize:  1232,
		StaleAfter:  2 * time.Minute,
		ServerLabel: "dns://:53",
	}
}

// SyncStatus reports how current the records a Store holds are. The
// EndpointSlice watcher implements it; the handler calls it on each answer
// from the store, from many goroutines at once, so it must be safe for
// concurrent use and must neither block nor allocate.
type SyncStatus interface {
	// LastSynced is when the records were last known to match the API
	// server (the watch connected and current); the zero time if never.
	LastSynced() time.Time
}

// Handler answers DNS queries from a Store. It is safe for concurrent use
// and does not allocate for answers it has answered before.
type Handler struct {
	cfg     Config
	store   *Store
	zones   []zone
	ptrZone string // forward zone of PTR targets
	metrics *metrics
	// soas caches each zone's SOA record for the store's current serial.
	soas []atomic.Pointer[soaRecord]
	// nsNode is ns.dns.<zone> in every forward zone: Config.NSAddresses.
	nsNode node
	// draining is set in the lame-duck period before shutdown; it only
	// affects readiness, answers go on.
	draining atomic.Bool
	// chaosTXT is the CH TXT record of Config.NSID, owned by a pointer to
	// the question's name; nil without an NSID.
	chaosTXT []byte
}

// Transport is how a query arrived; it decides the response size limit.
type Transport uint8

// Transports.
const (
	UDP Transport = iota
	TCP
)

func (t Transport) String() string {
	if t == TCP {
		return "tcp"
	}
	return "udp"
}

// NewHandler returns a handler answering from store with cfg; zero fields
// of cfg take their defaults, except TTL and NegativeTTL, for which 0 is a
// legal value and is kept. A store serves one handler.
func NewHandler(store *Store, cfg Config) (*Handler, error) {
	def := DefaultConfig()
	if len(cfg.Zones) == 0 {
		cfg.Zones = def.Zones
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = def.UDPSize
	}
	if cfg.MaxUDPSize == 0 {
		cfg.MaxUDPSize = def.MaxUDPSize
	}
	if cfg.MaxUDPSize < dns.MinMsgSize || cfg.MaxUDPSize > dns.MaxMsgSize {
		return nil, fmt.Errorf("max UDP size %d: not in [%d, %d]", cfg.MaxUDPSize, dns.MinMsgSize, dns.MaxMsgSize)
	}
	if cfg.ServerLabel == "" {
		cfg.ServerLabel = def.ServerLabel
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = def.StaleAfter
	}
	if len(cfg.NSID) > 255 {
		return nil, fmt.Errorf("NSID %q: %d bytes, at most 255", cfg.NSID, len(cfg.NSID))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, store: store, nsNode: node{kind: kindNS}}
	if cfg.NSID != "" {
		rr := packAlone(&dns.TXT{
			Hdr: dns.RR_Header{Name: "id.server.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
			Txt: []string{cfg.NSID},
		})
		// Owned by the question's name, whichever of the two it is: a
		// pointer to it replaces the packed name.
		h.chaosTXT = append([]byte{0xc0, headerSize}, rr[len(chaosIDServer):]...)
	}
	zones, err := newZones(cfg.Zones)
	if err != nil {
		return nil, err
	}
	h.zones = zones
	for _, z := range h.zones {
		if !z.reverse && h.ptrZone == "" {
			h.ptrZone = z.name
		}
	}
	if h.ptrZone == "" {
		h.ptrZone = def.Zones[0]
	}
	for i := range h.zones {
		h.zones[i].static = h.newStaticRecords(&h.zones[i])
	}
	h.soas = make([]atomic.Pointer[soaRecord], len(h.zones))
	if !store.bound.CompareAndSwap(false, true) {
		return nil, errors.New("store already has a handler")
	}
	store.log.Store(cfg.Logger)
	store.setPrebuild(h.prebuild)
	store.bindZones(h.zones) // serial.go
	for _, z := range h.zones {
		if z.reverse {
			store.enablePTR()
		}
	}
	h.metrics = newMetrics(cfg.Registerer, store, cfg.ServerLabel, h.zones)
	h.registerSerials(cfg.Registerer) // serial.go
	return h, nil
}

// Ready reports whether the handler should receive traffic: the store has
// synced and shutdown has not begun.
func (h *Handler) Ready() error {
	if h.draining.Load() {
		return errors.New("shutting down")
	}
	if !h.store.Synced() {
		return errors.New("endpoints not synced yet")
	}
	if h.cfg.MaxStaleness > 0 && h.cfg.Sync != nil {
		if age := time.Since(h.cfg.Sync.LastSynced()); age > h.cfg.MaxStaleness {
			return fmt.Errorf("endpoints last synced %s ago, more than %s", age.Round(time.Second), h.cfg.MaxStaleness)
		}
	}
	return nil
}

// stale reports whether the store's records are older than StaleAfter.
func (h *Handler) stale() bool {
	return h.cfg.Sync != nil && time.Since(h.cfg.Sync.LastSynced()) > h.cfg.StaleAfter
}

// Drain makes Ready fail while answers go on: the lame-duck period lets
// load balancers and caches move away before the server stops.
func (h *Handler) Drain() { h.draining.Store(true) }

// result is the outcome of a lookup: a cached answer, or a response made of
// at most one static record and the zone's SOA.
type result struct {
	rcode  int
	ans    *answer
	static []byte // one record for the answer section (apex SOA/NS, TXT)
	soa    bool   // the zone's SOA in the authority section
	zi     int    // the zone the name is in, -1 for none
	ede    *extendedError
}

// extendedError is an Extended DNS Error (RFC 8914) to send with a
// response, when the query has an OPT record.
type extendedError struct {
	code uint16
	text string
}

var (
	edeNotReady     = &extendedError{dns.ExtendedErrorCodeNotReady, "endpoints not synced yet"}
	edeNotAuth      = &extendedError{dns.ExtendedErrorCodeNotAuthoritative, "not in a zone served here"}
	edeNotSupported = &extendedError{dns.ExtendedErrorCodeNotSupported, "zone transfers are not served"}
	edeStale        = &extendedError{dns.ExtendedErrorCodeStaleAnswer, "endpoints not synced with the API server recently"}
)

// Header bits.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4

	optLen     = 11 // an OPT record without options
	headerSize = 12
)

// Answer writes the response to query q, received over t, to dst[:0] and
// returns it; nil means send nothing (the packet was not a query). It never
// panics on malformed input and keeps no reference to q or dst. Its
// metrics count the query under family IPv4.
func (h *Handler) Answer(dst, q []byte, t Transport) []byte {
	return h.answerConn(dst, q, via{t: t})
}

// via is how a query reached the server.
type via struct {
	t Transport
	// v6: the client's address is IPv6 (IPv4-mapped ones are IPv4).
	v6 bool
	// keepalive is how long, in units of 100 ms, the server keeps a TCP
	// connection open after an answer, which it tells TCP clients that
	// ask (RFC 7828); 0 tells none.
	keepalive uint16
	// shard counts the query; nil: the handler's shared shard.
	shard *metricShard
}

// answerConn is Answer for a server, which tells how the query came.
func (h *Handler) answerConn(dst, q []byte, v via) []byte {
	start := time.Now()
	resp, qtype, rcode, zi := h.answer(dst[:0], q, v.t, v.keepalive)
	h.metrics.observe(v, zi, qtype, rcode, len(q), resp, start)
	return resp
}

// answer parses the queries it can answer from the cache without
// allocating: opcode QUERY, one question, an OPT record of version 0 at
// most. Everything else is rejected by reject, through miekg/dns.
func (h *Handler) answer(dst, q []byte, t Transport, keepalive uint16) (resp []byte, qtype uint16, rcode, zi int) {
	if len(q) < headerSize {
		return nil, 0, -1, -1 // no header: any reply could amplify
	}
	flags := binary.BigEndian.Uint16(q[2:])
	hdr := dns.Header{
		Bits:    flags,
		Qdcount: binary.BigEndian.Uint16(q[4:]),
		Ancount: binary.BigEndian.Uint16(q[6:]),
		Nscount: binary.BigEndian.Uint16(q[8:]),
		Arcount: binary.BigEndian.Uint16(q[10:]),
	}
	switch dns.DefaultMsgAcceptFunc(hdr) {
	case dns.MsgAccept:
	case dns.MsgIgnore:
		return nil, 0, -1, -1 // a response: any reply could amplify
	default:
		return h.reject(dst, q, t)
	}
	if flags>>11&0xf != dns.OpcodeQuery || hdr.Ancount != 0 || hdr.Nscount != 0 {
		return h.reject(dst, q, t) // NOTIFY, or records a query has no use for
	}
	var w wireName
	qend, ok := parseName(q, headerSize, &w)
	if !ok || qend+4 > len(q) {
		return h.reject(dst, q, t)
	}
	qtype = binary.BigEndian.Uint16(q[qend:])
	qclass := binary.BigEndian.Uint16(q[qend+2:])
	question := q[headerSize : qend+4]
	e, ok := parseEDNS(q, qend+4, hdr.Arcount)
	if !ok || e.version != 0 {
		return h.reject(dst, q, t)
	}
	r := result{zi: -1}
	switch {
	case qclass == dns.ClassCHAOS:
		r = h.chaos(&w, qtype)
	case qclass != dns.ClassINET && qclass != dns.ClassANY:
		// QCLASS * (RFC 1035 §3.2.5) matches IN, the only class served,
		// and is answered as IN, as Knot does.
		r = result{rcode: dns.RcodeRefused, ede: edeNotAuth, zi: -1}
	case qtype == dns.TypeOPT || qtype == 0:
		r.rcode = dns.RcodeFormatError
	case qtype == dns.TypeAXFR || qtype == dns.TypeIXFR || qtype == dns.TypeMAILA || qtype == dns.TypeMAILB:
		r = result{rcode: dns.RcodeRefused, ede: edeNotSupported, zi: -1} // no zone transfers
	default:
		r = h.resolve(&w, qtype)
	}
	var o replyOptions
	if e.present {
		o = replyOptions{nsid: e.nsid && h.cfg.NSID != "", ede: r.ede}
		if e.keepalive && t == TCP {
			o.keepalive = keepalive // RFC 7828 §3.2.1: never over UDP
		}
	}
	return h.write(dst, q, flags, question, r, e, o, t), qtype, r.rcode, r.zi
}

var (
	chaosIDServer     = appendWire(nil, "id.server.")
	chaosHostnameBind = appendWire(nil, "hostname.bind.")
)

// chaos answers class CH: the TXT record of Config.NSID at id.server. and
// hostname.bind., as BIND, Knot and Unbound name themselves.
func (h *Handler) chaos(w *wireName, qtype uint16) result {
	name := w.b[:w.n]
	if h.chaosTXT == nil || !eq(name, chaosIDServer) && !eq(name, chaosHostnameBind) {
		return result{rcode: dns.RcodeRefused, ede: edeNotAuth, zi: -1}
	}
	if qtype == dns.TypeTXT || qtype == dns.TypeANY {
		return result{static: h.chaosTXT, zi: -1}
	}
	return result{zi: -1} // NODATA
}

// edns is what a query's OPT record asked for.
type edns struct {
	present bool
	size    uint16
	version uint8
	do      bool
	// nsid: the NSID option (RFC 5001); keepalive: the edns-tcp-keepalive
	// option (RFC 7828).
	nsid, keepalive bool
}

// parseEDNS walks the query's additional section from off: ar records, at
// most one of them an OPT record owned by the root. It reports false for
// anything else answer leaves to reject: a malformed section, a second OPT,
// a TSIG record, malformed options.
func parseEDNS(q []byte, off int, ar uint16) (edns, bool) {
	var e edns
	for range ar {
		name := off
		var ok bool
		if off, ok = skipName(q, off); !ok {
			return e, false
		}
		if off+10 > len(q) {
			return e, false
		}
		typ := binary.BigEndian.Uint16(q[off:])
		rdlen := int(binary.BigEndian.Uint16(q[off+8:]))
		if off+10+rdlen > len(q) {
			return e, false
		}
		switch typ {
		case dns.TypeTSIG:
			return e, false
		case dns.TypeOPT:
			if e.present || q[name] != 0 {
				return e, false // RFC 6891 §6.1.1: one OPT, owned by the root
			}
			e = edns{
				present: true,
				size:    binary.BigEndian.Uint16(q[off+2:]),
				version: q[off+5],
				do:      q[off+6]&0x80 != 0,
			}
			if !e.parseOptions(q[off+10 : off+10+rdlen]) {
				return e, false
			}
		}
		off += 10 + rdlen
	}
	return e, true
}

// parseOptions reads the options of an OPT record's RDATA, and reports
// false when they do not fill it exactly (RFC 6891 §6.1.2), which BIND and
// Knot answer with FORMERR.
func (e *edns) parseOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			return false
		}
		switch code {
		case dns.EDNS0NSID:
			e.nsid = true
		case dns.EDNS0TCPKEEPALIVE:
			// RFC 7828 §3.1: a client sends it without a TIMEOUT. One
			// with a TIMEOUT is ignored, as Knot and Unbound do.
			e.keepalive = n == 0
		}
		b = b[4+n:]
	}
	return true
}

// sectionsMatch reports whether m holds as many records in each section as
// the header of its wire form q says.
func sectionsMatch(q []byte, m *dns.Msg) bool {
	return int(binary.BigEndian.Uint16(q[4:])) == len(m.Question) &&
		int(binary.BigEndian.Uint16(q[6:])) == len(m.Answer) &&
		int(binary.BigEndian.Uint16(q[8:])) == len(m.Ns) &&
		int(binary.BigEndian.Uint16(q[10:])) == len(m.Extra)
}

// reject answers the packets answer does not: every one of them gets an
// error. miekg/dns parses the query and packs the response, so the rules of
// RFC 6891 (an OPT record in the response to one in the query, BADVERS in
// it) and of RFC 8945 (TSIG errors) come from a library that implements
// them, not from a second hand-written parser. Error responses are rare and
// small; these allocations are the price of that.
func (h *Handler) reject(dst, q []byte, t Transport) ([]byte, uint16, int, int) {
	req := new(dns.Msg)
	err := req.Unpack(q) // the header always unpacks: answer checked its length
	resp := new(dns.Msg)
	resp.Id, resp.Response, resp.Opcode = req.Id, true, req.Opcode
	if req.Opcode == dns.OpcodeQuery {
		resp.RecursionDesired, resp.CheckingDisabled = req.RecursionDesired, req.CheckingDisabled
	}
	var qtype uint16
	if binary.BigEndian.Uint16(q[4:]) == 1 && len(req.Question) == 1 {
		resp.Question = req.Question // it parsed: echo it
		qtype = req.Question[0].Qtype
	}
	if err == nil && !sectionsMatch(q, req) {
		// workaround: miekg/dns's Unpack stops without an error at the
		// end of a message that is shorter than its header's counts say.
		err = errors.New("message shorter than its record counts")
	}
	var opt *dns.OPT
	var tsig *dns.TSIG
	opts := 0
	for i, rr := range req.Extra {
		switch rr := rr.(type) {
		case *dns.OPT:
			opt = rr
			opts++
			if rr.Hdr.Name != "." {
				opts++ // RFC 6891 §6.1.1: owned by the root
			}
		case *dns.TSIG:
			tsig = rr
			switch {
			case i != len(req.Extra)-1:
				err = errors.New("TSIG not last") // RFC 8945 §5.1
			case rr.Hdr.Class != dns.ClassANY || rr.Hdr.Rdlength == 0 || rr.Algorithm == "":
				// workaround: miekg/dns unpacks a TSIG record with empty
				// RDATA without an error (RFC 8945 §4.2: class ANY, an
				// algorithm name).
				err = errors.New("malformed TSIG")
			}
		}
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		// RFC 8490 §5.1: a DSO query (opcode 6) gets NOTIMP whatever its
		// sections hold, so the opcode is checked before anything else.
		resp.Rcode = dns.RcodeNotImplemented
	case err == nil && qtype == dns.TypeIXFR && len(req.Answer) == 0 && len(req.Ns) == 1 && req.Ns[0].Header().Rrtype == dns.TypeSOA && len(req.Extra) <= 2 && opts <= 1 && tsig == nil:
		// RFC 1995 §3: an IXFR query carries the client's SOA in its
		// authority section. Transfers not configured (or this one not
		// allowed, see Transfers): REFUSED, as for AXFR.
		resp.Rcode = dns.RcodeRefused
	case err != nil || len(resp.Question) == 0 || len(req.Answer) != 0 || len(req.Ns) != 0 || len(req.Extra) > 2 || opts > 1:
		resp.Rcode = dns.RcodeFormatError
	case tsig != nil:
		// Keys are checked only on transfers and SOA queries, which a
		// Server with Transfers hands to them: here every key is unknown
		// (RFC 8945 §5.2), and the error goes back unsigned (§5.3.2).
		resp.Rcode = dns.RcodeNotAuth
		tsig = &dns.TSIG{
			Hdr:        dns.RR_Header{Name: tsig.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm:  tsig.Algorithm,
			TimeSigned: tsig.TimeSigned,
			Fudge:      tsig.Fudge,
			OrigId:     tsig.OrigId,
			Error:      dns.RcodeBadKey,
		}
	case opt != nil && opt.Version() != 0:
		resp.Rcode = dns.RcodeBadVers // RFC 6891 §6.1.3
	default:
		// What the cached path cannot parse and miekg/dns can, such as a
		// compression pointer in the question.
		resp.Rcode = dns.RcodeFormatError
	}
	limit := dns.MaxMsgSize
	if t == UDP {
		limit = dns.MinMsgSize
	}
	if opt != nil {
		resp.SetEdns0(h.cfg.UDPSize, opt.Do())
		if t == UDP {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), h.cfg.MaxUDPSize)
		}
	}
	if tsig != nil && resp.Rcode == dns.RcodeNotAuth {
		resp.Extra = append(resp.Extra, tsig) // RFC 8945 §5.1: the last record
	}
	b, err := resp.Pack()
	if err == nil && len(b) > limit {
		// Only a long question with long TSIG names gets here: send the
		// rcode alone.
		resp.Question, resp.Extra = nil, nil
		if opt != nil {
			resp.SetEdns0(h.cfg.UDPSize, opt.Do())
		}
		b, err = resp.Pack()
	}
	if err != nil {
		return nil, qtype, -1, -1
	}
	return append(dst, b...), qtype, resp.Rcode, -1
}

// resolve looks the question up in the zones and the store.
func (h *Handler) resolve(w *wireName, qtype uint16) result {
	zi, n := -1, 0
	for i := range h.zones {
		if k, ok := h.zones[i].match(w); ok && (zi < 0 || len(h.zones[i].wire) > len(h.zones[zi].wire)) {
			zi, n = i, k
		}
	}
	if zi < 0 {
		return result{rcode: dns.RcodeRefused, ede: edeNotAuth, zi: -1}
	}
	var r result
	switch {
	case n == 0:
		r = h.apex(zi, qtype)
	case h.zones[zi].reverse:
		r = h.resolveReverse(w, zi, n, qtype)
	default:
		r = h.resolveForward(w, zi, n, qtype)
	}
	r.zi = zi
	return r
}

func (h *Handler) apex(zi int, qtype uint16) result {
	switch qtype {
	case dns.TypeSOA, dns.TypeANY:
		return result{static: h.soa(zi)}
	case dns.TypeNS:
		return result{static: h.zones[zi].static.ns}
	}
	return result{soa: true}
}

var (
	labelSvc        = []byte(treeService)
	labelPeers      = []byte(treePeers)
	labelDNS        = []byte("dns")
	labelNS         = []byte("ns")
	labelDNSVersion = []byte("dns-version")
)

// resolveForward answers names below a forward zone; n labels are left of
// the zone. The names (see README, "Names served"):
//
//	dns-version.<zone>                     TXT "1.1.0"
//	ns.dns.<zone>                          the NS target: A/AAAA of Config.NSAddresses
//	<svc>.<ns>.svc.<zone>                  A/AAAA of ready endpoints, SRV of all named ports
//	<host>.<svc>.<ns>.svc.<zone>           A/AAAA of one endpoint
//	_<port>._<proto>.<svc>.<ns>.svc.<zone> SRV
//	… the same under peers.<zone> for every endpoint, ready or not.
func (h *Handler) resolveForward(w *wireName, zi, n int, qtype uint16) result {
	top := w.label(n - 1)
	var peers bool
	switch {
	case eq(top, labelSvc):
	case eq(top, labelPeers):
		peers = true
	case n == 1 && eq(top, labelDNSVersion):
		if qtype == dns.TypeTXT || qtype == dns.TypeANY {
			return result{static: h.zones[zi].static.version}
		}
		return result{soa: true}
	case eq(top, labelDNS) && n == 1:
		return result{soa: true} // dns.<zone>: an empty non-terminal
	case eq(top, labelDNS) && n == 2 && eq(w.label(0), labelNS):
		return h.nodeResult(&h.nsNode, zi, treeService, qtype)
	default:
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	if n == 1 {
		return result{soa: true} // svc.<zone>, peers.<zone>: empty non-terminals
	}
	r := h.lookupService(w, zi, n, qtype, peers)
	if r.ede == nil && h.stale() {
		r.ede = edeStale
	}
	return r
}

// lookupService answers names of services below svc.<zone> or
// peers.<zone> from the store.
func (h *Handler) lookupService(w *wireName, zi, n int, qtype uint16, peers bool) result {
	if !h.store.Synced() {
		return result{rcode: dns.RcodeServerFailure, ede: edeNotReady}
	}
	st := h.store.snapshot()
	if n == 2 {
		return nxIf(!st.namespaceExists(w.label(0), peers))
	}
	var v *view
	tree := treeService
	if peers {
		tree = treePeers
	}
	if e := st.lookup(w.label(n-2), w.label(n-3)); e != nil {
		v = e.ready
		if peers {
			v = e.all
		}
	}
	if v == nil {
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	var nd *node
	switch n {
	case 3:
		nd = &v.service
	case 4:
		l := w.label(0)
		if len(l) > 1 && l[0] == '_' {
			return nxIf(!v.hasProto(l[1:])) // _tcp.<svc>…: empty non-terminal
		}
		nd = v.host(l)
	case 5:
		p, proto := w.label(0), w.label(1)
		if len(p) > 1 && p[0] == '_' && len(proto) > 1 && proto[0] == '_' {
			nd = v.port(p[1:], proto[1:])
		}
	}
	if nd == nil {
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	return h.nodeResult(nd, zi, tree, qtype)
}

// resolveReverse answers names below a reverse zone: PTR for the address of
// every ready endpoint, NODATA for the names above them.
func (h *Handler) resolveReverse(w *wireName, zi, n int, qtype uint16) result {
	if !h.store.Synced() {
		return result{rcode: dns.RcodeServerFailure, ede: edeNotReady}
	}
	r := h.lookupReverse(w, zi, n, qtype)
	if h.stale() {
		r.ede = edeStale
	}
	return r
}

// lookupReverse answers names below a reverse zone from the store.
func (h *Handler) lookupReverse(w *wireName, zi, n int, qtype uint16) result {
	z := &h.zones[zi]
	labels := n + z.labelsToArpa
	full := 4
	if z.v6 {
		full = 32
	}
	if labels > full {
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	p, ok := parseReverse(w, labels, z.v6)
	if !ok {
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	st := h.store.snapshot()
	if labels < full {
		return nxIf(!st.reverseExists(p))
	}
	e := st.ptr.get(p.Addr())
	if e == nil {
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	return h.nodeResult(&e.node, zi, treeService, qtype)
}

func (h *Handler) nodeResult(nd *node, zi int, tree string, qtype uint16) result {
	slot := slotOf(nd.kind, qtype)
	if slot < 0 {
		return result{soa: true}
	}
	a := h.answerFor(nd, zi, tree, slot)
	if a == nodata {
		return result{soa: true}
	}
	return result{ans: a}
}

// nxIf is NXDOMAIN when the name does not exist, NODATA when it does.
func nxIf(missing bool) result {
	if missing {
		return result{rcode: dns.RcodeNameError, soa: true}
	}
	return result{soa: true}
}

func eq(a, b []byte) bool { return string(a) == string(b) }

// write assembles the response: the query's ID and question (in the
// client's letter case), the result's sections, and an OPT record when the
// query had one. An answer too large for the transport is cut at a record
// boundary; TC is set only when answer or authority records were left out.
func (h *Handler) write(dst, q []byte, qflags uint16, question []byte, r result, e edns, o replyOptions, t Transport) []byte {
	limit := dns.MaxMsgSize
	if t == UDP {
		limit = dns.MinMsgSize
		if e.present {
			limit = min(max(int(e.size), dns.MinMsgSize), h.cfg.MaxUDPSize)
		}
	}
	opt := 0
	if e.present {
		opt = optLen + h.optionsLen(o)
	}
	flags := flagQR | qflags&(flagRD|flagCD) | uint16(r.rcode&0xf)
	if r.rcode == dns.RcodeSuccess || r.rcode == dns.RcodeNameError {
		flags |= flagAA
	}
	var an, ns, ar uint16
	var body, soa []byte
	switch {
	case r.ans != nil:
		// The answer's question has the length of the query's.
		var tc bool
		body, an, ns, ar, tc = r.ans.fit(limit - opt)
		if tc {
			flags |= flagTC
		}
	default:
		if r.static != nil {
			body, an = r.static, 1
		}
		if r.soa {
			soa, ns = h.soa(r.zi), 1
		}
		if headerSize+len(question)+len(body)+len(soa)+opt > limit {
			body, soa, an, ns = nil, nil, 0, 0
			flags |= flagTC
		}
	}
	if e.present {
		ar++
	}
	dst = append(dst, q[0], q[1])
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = binary.BigEndian.AppendUint16(dst, 1)
	dst = binary.BigEndian.AppendUint16(dst, an)
	dst = binary.BigEndian.AppendUint16(dst, ns)
	dst = binary.BigEndian.AppendUint16(dst, ar)
	dst = append(dst, question...)
	dst = append(dst, body...)
	dst = append(dst, soa...)
	if e.present {
		var do byte
		if e.do {
			do = 0x80 // RFC 3225: the DO bit is copied into the response
		}
		rdlen := h.optionsLen(o)
		dst = append(dst, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT&0xff),
			byte(h.cfg.UDPSize>>8), byte(h.cfg.UDPSize), byte(r.rcode>>4), 0, do, 0, byte(rdlen>>8), byte(rdlen))
		dst = h.appendOptions(dst, o)
	}
	return dst
}

// replyOptions are the EDNS options of a response.
type replyOptions struct {
	nsid      bool   // Config.NSID
	keepalive uint16 // edns-tcp-keepalive TIMEOUT, 0 for none
	ede       *extendedError
}

// optionsLen is the length of the options o in an OPT record's RDATA.
func (h *Handler) optionsLen(o replyOptions) int {
	n := 0
	if o.nsid {
		n += 4 + len(h.cfg.NSID)
	}
	if o.keepalive > 0 {
		n += 4 + 2
	}
	if o.ede != nil {
		n += 4 + 2 + len(o.ede.text)
	}
	return n
}

// appendOptions appends the options o to an OPT record's RDATA.
func (h *Handler) appendOptions(dst []byte, o replyOptions) []byte {
	if o.nsid {
		dst = binary.BigEndian.AppendUint16(dst, dns.EDNS0NSID)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.cfg.NSID)))
		dst = append(dst, h.cfg.NSID...)
	}
	if o.keepalive > 0 {
		dst = binary.BigEndian.AppendUint16(dst, dns.EDNS0TCPKEEPALIVE)
		dst = binary.BigEndian.AppendUint16(dst, 2)
		dst = binary.BigEndian.AppendUint16(dst, o.keepalive)
	}
	if o.ede != nil {
		dst = binary.BigEndian.AppendUint16(dst, dns.EDNS0EDE)
		dst = binary.BigEndian.AppendUint16(dst, uint16(2+len(o.ede.text)))
		dst = binary.BigEndian.AppendUint16(dst, o.ede.code)
		dst = append(dst, o.ede.text...)
	}
	return dst
}
