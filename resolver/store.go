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
	// demand to tell empty non-terminals of reverse zones from names that
	// do not exist; nil after every change.
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

func (s *Store) replace(namespace, name string, e *entry) {
	key := serviceKey(name, namespace)
	s.mu.Lock()
	old := s.services[key]
	if old == nil && e == nil {
		s.mu.Unlock()
		return
	}
	if old != nil {
		s.count(namespace, old, -1)
		s.unindexPTR(old.ready)
	}
	if e != nil {
		s.services[key] = e
		s.count(namespace, e, +1)
		s.indexPTR(e.ready)
	} else {
		delete(s.services, key)
	}
	s.reverse.Store(nil)
	s.bumpSerial()
	s.mu.Unlock()
}

func (s *Store) count(namespace string, e *entry, d int) {
	c := s.namespaces[namespace]
	if c == nil {
		c = &nsCount{}
		s.namespaces[namespace] = c
	}
	if e.ready != nil {
		c.ready += d
	}
	if e.all != nil {
		c.all += d
	}
	if c.ready == 0 && c.all == 0 {
		delete(s.namespaces, namespace)
	}
	s.endpoints += d * e.ready.endpointCount()
}

// indexPTR adds v's addresses to the PTR index. Entries are replaced, not
// changed in place, so answers cached on them stay consistent.
func (s *Store) indexPTR(v *view) {
	if v == nil || !s.ptrOn {
		return
	}
	for i, h := range v.hosts {
		for _, a := range h.addrs {
			old := s.ptr[a]
			n := &ptrEntry{addr: a}
			if old != nil {
				n.targets = slices.Clone(old.targets)
			}
			n.targets = append(n.targets, ptrTarget{v: v, i: i})
			slices.SortFunc(n.targets, comparePTR)
			n.node = node{kind: kindPTR, ptr: n}
			s.ptr[a] = n
		}
	}
}

func (s *Store) unindexPTR(v *view) {
	if v == nil || !s.ptrOn {
		return
	}
	for _, h := range v.hosts {
		for _, a := range h.addrs {
			old := s.ptr[a]
			if old == nil {
				continue
			}
			targets := slices.DeleteFunc(slices.Clone(old.targets), func(t ptrTarget) bool { return t.v == v })
			if len(targets) == 0 {
				delete(s.ptr, a)
				continue
			}
			n := &ptrEntry{addr: a, targets: targets}
			n.node = node{kind: kindPTR, ptr: n}
			s.ptr[a] = n
		}
	}
}

// enablePTR starts indexing addresses for PTR records, which only a handler
// with reverse zones answers: without them the index would be the largest
// thing in the store for nothing.
func (s *Store) enablePTR() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptrOn {
		return
	}
	s.ptrOn = true
	for _, e := range s.services {
		s.indexPTR(e.ready)
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
		// Built and published under the read lock: a writer, which clears
		// the list, cannot run in between, so a stale list is never kept.
		s.mu.RLock()
		addrs := make([]netip.Addr, 0, len(s.ptr))
		for a := range s.ptr {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		sorted = &addrs
		s.reverse.Store(sorted)
		s.mu.RUnlock()
	}
	addrs := *sorted
	i, _ := slices.BinarySearchFunc(addrs, p.Addr(), func(a, t netip.Addr) int { return a.Compare(t) })
	return i < len(addrs) && p.Contains(addrs[i])
}
