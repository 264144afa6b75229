package resolver

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Store holds the services the resolver answers for. An endpoints source
// (resolver/kube) writes to it; the handler reads it. All methods are safe
// for concurrent use.
//
// Everything a query reads is one immutable state, published whole: a
// writer builds the next state beside the current one (sharing what the
// change leaves alone, see strMap and ptrIndex) and swaps it in with one
// atomic store. Lookups take no lock: a query loads the state once
// (snapshot) and answers from it alone, so it sees the store as it was
// before or after each change, never a mix, even when one answer needs
// several reads. Writers replace a whole service at a time and are
// serialized by a mutex that lookups never take. Each zone's SOA serial is
// part of the state (serial.go), so data and serial are published together.
type Store struct {
	cur atomic.Pointer[state]

	// wmu serializes writers; it guards the fields below it.
	wmu      sync.Mutex
	ptrOn    bool          // index PTR records: only with reverse zones (enablePTR)
	zones    []serialZone  // the bound handler's zones, versioned per zone (serial.go)
	clock    func() uint32 // Unix seconds for serials; nil: the system clock (tests set it)
	onChange changeFunc    // told of each change once published, when set (journal.go)
	gen      uint64        // the last change's number, for ptrEdit
	// beforePublish, when set (by tests), is called by a writer holding wmu
	// once the next state is built, just before it is published.
	beforePublish func()
	// prebuild, set by the Handler, builds the answers of a large service's
	// views before they are published (see Handler.prebuild).
	prebuild func(*entry)

	synced atomic.Bool
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
	s := &Store{}
	s.cur.Store(&state{})
	return s
}

// snapshot returns the current state. A query calls it once and answers
// from the result alone.
func (s *Store) snapshot() *state { return s.cur.Load() }

// serviceKey is the key of a service in the store, in client-go's order
// (cache.MetaNamespaceKeyFunc).
func serviceKey(namespace, name string) string { return namespace + "/" + name }

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

// replace publishes e (nil: delete) as service namespace/name: it builds
// the next state from the current one under wmu, which only writers take,
// and publishes it with one atomic store. The next state copies only what
// the change touches: one shard of the service map, one of the namespace
// map when the namespace's counts change (strMap.set), and the paths of the
// changed addresses in the PTR index (ptrEdit).
func (s *Store) replace(namespace, name string, e *entry) {
	key := serviceKey(namespace, name)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cur := s.cur.Load()
	old, _ := cur.services.get(key)
	if old == nil && e == nil {
		return
	}
	next := *cur
	next.services = cur.services.set(key, e, e == nil)
	was, _ := cur.namespaces.get(namespace)
	nc := was
	if old != nil {
		nc.add(old, -1)
		next.nservices--
		next.endpoints -= old.ready.endpointCount()
	}
	if e != nil {
		nc.add(e, +1)
		next.nservices++
		next.endpoints += e.ready.endpointCount()
	}
	if nc != was {
		next.namespaces = cur.namespaces.set(namespace, nc, nc.ready == 0 && nc.all == 0)
	}
	if e != nil && s.prebuild != nil {
		s.prebuild(e)
	}
	var changes map[netip.Addr]*ptrEntry
	if s.ptrOn {
		var oldReady, newReady *view
		if old != nil {
			oldReady = old.ready
		}
		if e != nil {
			newReady = e.ready
		}
		ed := s.ptrEdit(cur)
		changes = ptrChanges(&cur.ptr, oldReady, newReady)
		ed.apply(changes)
		next.ptr = ed.x
	}
	next.serials = s.nextSerials(cur, old, e, changes)
	s.publish(&next)
	if s.onChange != nil {
		s.onChange(cur, &next, old, e, changes)
	}
}

// publish makes next the state queries see. The caller holds wmu.
func (s *Store) publish(next *state) {
	if s.beforePublish != nil {
		s.beforePublish()
	}
	s.cur.Store(next)
}

// ptrEdit starts a change of cur's PTR index. The caller holds wmu.
func (s *Store) ptrEdit(cur *state) *ptrEdit {
	s.gen++
	return &ptrEdit{x: cur.ptr, gen: s.gen}
}

// apply puts every new entry of changes and deletes the addresses mapped to
// nil.
func (ed *ptrEdit) apply(changes map[netip.Addr]*ptrEntry) {
	for a, pe := range changes {
		if pe == nil {
			ed.del(a)
		} else {
			ed.put(pe)
		}
	}
}

// ptrChanges returns the PTR entries that replace old's by cur's in index x:
// for every address of either view, its new entry, or nil when no target is
// left. Entries are new values, never changed in place, so answers cached on
// the old ones stay consistent.
func ptrChanges(x *ptrIndex, old, cur *view) map[netip.Addr]*ptrEntry {
	if old == nil && cur == nil {
		return nil
	}
	targets := map[netip.Addr][]ptrTarget{}
	touch := func(a netip.Addr) {
		if _, ok := targets[a]; ok {
			return
		}
		var ts []ptrTarget
		if pe := x.get(a); pe != nil {
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

// setPrebuild sets the function that builds a service's answers before it
// is published.
func (s *Store) setPrebuild(f func(*entry)) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.prebuild = f
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
	cur := s.cur.Load()
	ed := s.ptrEdit(cur)
	for _, e := range cur.services.all() {
		ed.apply(ptrChanges(&ed.x, nil, e.ready))
	}
	next := *cur
	next.ptr = ed.x
	s.cur.Store(&next)
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

// SetSynced marks the initial state as loaded: from then on a name that does
// not exist is NXDOMAIN instead of SERVFAIL.
func (s *Store) SetSynced() { s.synced.Store(true) }

// Synced reports whether SetSynced was called.
func (s *Store) Synced() bool { return s.synced.Load() }
