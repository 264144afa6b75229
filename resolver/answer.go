package resolver

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// An answer is a response kept in wire form: everything after the question
// section, compressed against a question of exactly this name at offset 12.
// A query for the same name in any letter case has a question of the same
// length, so the handler copies the client's header ID and question in front
// of body and sends it: no unpacking, building or packing per query.
//
// Compression pointers only ever point backwards, so every prefix of full
// that ends on a record boundary is itself a well-formed message: a
// response that must fit a size limit is full cut at the last boundary that
// fits, found by a binary search in cuts. Every client size is served from
// the same bytes, without allocating.
type answer struct {
	full       []byte // the whole message, with the lower-case question
	qend       int    // offset just past the question in full
	an, ns, ar uint16
	// cuts are the offsets in full where a response may end, ascending:
	// after every record of the answer and authority sections, and in the
	// additional section only after a whole RRset, so a client never
	// caches part of an RRset as if it were all of it.
	cuts []cut
	// tc is set when answer records were left out at build because the
	// whole answer exceeds the 65,535 bytes of a DNS message: every
	// response from it, over TCP too, then has TC.
	tc bool
}

// maxRecords bounds the records of one section an answer is built from.
// The smallest record peerdns serves (an A record with a compressed owner:
// 2 + 10 + 4 octets) is 16 octets, so more than maxRecords of them never fit
// in a message of dns.MaxMsgSize octets: building more would only cost time
// for records that are cut. The bound makes the cost of building an answer
// independent of the size of a service beyond it.
const maxRecords = dns.MaxMsgSize / 16

// cut is a place a response may end: records records precede offset end.
type cut struct {
	end     int32
	records uint16
}

// nodata marks a slot whose name exists but has no records of the type:
// the handler answers NODATA with the zone's current SOA.
var nodata = &answer{}

func (a *answer) body() []byte { return a.full[a.qend:] }

// newAnswer packs rrs as the answer to qname/qtype. extra goes to the
// additional section. An answer larger than a DNS message can be (65,535
// octets) is cut to fit: additional records first, at an RRset boundary,
// then answer records, and then marked tc. Callers give at most
// maxRecords+1 records per section.
func newAnswer(qname string, qtype uint16, rrs, extra []dns.RR) *answer {
	if len(rrs) == 0 {
		return nodata
	}
	m := &dns.Msg{Compress: true}
	m.Question = []dns.Question{{Name: qname, Qtype: qtype, Qclass: dns.ClassINET}}
	m.Answer, m.Extra = rrs, extra
	if m.Len() > dns.MaxMsgSize {
		m.Truncate(dns.MaxMsgSize)
		m.Compress = true
		// Keep whole RRsets of the additional section only.
		keep := 0
		for _, j := range rrsetEnds(extra) {
			if j < len(m.Extra) {
				keep = j + 1
			}
		}
		m.Extra = m.Extra[:keep]
	}
	b, err := m.Pack()
	if err != nil {
		// Only names too long for the wire get here (a 63-byte label on a
		// long zone); such a name cannot be asked for either.
		return nodata
	}
	a := &answer{
		full: b,
		qend: 12 + len(qname) + 1 + 4, // presentation "a.b." is one byte shorter than wire
		an:   uint16(len(m.Answer)),
		ns:   uint16(len(m.Ns)),
		ar:   uint16(len(m.Extra)),
		tc:   len(m.Answer) < len(rrs),
	}
	ends, ok := recordEnds(b, a.qend, len(m.Answer)+len(m.Ns)+len(m.Extra))
	if !ok {
		return nodata // miekg/dns packed what it cannot have packed
	}
	needed := len(m.Answer) + len(m.Ns)
	a.cuts = make([]cut, 0, needed+1+len(m.Extra))
	a.cuts = append(a.cuts, cut{end: int32(a.qend)})
	for i, end := range ends[:needed] {
		a.cuts = append(a.cuts, cut{end: int32(end), records: uint16(i + 1)})
	}
	for _, j := range rrsetEnds(m.Extra) {
		a.cuts = append(a.cuts, cut{end: int32(ends[needed+j]), records: uint16(needed + j + 1)})
	}
	return a
}

