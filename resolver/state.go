package resolver

import (
	"iter"
	"net/netip"
	"slices"
)

// state is one immutable version of everything the store knows. Writers
// build a new state next to the current one and publish it with one atomic
// pointer store (Store.cur). The maps, the index and the views of a
// published state never change afterwards (only the answers cached on the
// views' nodes fill in, through atomic pointers), so a query that loaded a
// state reads it without any lock.
type state struct {
	services   strMap[*entry] // key: "<ns>/<svc>", as serviceKey
	nservices  int
	namespaces strMap[nsCount] // only namespaces with a non-zero count
	endpoints  int             // per-endpoint names in the ready views
	ptr        ptrIndex        // empty unless the store indexes PTR records
	serials    []uint32        // SOA serial per zone of the bound handler (serial.go)
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

// lookup returns the entry of service namespace/name, both lower case.
func (st *state) lookup(namespace, name []byte) *entry {
	var buf [128]byte
	k := append(append(append(buf[:0], namespace...), '/'), name...)
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

// A strMap is an immutable map with string keys, split by 16 bits of a hash
// of the key into 65,536 shards, reached through four levels of arrays of
// 16 pointers (a radix tree of fixed depth). A changed copy shares all but
// one path with the original: set copies four arrays of 16 pointers and one
// shard, of about len/65,536 entries, not the whole map. A shard is a slice
// ordered by hash, searched by bisection. The zero value is an empty map.
type strMap[V any] struct {
	root *[fan]*[fan]*[fan]*[fan]*strShard[V]
}

// strShard is a shard's entries, ordered by hash.
type strShard[V any] []strEntry[V]

type strEntry[V any] struct {
	h uint32 // keyHash(k)
	k string
	v V
}

const (
	fanBits = 4
	fan     = 1 << fanBits
)

// keyHash is FNV-1a, folded so that the low 16 bits, which pick the shard,
// depend on every byte.
func keyHash[K string | []byte](k K) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return h ^ h>>16
}

// shard returns the shard of hash h, nil when empty.
func (m strMap[V]) shard(h uint32) strShard[V] {
	l1 := m.root
	if l1 == nil {
		return nil
	}
	l2 := l1[h>>(3*fanBits)%fan]
	if l2 == nil {
		return nil
	}
	l3 := l2[h>>(2*fanBits)%fan]
	if l3 == nil {
		return nil
	}
	l4 := l3[h>>fanBits%fan]
	if l4 == nil || l4[h%fan] == nil {
		return nil
	}
	return *l4[h%fan]
}

// search returns the index of the first entry of shard whose hash is h or
// more.
func search[V any](shard strShard[V], h uint32) int {
	lo, hi := 0, len(shard)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if shard[mid].h < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func (m strMap[V]) get(k string) (V, bool) {
	h := keyHash(k)
	shard := m.shard(h)
	for i := search(shard, h); i < len(shard) && shard[i].h == h; i++ {
		if shard[i].k == k {
			return shard[i].v, true
		}
	}
	var zero V
	return zero, false
}

// getBytes is get for a key in a byte slice, without allocating.
func (m strMap[V]) getBytes(k []byte) (V, bool) {
	h := keyHash(k)
	shard := m.shard(h)
	for i := search(shard, h); i < len(shard) && shard[i].h == h; i++ {
		if shard[i].k == string(k) {
			return shard[i].v, true
		}
	}
	var zero V
	return zero, false
}

// set returns a copy of m with k mapped to v, or without k when del.
func (m strMap[V]) set(k string, v V, del bool) strMap[V] {
	h := keyHash(k)
	old := m.shard(h)
	i := search(old, h)
	for i < len(old) && old[i].h == h && old[i].k != k {
		i++
	}
	found := i < len(old) && old[i].h == h
	var shard strShard[V]
	switch {
	case del && !found:
		return m
	case del:
		shard = slices.Concat(old[:i], old[i+1:])
	case found:
		shard = slices.Clone(old)
		shard[i].v = v
	default:
		shard = slices.Insert(slices.Clip(old), i, strEntry[V]{h: h, k: k, v: v}) // Clip: a new array
	}
	var ps *strShard[V]
	if len(shard) > 0 {
		ps = &shard
	}
	i1, i2, i3, i4 := h>>(3*fanBits)%fan, h>>(2*fanBits)%fan, h>>fanBits%fan, h%fan
	l1 := cloneOrNew(m.root)
	l2 := cloneOrNew(l1[i1])
	l3 := cloneOrNew(l2[i2])
	l4 := cloneOrNew(l3[i3])
	l4[i4] = ps
	l3[i3], l2[i2], l1[i1] = l4, l3, l2
	return strMap[V]{root: l1}
}

// cloneOrNew returns a copy of *p, or a new zero value when p is nil.
func cloneOrNew[T any](p *T) *T {
	c := new(T)
	if p != nil {
		*c = *p
	}
	return c
}

// all yields every entry of m, in no particular order.
func (m strMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if m.root == nil {
			return
		}
		for _, l2 := range m.root {
			if l2 == nil {
				continue
			}
			for _, l3 := range l2 {
				if l3 == nil {
					continue
				}
				for _, l4 := range l3 {
					if l4 == nil {
						continue
					}
					for _, shard := range l4 {
						if shard == nil {
							continue
						}
						for _, e := range *shard {
							if !yield(e.k, e.v) {
								return
							}
						}
					}
				}
			}
		}
	}
}
