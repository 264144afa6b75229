package resolver

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the services the resolver answers for. An endpoints source
// (resolver/kube) writes to it; the handler reads it. All methods are safe
// for concurrent use. Writers replace a whole service at a time, so a query
// sees either the old or the new state of a service, never a mix.
type Store struct {
	// wmu serializes writers. Only writers change the maps below, so a
	// writer holding wmu reads them without mu and builds the new state
	// outside mu; mu is then held for writing only to store it.
	wmu      sync.Mutex
	mu       sync.RWMutex
	services map[string]*entry // key: "<svc>/<ns>"
	// namespaces counts, per namespace, the services with a non-empty view
	// in each tree, so "<ns>.svc.<zone>" is NODATA exactly when a name
	// exists below it and NXDOMAIN otherwise.
	namespaces map[string]*nsCount
	ptr        map[netip.Addr]*ptrEntry // only with reverse zones (ptrOn)
	ptrOn      bool
	endpoints  int // per-endpoint names in the ready views

	// reverse is the sorted list of addresses with a PTR record, built on
	// demand (under wmu) to tell empty non-terminals of reverse zones from
	// names that do not exist; nil after every change of the PTR index.
	reverse atomic.Pointer[[]netip.Addr]

	synced atomic.Bool
	serial atomic.Uint32 // SOA serial: Unix time of the last change
	// bound is set by the Handler that answers from the store: answers
	// cached on its names are laid out for that handler's zones.
	bound atomic.Bool

	// unencodable counts names left out because they cannot be encoded;
	// log, set by the Handler, is where they are reported.
	unencodable atomic.Uint64
	log         atomic.Pointer[slog.Logger]
}

// entry is one service: its two views (nil when empty).
type entry struct {
	ready, all *view
}

type nsCount struct{ ready, all int }

// ptrEntry is one address with PTR records: the per-endpoint names of the
// ready endpoints that have it, in every service.
type ptrEntry struct {
	addr    netip.Addr
	targets []ptrTarget
	node    node
}

type ptrTarget struct {
	v *view
	i int // host index
}

// NewStore returns an empty, unsynced store.
func NewStore() *Store {
	s := &Store{
		services:   map[string]*entry{},
		namespaces: map[string]*nsCount{},
		ptr:        map[netip.Addr]*ptrEntry{},
	}
	s.serial.Store(uint32(time.Now().Unix()))
	return s
}

func serviceKey(name, namespace string) string { return name + "/" + namespace }

// Upsert replaces everything known about the service svc.Namespace/svc.Name
// with svc. It returns once the new data is what queries see. svc is not
// retained after Upsert returns; the caller may reuse it.
//
// Names that cannot be encoded are left out, each counted
// (peerdns_unencodable_names_total) and logged at Warn: a service or
// namespace name that is not a 1–63 octet label of letters, digits, '-' and
// '_' drops the whole service (a previous state of it is deleted), a
// hostname or port name drops only that endpoint or port. The API server
// validates these fields, so this only guards against other sources.
func (s *Store) Upsert(svc Service) {
	for _, l := range []struct{ what, value string }{{"service", svc.Name}, {"namespace", svc.Namespace}} {
		if !validLabel(strings.ToLower(l.value), maxLabel) {
			s.dropName(&svc, l.what, l.value)
			s.Delete(svc.Namespace, svc.Name)
			return
		}
	}
	type dropped struct{ what, value string }
	var drops []dropped // each once, though both views meet it
	drop := func(what, value string) {
		if d := (dropped{what, value}); !slices.Contains(drops, d) {
			drops = append(drops, d)
		}
	}
	e := &entry{ready: newView(&svc, func(ep *Endpoint) bool { return ep.Ready }, drop)}
	e.all = e.ready // the usual case, and half the memory
	for i := range svc.Endpoints {
		if !svc.Endpoints[i].Ready && len(svc.Endpoints[i].Addrs) > 0 {
			e.all = newView(&svc, func(*Endpoint) bool { return true }, drop)
			break
		}
	}
	for _, d := range drops {
		s.dropName(&svc, d.what, d.value)
	}
	if e.ready == nil && e.all == nil {
		s.Delete(svc.Namespace, svc.Name)
		return
	}
	s.replace(strings.ToLower(svc.Namespace), strings.ToLower(svc.Name), e)
}