// rrsetEnds returns the indexes j of rrs after which no record of an RRset
// (owner and type) met so far follows: where a list of them may be cut
// without splitting an RRset.
func rrsetEnds(rrs []dns.RR) []int {
	type key struct {
		name string
		typ  uint16
	}
	last := map[key]int{}
	for i, rr := range rrs {
		last[key{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}] = i
	}
	var out []int
	reach := -1 // the last index of any RRset met so far
	for i, rr := range rrs {
		reach = max(reach, last[key{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}])
		if reach == i {
			out = append(out, i)
		}
	}
	return out
}

// recordEnds returns the offset just past each of the n records that start
// at msg[off:].
func recordEnds(msg []byte, off, n int) ([]int, bool) {
	ends := make([]int, n)
	for i := range ends {
		var ok bool
		if off, ok = skipName(msg, off); !ok {
			return nil, false
		}
		if off+10 > len(msg) {
			return nil, false
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) {
			return nil, false
		}
		ends[i] = off
	}
	return ends, off == len(msg)
}

// skipName returns the offset just past the wire-format name at msg[off:]:
// its labels, ending in the root label or in a compression pointer. It
// reports false for a name running past msg or a label longer than 63.
func skipName(msg []byte, off int) (int, bool) {
	for {
		if off >= len(msg) {
			return off, false
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xc0 == 0xc0:
			return off + 2, true
		case l > 63:
			return off, false
		}
		off += 1 + l
	}
}

// fit returns the part of a's body that fits a response ending at offset
// limit at most (header and question included, as in full), with its record
// counts. tc reports that records of the answer or authority section were
// left out, here or when a was built (a.tc); leaving out additional records
// is not truncation (RFC 2181 §9), the client has what it asked for.
func (a *answer) fit(limit int) (body []byte, an, ns, ar uint16, tc bool) {
	if len(a.full) <= limit {
		return a.body(), a.an, a.ns, a.ar, a.tc
	}
	// The last cut at or before limit; cuts[0] is the end of the question,
	// which always fits.
	lo, hi := 0, len(a.cuts)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if int(a.cuts[mid].end) <= limit {
			lo = mid
		} else {
			hi = mid
		}
	}
	c := a.cuts[lo]
	n := c.records
	an = min(n, a.an)
	n -= an
	ns = min(n, a.ns)
	ar = n - ns
	return a.full[a.qend:c.end], an, ns, ar, an < a.an || ns < a.ns || a.tc
}

// Answer slots of a node: which records a query type asks for.
const (
	slotA = iota
	slotAAAA
	slotSRV // SRV on forward names, PTR on reverse ones
	slotANY
	numSlots
)

// slotOf maps a query type to the slot of node kind k, or -1 when a name of
// that kind never has records of the type (NODATA).
func slotOf(k nodeKind, qtype uint16) int {
	if k == kindNS && qtype == dns.TypeSRV {
		return -1
	}
	if k == kindPTR {
		switch qtype {
		case dns.TypePTR:
			return slotSRV
		case dns.TypeANY:
			return slotANY
		}
		return -1
	}
	switch qtype {
	case dns.TypeA:
		return slotA
	case dns.TypeAAAA:
		return slotAAAA
	case dns.TypeSRV:
		return slotSRV
	case dns.TypeANY:
		return slotANY
	}
	return -1
}

// answerFor returns n's answer for slot in zone zi and tree, building it on
// first use.
func (h *Handler) answerFor(n *node, zi int, tree string, slot int) *answer {
	cache := n.cache.Load()
	if cache == nil {
		c := make([]atomic.Pointer[answer], len(h.zones)*2*numSlots)
		if !n.cache.CompareAndSwap(nil, &c) {
			cache = n.cache.Load()
		} else {
			cache = &c
		}
	}
	t := 0
	if tree == treePeers {
		t = 1
	}
	p := &(*cache)[(zi*2+t)*numSlots+slot]
	if a := p.Load(); a != nil {
		return a
	}
	// One build per node at a time: after a change of a large service,
	// every worker asked for it would otherwise build the same answer at
	// once, and queries for other names would wait for a free worker.
	n.building.Lock()
	defer n.building.Unlock()
	if a := p.Load(); a != nil {
		return a // built while this query waited
	}
	a := h.build(n, &h.zones[zi], tree, slot)
	p.Store(a)
	return a
}

