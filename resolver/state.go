package resolver

import (
	"iter"
	"maps"
	"net/netip"
)

// state is one immutable version of everything the store knows. Writers
// build a new state next to the current one and publish it with one atomic
// swap (Store.cur); nothing in a published state changes afterwards, so a
// query that loaded a state reads it without any lock.
type state struct {
	services   strMap[*entry] // key: "<svc>/<ns>"
	nservices  int
	namespaces strMap[nsCount] // only namespaces with a non-zero count
	endpoints  int             // per-endpoint names in the ready views
	ptr        ptrIndex        // empty unless the store indexes PTR records
}

// nsCount counts, per namespace, the services with a non-empty view in each
// tree, so "<ns>.svc.<zone>" is NODATA exactly when a name exists below it
// and NXDOMAIN otherwise.
type nsCount struct{ ready, all int }

func (c *nsCount) add(e *entry, d int) {
	if e.ready != nil {
		c.ready += d
	}
	if e.all != nil {
		c.all += d
	}
}

// lookup returns the entry of service name in namespace, both lower case.
func (st *state) lookup(name, namespace []byte) *entry {
	var buf [128]byte
	k := append(append(append(buf[:0], name...), '/'), namespace...)
	e, _ := st.services.getBytes(k)
	return e
}

// namespaceExists reports whether any name exists under <ns>.<tree>.
func (st *state) namespaceExists(namespace []byte, peers bool) bool {
	c, ok := st.namespaces.getBytes(namespace)
	if !ok {
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
func (st *state) reverseExists(p netip.Prefix) bool { return st.ptr.exists(p) }

// A strMap is an immutable map with string keys, split by a hash of the key
// into fan×fan shards (a two-level radix of 64 arrays of 64 Go maps), so
// that a changed copy shares all but one shard with the original: set
// copies two arrays of 64 pointers and one shard of about len/4,096
// entries, not the whole map. The zero value is an empty map.
type strMap[V any] struct {
	top *[fan]*[fan]map[string]V
}

const (
	fanBits = 6
	fan     = 1 << fanBits
)

// keyHash is FNV-1a, folded so that the low 12 bits, which pick the shard,
// depend on every byte.
func keyHash[K string | []byte](k K) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return h ^ h>>16
}

func (m strMap[V]) get(k string) (V, bool) {
	h := keyHash(k)
	if m.top != nil {
		if mid := m.top[h>>fanBits%fan]; mid != nil {
			v, ok := mid[h%fan][k]
			return v, ok
		}
	}
	var zero V
	return zero, false
}

// getBytes is get for a key in a byte slice, without allocating.
func (m strMap[V]) getBytes(k []byte) (V, bool) {
	h := keyHash(k)
	if m.top != nil {
		if mid := m.top[h>>fanBits%fan]; mid != nil {
			v, ok := mid[h%fan][string(k)]
			return v, ok
		}
	}
	var zero V
	return zero, false
}

// set returns a copy of m with k mapped to v, or without k when del.
func (m strMap[V]) set(k string, v V, del bool) strMap[V] {
	h := keyHash(k)
	ti, mi := h>>fanBits%fan, h%fan
	top := new([fan]*[fan]map[string]V)
	if m.top != nil {
		*top = *m.top
	}
	mid := new([fan]map[string]V)
	if top[ti] != nil {
		*mid = *top[ti]
	}
	shard := maps.Clone(mid[mi])
	if del {
		delete(shard, k)
		if len(shard) == 0 {
			shard = nil
		}
	} else {
		if shard == nil {
			shard = make(map[string]V, 1)
		}
		shard[k] = v
	}
	mid[mi] = shard
	top[ti] = mid
	return strMap[V]{top: top}
}

// all yields every entry of m, in no particular order.
func (m strMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if m.top == nil {
			return
		}
		for _, mid := range m.top {
			if mid == nil {
				continue
			}
			for _, shard := range mid {
				for k, v := range shard {
					if !yield(k, v) {
						return
					}
				}
			}
		}
	}
}