// dropName counts and logs a name of svc that cannot be encoded.
func (s *Store) dropName(svc *Service, what, value string) {
	s.unencodable.Add(1)
	if l := s.log.Load(); l != nil {
		l.Warn("name left out: it cannot be encoded as one DNS label", "namespace", svc.Namespace, "service", svc.Name, "field", what, "value", value)
	}
}

// Delete forgets the service namespace/name. Deleting an unknown service is
// a no-op.
func (s *Store) Delete(namespace, name string) {
	s.replace(strings.ToLower(namespace), strings.ToLower(name), nil)
}

// replace publishes e (nil: delete) as service namespace/name. Writers are
// serialized by wmu, so everything new is built from the current state
// without holding mu; mu is held for writing only while the prepared
// entries are stored into the maps, never while building, cloning or
// sorting.
func (s *Store) replace(namespace, name string, e *entry) {
	key := serviceKey(name, namespace)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old := s.services[key] // maps change only under wmu: reading is safe
	if old == nil && e == nil {
		return
	}
	var oldReady, newReady *view
	if old != nil {
		oldReady = old.ready
	}
	if e != nil {
		newReady = e.ready
	}
	ptr := s.ptrChanges(oldReady, newReady)
	var nc nsCount
	if c := s.namespaces[namespace]; c != nil {
		nc = *c
	}
	endpoints := s.endpoints
	if old != nil {
		nc.add(old, -1)
		endpoints -= old.ready.endpointCount()
	}
	if e != nil {
		nc.add(e, +1)
		endpoints += e.ready.endpointCount()
	}

	s.mu.Lock()
	if e != nil {
		s.services[key] = e
	} else {
		delete(s.services, key)
	}
	if nc.ready == 0 && nc.all == 0 {
		delete(s.namespaces, namespace)
	} else {
		s.namespaces[namespace] = &nc
	}
	for a, pe := range ptr {
		if pe == nil {
			delete(s.ptr, a)
		} else {
			s.ptr[a] = pe
		}
	}
	s.endpoints = endpoints
	if len(ptr) > 0 {
		s.reverse.Store(nil)
	}
	s.mu.Unlock()
	s.bumpSerial()
}

func (c *nsCount) add(e *entry, d int) {
	if e.ready != nil {
		c.ready += d
	}
	if e.all != nil {
		c.all += d
	}
}

// ptrChanges returns the PTR entries that replace old's by cur's: for every
// address of either view, its new entry, or nil when no target is left.
// Entries are new values, never changed in place, so answers cached on the
// old ones stay consistent. The caller holds wmu.
func (s *Store) ptrChanges(old, cur *view) map[netip.Addr]*ptrEntry {
	if !s.ptrOn || (old == nil && cur == nil) {
		return nil
	}
	targets := map[netip.Addr][]ptrTarget{}
	touch := func(a netip.Addr) {
		if _, ok := targets[a]; ok {
			return
		}
		var ts []ptrTarget
		if pe := s.ptr[a]; pe != nil {
			ts = slices.DeleteFunc(slices.Clone(pe.targets), func(t ptrTarget) bool { return t.v == old })
		}
		targets[a] = ts
	}
	if old != nil {
		for _, h := range old.hosts {
			for _, a := range h.addrs {
				touch(a)
			}
		}
	}
	if cur != nil {
		for i, h := range cur.hosts {
			for _, a := range h.addrs {
				touch(a)
				targets[a] = append(targets[a], ptrTarget{v: cur, i: i})
			}
		}
	}
	out := make(map[netip.Addr]*ptrEntry, len(targets))
	for a, ts := range targets {
		if len(ts) == 0 {
			out[a] = nil
			continue
		}
		slices.SortFunc(ts, comparePTR)
		pe := &ptrEntry{addr: a, targets: ts}
		pe.node = node{kind: kindPTR, ptr: pe}
		out[a] = pe
	}
	return out
}