// build makes n's answer for slot in zone z and tree from its view.
func (h *Handler) build(n *node, z *zone, tree string, slot int) *answer {
	if n.kind == kindPTR {
		qname := reverseName(n.ptr.addr) + "."
		if slot == slotANY {
			return newAnswer(qname, dns.TypeANY, h.ptrRecords(qname, n.ptr), nil)
		}
		return newAnswer(qname, dns.TypePTR, h.ptrRecords(qname, n.ptr), nil)
	}
	if n.kind == kindNS {
		return h.nsAnswer(z, slot)
	}
	qname := h.nodeName(n, z.name, tree)
	switch slot {
	case slotA:
		return newAnswer(qname, dns.TypeA, h.addrRecords(qname, n, true), nil)
	case slotAAAA:
		return newAnswer(qname, dns.TypeAAAA, h.addrRecords(qname, n, false), nil)
	case slotSRV:
		rrs, extra := h.srvRecords(qname, n, z.name, tree)
		return newAnswer(qname, dns.TypeSRV, rrs, extra)
	}
	// ANY (RFC 8482): one RRset the name has, not all of them.
	if rrs := h.addrRecords(qname, n, true); len(rrs) > 0 {
		return newAnswer(qname, dns.TypeANY, rrs, nil)
	}
	if rrs := h.addrRecords(qname, n, false); len(rrs) > 0 {
		return newAnswer(qname, dns.TypeANY, rrs, nil)
	}
	rrs, extra := h.srvRecords(qname, n, z.name, tree)
	return newAnswer(qname, dns.TypeANY, rrs, extra)
}

// nsAnswer is the answer of the NS target ns.dns.<zone> for slot: the
// server's own addresses (Config.NSAddresses), NODATA when there are none of
// the type.
func (h *Handler) nsAnswer(z *zone, slot int) *answer {
	qname := nsTarget(z.name)
	var v4, v6 []dns.RR
	for _, a := range h.cfg.NSAddresses {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, h.addrRR(qname, a))
		} else if a.IsValid() {
			v6 = append(v6, h.addrRR(qname, a))
		}
	}
	switch slot {
	case slotA:
		return newAnswer(qname, dns.TypeA, v4, nil)
	case slotAAAA:
		return newAnswer(qname, dns.TypeAAAA, v6, nil)
	case slotANY:
		if len(v4) > 0 {
			return newAnswer(qname, dns.TypeANY, v4, nil)
		}
		return newAnswer(qname, dns.TypeANY, v6, nil)
	}
	return nodata
}

// nodeName is the lower-case owner name of a forward node in zone and tree.
func (h *Handler) nodeName(n *node, zone, tree string) string {
	v := n.v
	svc := v.name + "." + v.namespace + "." + tree + "." + zone
	switch n.kind {
	case kindHost:
		return v.hosts[n.i].label + "." + svc
	case kindPort:
		p := v.ports[n.i]
		return "_" + p.Name + "._" + p.Protocol + "." + svc
	}
	return svc
}

func (h *Handler) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: h.cfg.TTL}
}

// addrRecords are the A (v4) or AAAA records of a service or host name.
func (h *Handler) addrRecords(qname string, n *node, v4 bool) []dns.RR {
	var hosts []host
	switch n.kind {
	case kindService:
		hosts = n.v.hosts
	case kindHost:
		hosts = n.v.hosts[n.i : n.i+1]
	default:
		return nil
	}
	var rrs []dns.RR
	seen := map[netip.Addr]bool{}
	for _, hs := range hosts {
		for _, a := range hs.addrs {
			if a.Is4() != v4 || seen[a] {
				continue
			}
			if len(rrs) > maxRecords {
				return rrs // newAnswer cuts it anyway
			}
			seen[a] = true
			rrs = append(rrs, h.addrRR(qname, a))
		}
	}
	return rrs
}

func (h *Handler) addrRR(name string, a netip.Addr) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: h.hdr(name, dns.TypeA), A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: h.hdr(name, dns.TypeAAAA), AAAA: a.AsSlice()}
}

