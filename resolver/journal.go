package resolver

import (
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// The IXFR journal: per zone, the differences between consecutive published
// states, each step the records one change deleted and added (RFC 1995
// §4), so an IXFR reply is as large as the change, not the zone.

// changeFunc is told of each published change, under the store's writer
// lock, after the state is published: cur and next are the states before
// and after, old and e the service's entries (nil: none), ptr the PTR
// entries that changed (nil without reverse zones).
type changeFunc func(cur, next *state, old, e *entry, ptr map[netip.Addr]*ptrEntry)

// watch makes f be told of every change from now on.
func (s *Store) watch(f changeFunc) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.onChange = f
}

// journalStep is one change of a zone: from serial from to serial to, the
// records deleted and added. Steps are never changed once journaled.
type journalStep struct {
	from, to uint32
	del, add []dns.RR
}

// journal is one zone's steps, oldest first, holding at most limit records.
type journal struct {
	mu      sync.Mutex
	steps   []*journalStep
	records int
	limit   int
}

// append adds st, dropping the oldest steps to stay within the limit. A
// step that does not fit alone empties the journal: clients get the whole
// zone until steps accumulate again.
func (j *journal) append(st *journalStep) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := len(st.del) + len(st.add)
	if n > j.limit {
		j.steps, j.records = nil, 0
		return
	}
	j.steps = append(j.steps, st)
	j.records += n
	drop := 0
	for j.records > j.limit {
		j.records -= len(j.steps[drop].del) + len(j.steps[drop].add)
		drop++
	}
	if drop > 0 {
		j.steps = append(j.steps[:0:0], j.steps[drop:]...)
	}
}

// since returns the steps that lead from serial from to serial to, or
// false when the journal does not hold all of them.
func (j *journal) since(from, to uint32) ([]*journalStep, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := 0
	for i < len(j.steps) && j.steps[i].from != from {
		i++
	}
	var out []*journalStep
	for at := from; at != to; i++ {
		if i >= len(j.steps) || j.steps[i].from != at {
			return nil, false
		}
		out = append(out, j.steps[i])
		at = j.steps[i].to
	}
	return out, true
}

// depth is the number of steps held.
func (j *journal) depth() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.steps)
}

// record journals the change from cur to next in every zone whose serial
// it moved. Changes before the store has synced are not journaled: no
// secondary can hold a zone at a serial from then, as transfers wait for
// the sync, so the initial load costs no journal work.
func (x *Transfers) record(cur, next *state, old, e *entry, ptr map[netip.Addr]*ptrEntry) {
	if !x.h.store.Synced() {
		return
	}
	moved := false
	for zi := range x.h.zones {
		from, to := cur.serialOf(zi), next.serialOf(zi)
		if from == to {
			continue
		}
		moved = true
		var before, after []dns.RR
		if z := &x.h.zones[zi]; z.reverse {
			for a, pe := range ptr {
				if !x.h.ptrInZone(zi, a) {
					continue
				}
				name := reverseName(a) + "."
				if was := cur.ptr.get(a); was != nil {
					before = append(before, x.h.ptrRecords(name, was)...)
				}
				if pe != nil {
					after = append(after, x.h.ptrRecords(name, pe)...)
				}
			}
		} else {
			before = x.h.serviceRecords(nil, z, old)
			after = x.h.serviceRecords(nil, z, e)
		}
		del, add := diffRecords(before, after)
		x.journals[zi].append(&journalStep{from: from, to: to, del: del, add: add})
	}
	if moved {
		x.notifier.poke()
	}
}

// diffRecords returns the records of before not in after, and those of
// after not in before.
func diffRecords(before, after []dns.RR) (del, add []dns.RR) {
	var buf []byte
	keys := func(rrs []dns.RR) ([]string, map[string]bool) {
		ks := make([]string, len(rrs))
		set := make(map[string]bool, len(rrs))
		for i, rr := range rrs {
			ks[i] = rrKey(rr, &buf)
			set[ks[i]] = true
		}
		return ks, set
	}
	bk, was := keys(before)
	ak, is := keys(after)
	for i, k := range bk {
		if !is[k] {
			del = append(del, before[i])
		}
	}
	for i, k := range ak {
		if !was[k] {
			add = append(add, after[i])
		}
	}
	return del, add
}

// condense merges consecutive steps into one: a record both added and
// deleted along the way is in neither list, so the result takes the zone
// from the first step's serial to the last's in one difference (RFC 1995
// §5). The first operation on a record tells whether it was there at the
// start, the last whether it is there at the end.
func condense(steps []*journalStep) (del, add []dns.RR) {
	type fate struct {
		rr      dns.RR
		was, is bool
	}
	fates := map[string]*fate{}
	var order []string
	var buf []byte
	touch := func(rr dns.RR, added bool) {
		k := rrKey(rr, &buf)
		f := fates[k]
		if f == nil {
			f = &fate{rr: rr, was: !added}
			fates[k] = f
			order = append(order, k)
		}
		f.is = added
	}
	for _, st := range steps {
		for _, rr := range st.del {
			touch(rr, false)
		}
		for _, rr := range st.add {
			touch(rr, true)
		}
	}
	for _, k := range order {
		switch f := fates[k]; {
		case f.was && !f.is:
			del = append(del, f.rr)
		case !f.was && f.is:
			add = append(add, f.rr)
		}
	}
	return del, add
}

// rrKey is rr's identity for set operations: its uncompressed wire form
// (owner, type, class, TTL and data), cheaper to make than its text. buf is
// scratch space, grown as needed.
func rrKey(rr dns.RR, buf *[]byte) string {
	if n := dns.Len(rr); cap(*buf) < n {
		*buf = make([]byte, max(n, 512))
	}
	b := (*buf)[:cap(*buf)]
	n, err := dns.PackRR(rr, b, 0, nil, false)
	if err != nil {
		return rr.String() // not reached: the records were packed for answers
	}
	return string(b[:n])
}