// enablePTR starts indexing addresses for PTR records, which only a handler
// with reverse zones answers: without them the index would be the largest
// thing in the store for nothing.
func (s *Store) enablePTR() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ptrOn {
		return
	}
	s.ptrOn = true
	for _, e := range s.services {
		ptr := s.ptrChanges(nil, e.ready)
		s.mu.Lock()
		for a, pe := range ptr {
			s.ptr[a] = pe
		}
		s.mu.Unlock()
	}
	s.reverse.Store(nil)
}

// comparePTR puts names from a hostname (a StatefulSet pod's stable name)
// before dashed-address names, then orders by service and label, so the
// first PTR record, which getnameinfo returns, is the most useful one.
func comparePTR(a, b ptrTarget) int {
	ha, hb := a.v.hosts[a.i].label, b.v.hosts[b.i].label
	da, db := ha == dashedLabel(a.v.hosts[a.i].addrs[0]), hb == dashedLabel(b.v.hosts[b.i].addrs[0])
	if da != db {
		if db {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.v.namespace, b.v.namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.v.name, b.v.name); c != 0 {
		return c
	}
	return compareLabel(ha, hb)
}

func (s *Store) bumpSerial() {
	now := uint32(time.Now().Unix())
	for {
		old := s.serial.Load()
		next := max(now, old+1) // strictly increasing, as RFC 1982 readers expect
		if s.serial.CompareAndSwap(old, next) {
			return
		}
	}
}

// SetSynced marks the initial state as loaded: from then on a name that does
// not exist is NXDOMAIN instead of SERVFAIL.
func (s *Store) SetSynced() { s.synced.Store(true) }

// Synced reports whether SetSynced was called.
func (s *Store) Synced() bool { return s.synced.Load() }

// lookup returns the entry of service name in namespace, both lower case.
// The caller holds s.mu for reading.
func (s *Store) lookup(name, namespace []byte) *entry {
	var buf [128]byte
	k := append(append(append(buf[:0], name...), '/'), namespace...)
	return s.services[string(k)]
}

// namespaceExists reports whether any name exists under <ns>.<tree>.
// The caller holds s.mu for reading.
func (s *Store) namespaceExists(namespace []byte, peers bool) bool {
	c := s.namespaces[string(namespace)]
	if c == nil {
		return false
	}
	if peers {
		return c.all > 0
	}
	return c.ready > 0
}

// reverseExists reports whether some address with a PTR record lies in p:
// the reverse name of p is then an empty non-terminal, not a name that does
// not exist.
func (s *Store) reverseExists(p netip.Prefix) bool {
	sorted := s.reverse.Load()
	if sorted == nil {
		sorted = s.sortedReverse()
	}
	addrs := *sorted
	i, _ := slices.BinarySearchFunc(addrs, p.Addr(), func(a, t netip.Addr) int { return a.Compare(t) })
	return i < len(addrs) && p.Contains(addrs[i])
}

// sortedReverse builds the sorted list of addresses with a PTR record after
// a change. It runs under wmu, not under mu: writers wait for it (and it
// cannot go stale, as only they change s.ptr), lookups do not.
func (s *Store) sortedReverse() *[]netip.Addr {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if sorted := s.reverse.Load(); sorted != nil {
		return sorted // built while this caller waited
	}
	addrs := make([]netip.Addr, 0, len(s.ptr))
	for a := range s.ptr {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	s.reverse.Store(&addrs)
	return &addrs
}
