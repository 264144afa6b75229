package resolver

import (
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Zone serials.
//
// Each zone has its own SOA serial, kept in the published state beside the
// data it versions, so a query that loads one state reads data and serial
// of the same version. A zone's serial moves exactly when a change alters
// a record of that zone: every forward zone when a service's names, its
// endpoints' addresses or named ports change (in either tree, svc or
// peers); a reverse zone only when the PTR records of an address in it
// change. A change that leaves a zone's records as they were (a resync, a
// not-ready endpoint in a service whose PTR records come from ready ones
// only) leaves its serial alone.
//
// A serial never goes backwards while the process runs: each step takes it
// to max(old+1, now in Unix seconds). At start every zone's serial is the
// Unix time, so a restart moves no serial backwards as long as the serial
// was not ahead of the clock when the process stopped. It gets ahead only
// while a zone changes more than once a second on average since the last
// time it was at the clock; a restart in that window would start below the
// last serial, and a secondary at that serial would keep its copy until the
// clock catches up (RFC 1982 comparison: it sees an older serial).
//
// Two replicas start at different times and see changes at different
// moments, so their serials differ and so do the steps in their IXFR
// journals: a secondary must transfer from one replica (its own address or
// a per-pod name), never from a load-balanced address whose replicas may
// answer one IXFR after another.

// serialZone is what the store knows of a zone to version it.
type serialZone struct {
	reverse bool
	prefix  netip.Prefix // reverse zones: the addresses the zone names
}

// bindZones gives each of the handler's zones a serial, seeded from the
// clock. The store then versions every change per zone.
func (s *Store) bindZones(zones []zone) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.zones = make([]serialZone, len(zones))
	for i, z := range zones {
		s.zones[i] = serialZone{reverse: z.reverse, prefix: z.prefix}
	}
	next := *s.cur.Load()
	now := s.unixNow()
	next.serials = make([]uint32, len(zones))
	for i := range next.serials {
		next.serials[i] = now
	}
	s.cur.Store(&next)
}

// unixNow is the clock serials are seeded from: the Unix time in seconds.
func (s *Store) unixNow() uint32 {
	if s.clock != nil {
		return s.clock()
	}
	return uint32(time.Now().Unix())
}

// serialOf returns zone zi's serial in st.
func (st *state) serialOf(zi int) uint32 {
	if zi < len(st.serials) {
		return st.serials[zi]
	}
	return 0
}

// nextSerials returns the serials of the state that replaces service old by
// e, with ptr the PTR entries that change (ptrChanges, nil without reverse
// zones): cur's serials, each zone the change alters stepped once. The
// caller holds wmu.
func (s *Store) nextSerials(cur *state, old, e *entry, ptr map[netip.Addr]*ptrEntry) []uint32 {
	if len(s.zones) == 0 {
		return cur.serials
	}
	was, is := old, e
	if was == nil {
		was = &entry{}
	}
	if is == nil {
		is = &entry{}
	}
	forward := !sameView(was.ready, is.ready) || !sameView(was.all, is.all)
	var reverse []bool
	for a, pe := range ptr {
		if samePTR(cur.ptr.get(a), pe) {
			continue
		}
		if zi := s.reverseZoneOf(a); zi >= 0 {
			if reverse == nil {
				reverse = make([]bool, len(s.zones))
			}
			reverse[zi] = true
		}
	}
	if !forward && reverse == nil {
		return cur.serials
	}
	next := slices.Clone(cur.serials)
	now := s.unixNow()
	for i, z := range s.zones {
		if z.reverse && reverse != nil && reverse[i] || !z.reverse && forward {
			next[i] = max(now, next[i]+1)
		}
	}
	return next
}

// reverseZoneOf returns the index of the longest reverse zone holding a's
// reverse name (the zone a query for it is answered from), or -1.
func (s *Store) reverseZoneOf(a netip.Addr) int {
	best := -1
	for i, z := range s.zones {
		if z.reverse && z.prefix.Contains(a) && (best < 0 || z.prefix.Bits() > s.zones[best].prefix.Bits()) {
			best = i
		}
	}
	return best
}

// sameView reports whether a and b publish the same records: the same
// hosts with the same addresses and ports (the names, SRV records and
// weights all follow from them).
func sameView(a, b *view) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.name == b.name && a.namespace == b.namespace &&
		slices.EqualFunc(a.hosts, b.hosts, func(x, y host) bool {
			return x.label == y.label && slices.Equal(x.addrs, y.addrs) && slices.Equal(x.ports, y.ports)
		})
}

// samePTR reports whether a and b give the same PTR records.
func samePTR(a, b *ptrEntry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.EqualFunc(a.targets, b.targets, func(x, y ptrTarget) bool {
		return x.v.hosts[x.i].label == y.v.hosts[y.i].label && x.v.name == y.v.name && x.v.namespace == y.v.namespace
	})
}

// registerSerials exports every zone's serial as peerdns_zone_serial.
func (h *Handler) registerSerials(reg prometheus.Registerer) {
	f := promauto.With(reg)
	for zi := range h.zones {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "peerdns_zone_serial",
			Help:        "The SOA serial of the zone: stepped by one, or to the Unix time when that is larger, each time a change alters a record of the zone.",
			ConstLabels: prometheus.Labels{"zone": h.zones[zi].name},
		}, func() float64 { return float64(h.store.snapshot().serialOf(zi)) })
	}
}
