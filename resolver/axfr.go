package resolver

import (
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// The records of a zone, as a transfer sends them (RFC 5936), in one
// deterministic order: the apex (SOA, NS, the NS target's addresses when
// they are in the zone, dns-version TXT), then, for a forward zone, every
// service ordered by "namespace/name", its svc tree then its peers tree,
// each as the names answer: the service name (A, AAAA, SRV of every named
// port), the per-endpoint names (A, AAAA) in ordinal order, the
// _<port>._<proto> names (SRV); for a reverse zone, the PTR records of
// every address in it, in address order. The records are those queries get,
// built by the same functions, so a secondary answers what peerdns answers.

// zoneSOA is zone zi's SOA record at serial. Its own TTL is the negative
// TTL too: RFC 2308 §5 caches a negative answer for min(SOA TTL, MINIMUM).
func (h *Handler) zoneSOA(zi int, serial uint32) *dns.SOA {
	z := &h.zones[zi]
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: z.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: h.cfg.NegativeTTL},
		Ns:      h.nsTargetOf(z),
		Mbox:    "hostmaster." + z.name,
		Serial:  serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  h.cfg.NegativeTTL,
	}
}

// apexRecords are zone zi's records at the apex and in dns.<zone>, SOA
// excluded.
func (h *Handler) apexRecords(zi int) []dns.RR {
	z := &h.zones[zi]
	rrs := []dns.RR{&dns.NS{
		Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: h.cfg.TTL},
		Ns:  h.nsTargetOf(z),
	}}
	if z.reverse {
		return rrs // the NS target is in a forward zone
	}
	target := nsTarget(z.name)
	var v6 []dns.RR
	for _, a := range h.cfg.NSAddresses {
		if a = a.Unmap(); a.Is4() {
			rrs = append(rrs, h.addrRR(target, a))
		} else if a.IsValid() {
			v6 = append(v6, h.addrRR(target, a))
		}
	}
	rrs = append(rrs, v6...)
	return append(rrs, &dns.TXT{
		Hdr: dns.RR_Header{Name: "dns-version." + z.name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: versionTTL},
		Txt: []string{SchemaVersion},
	})
}

// zoneBody yields zone zi's records in st, SOA excluded, in transfer
// order, until yield returns false.
func (h *Handler) zoneBody(st *state, zi int, yield func(dns.RR) bool) {
	for _, rr := range h.apexRecords(zi) {
		if !yield(rr) {
			return
		}
	}
	z := &h.zones[zi]
	if z.reverse {
		for pe := range st.ptr.all {
			if !h.ptrInZone(zi, pe.addr) {
				continue
			}
			for _, rr := range h.ptrRecords(reverseName(pe.addr)+".", pe) {
				if !yield(rr) {
					return
				}
			}
		}
		return
	}
	keys := make([]string, 0, st.nservices)
	for k := range st.services.all() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf []dns.RR
	for _, k := range keys {
		e, _ := st.services.get(k)
		buf = h.serviceRecords(buf[:0], z, e)
		for _, rr := range buf {
			if !yield(rr) {
				return
			}
		}
	}
}

// ptrInZone reports whether a's PTR records belong to zone zi: it is the
// longest reverse zone holding a, the one queries are answered from.
func (h *Handler) ptrInZone(zi int, a netip.Addr) bool {
	return h.store.reverseZoneOf(a) == zi
}

// serviceRecords appends the records of service e (nil: none) in forward
// zone z to rrs: its svc tree, then its peers tree.
func (h *Handler) serviceRecords(rrs []dns.RR, z *zone, e *entry) []dns.RR {
	if e == nil {
		return rrs
	}
	for _, t := range [...]struct {
		tree string
		v    *view
	}{{treeService, e.ready}, {treePeers, e.all}} {
		v := t.v
		if v == nil {
			continue
		}
		rrs = h.nodeRecords(rrs, &v.service, z, t.tree)
		for i := range v.hostNodes {
			rrs = h.nodeRecords(rrs, &v.hostNodes[i], z, t.tree)
		}
		for i := range v.portNodes {
			rrs = h.nodeRecords(rrs, &v.portNodes[i], z, t.tree)
		}
	}
	return rrs
}

// nodeRecords appends every record of forward node n: A, AAAA, SRV.
func (h *Handler) nodeRecords(rrs []dns.RR, n *node, z *zone, tree string) []dns.RR {
	name := h.nodeName(n, z.name, tree)
	rrs = append(rrs, h.addrRecords(name, n, true)...)
	rrs = append(rrs, h.addrRecords(name, n, false)...)
	srv, _ := h.srvRecords(name, n, z.name, tree)
	return append(rrs, srv...)
}