// srvRecords are the SRV records of a service name (every named port) or a
// port name (one port): for each port, one record per (port number, host)
// pair, hosts in ordinal order, pairing a host only with the numbers its
// own endpoints have (ports belong to EndpointSlices, not to the service).
// The hosts' addresses are additional records. Priority is 0 and every
// record of a port has the same weight, 100/N for its N records (at least
// 1), so clients spread load evenly. Past maxRecords+1 records in either
// section, no more are made (newAnswer would cut them); N still counts
// them all.
func (h *Handler) srvRecords(qname string, n *node, zone, tree string) (rrs, extra []dns.RR) {
	v := n.v
	var ports []Port
	switch n.kind {
	case kindService:
		ports = v.ports
	case kindPort:
		ports = v.ports[n.i : n.i+1]
	default:
		return nil, nil
	}
	if len(ports) == 0 {
		return nil, nil
	}
	svc := v.name + "." + v.namespace + "." + tree + "." + zone
	targets := make([]string, len(v.hosts))
	used := make([]bool, len(v.hosts))
	for _, p := range ports {
		first, count := len(rrs), 0
		for i, hs := range v.hosts {
			for _, hp := range hs.ports {
				if hp.Name != p.Name || hp.Protocol != p.Protocol {
					continue
				}
				count++
				if len(rrs) > maxRecords {
					continue
				}
				if targets[i] == "" {
					targets[i] = hs.label + "." + svc
				}
				used[i] = true
				rrs = append(rrs, &dns.SRV{Hdr: h.hdr(qname, dns.TypeSRV), Priority: 0, Port: hp.Port, Target: targets[i]})
			}
		}
		weight := uint16(max(1, 100/max(1, count)))
		for _, rr := range rrs[first:] {
			rr.(*dns.SRV).Weight = weight
		}
	}
	for i, hs := range v.hosts {
		if !used[i] {
			continue
		}
		if len(extra) > maxRecords {
			break
		}
		for _, a := range hs.addrs {
			extra = append(extra, h.addrRR(targets[i], a))
		}
	}
	return rrs, extra
}

// ptrRecords name every ready endpoint that has the address, in the first
// forward zone.
func (h *Handler) ptrRecords(qname string, e *ptrEntry) []dns.RR {
	rrs := make([]dns.RR, 0, len(e.targets))
	for _, t := range e.targets {
		v := t.v
		target := v.hosts[t.i].label + "." + v.name + "." + v.namespace + "." + treeService + "." + h.ptrZone
		rrs = append(rrs, &dns.PTR{Hdr: h.hdr(qname, dns.TypePTR), Ptr: target})
	}
	return rrs
}

// prebuildHosts is the size from which a view's answers are built by the
// writer before the view is published, not by the first query: at 1,000
// hosts an SRV answer is about 60 KB and takes milliseconds to build, and
// after each change of such a service every query for it would miss the
// cache at once.
const prebuildHosts = 1000

// prebuild builds, for a service of at least prebuildHosts endpoints, the
// answers of its service and port names (A, AAAA, SRV and ANY of the
// service name, SRV of each port name) in every forward zone and both
// trees. The Store calls it while it holds its writer lock, before it
// publishes e, so queries answer from the previous state's cached answers
// until the new ones are ready, and no query builds them: a change of such
// a service becomes visible that much later. The answers are kept until the
// next change, at most one DNS message each (see maxRecords), whether or not
// they are asked for.
func (h *Handler) prebuild(e *entry) {
	for zi := range h.zones {
		if h.zones[zi].reverse {
			continue
		}
		for _, tv := range [2]struct {
			tree string
			v    *view
		}{{treeService, e.ready}, {treePeers, e.all}} {
			v := tv.v
			if v == nil || len(v.hosts) < prebuildHosts {
				continue
			}
			for _, slot := range [...]int{slotA, slotAAAA, slotSRV, slotANY} {
				h.answerFor(&v.service, zi, tv.tree, slot)
			}
			for i := range v.portNodes {
				h.answerFor(&v.portNodes[i], zi, tv.tree, slotSRV)
			}
		}
	}
}
