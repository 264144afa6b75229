package resolver

import (
	"math/bits"
	"net/netip"
	"slices"
)

// ptrIndex is the immutable index of the addresses that have PTR records: a
// trie on the nibbles of the address (one for IPv4, one for IPv6), which are
// the labels of ip6.arpa names and halves of those of in-addr.arpa names. A
// node exists only where the addresses below it differ: it branches on one
// nibble, all addresses below it share the nibbles before that one, and it
// has at least two children. An address alone below a point is a leaf there.
// The trie keeps addresses in order, so it also tells the empty
// non-terminals of reverse zones (exists) without a sorted copy.
//
// A change copies the nodes on the paths it touches and shares the rest
// with the previous index (ptrEdit), so it costs the size of the change
// times the depth (at most 8 nodes for IPv4, 32 for IPv6, of at most 16
// children each), not the number of addresses. Addresses with a zone are
// never indexed: no reverse name can carry a zone.
type ptrIndex struct {
	v4, v6 ptrKid
}

// ptrKid is a subtree, a single address, or nothing (both nil).
type ptrKid struct {
	n *ptrNode
	e *ptrEntry
}

// ptrNode branches on nibble d of the address (counted in the 32 nibbles of
// its 16-byte form, so IPv4 addresses use 24–31).
type ptrNode struct {
	d    uint8
	has  uint16   // bit v set: a child for nibble value v
	kids []ptrKid // one per bit set in has, in nibble order
	// gen is the change (ptrEdit) that made this node. That change alone
	// may still modify it, before the state holding it is published.
	gen uint64
}

const ptrNibbles = 32

// keyNibble returns nibble i of key.
func keyNibble(key *[16]byte, i int) uint8 {
	b := key[i/2]
	if i%2 == 0 {
		return b >> 4
	}
	return b & 0xf
}

// root returns a's key, the root of a's family and the first nibble of
// that family's keys.
func (x *ptrIndex) root(a netip.Addr) (key [16]byte, root *ptrKid, start int) {
	key = a.As16()
	if a.Is4() {
		return key, &x.v4, 24
	}
	return key, &x.v6, 0
}

// child returns the index in kids of n's child for nibble v (where it
// would be inserted when absent), and whether it exists.
func (n *ptrNode) child(v uint8) (int, bool) {
	bit := uint16(1) << v
	return bits.OnesCount16(n.has & (bit - 1)), n.has&bit != 0
}

// down follows key from k until a leaf or a node branching at or after
// nibble stop, or nothing when key's path ends first.
func down(k ptrKid, key *[16]byte, stop int) ptrKid {
	for k.n != nil && int(k.n.d) < stop {
		i, ok := k.n.child(keyNibble(key, int(k.n.d)))
		if !ok {
			return ptrKid{}
		}
		k = k.n.kids[i]
	}
	return k
}

// anyLeaf returns the first address below k.
func anyLeaf(k ptrKid) *ptrEntry {
	for k.n != nil {
		k = k.n.kids[0]
	}
	return k.e
}

// get returns a's entry, or nil.
func (x *ptrIndex) get(a netip.Addr) *ptrEntry {
	if a.Zone() != "" {
		return nil
	}
	key, root, _ := x.root(a)
	if k := down(*root, &key, ptrNibbles); k.e != nil && k.e.addr == a {
		return k.e
	}
	return nil
}

// exists reports whether some indexed address lies in p.
func (x *ptrIndex) exists(p netip.Prefix) bool {
	key, root, start := x.root(p.Addr())
	stop := start + p.Bits()/4
	k := down(*root, &key, stop)
	if k.n == nil && k.e == nil {
		return false
	}
	if p.Bits()%4 == 0 {
		// Every address below k shares the nibbles up to stop: one tells.
		return p.Contains(anyLeaf(k).addr)
	}
	// Not on a nibble (never a reverse-zone label): look at every address.
	found := false
	walk(k, func(e *ptrEntry) bool {
		found = p.Contains(e.addr)
		return !found
	})
	return found
}

// walk calls yield for every address below k, in order, until it returns
// false; it returns false then.
func walk(k ptrKid, yield func(*ptrEntry) bool) bool {
	if k.e != nil {
		return yield(k.e)
	}
	if k.n != nil {
		for _, c := range k.n.kids {
			if !walk(c, yield) {
				return false
			}
		}
	}
	return true
}

// all yields every indexed entry, IPv4 first, each family in address order.
func (x *ptrIndex) all(yield func(*ptrEntry) bool) {
	_ = walk(x.v4, yield) && walk(x.v6, yield)
}

// ptrEdit applies a batch of changes to a copy of an index. Nodes it makes
// carry its gen, and it changes them in place for the rest of the batch, so
// a node is copied at most once per batch. gen must be new for each edit,
// and the result must be published only after the last change.
type ptrEdit struct {
	x   ptrIndex
	gen uint64
}

// own returns n if this edit made it, else a copy of n this edit may change.
func (ed *ptrEdit) own(n *ptrNode) *ptrNode {
	if n.gen == ed.gen {
		return n
	}
	return &ptrNode{d: n.d, has: n.has, kids: slices.Clone(n.kids), gen: ed.gen}
}

// put indexes e, replacing the entry of the same address.
func (ed *ptrEdit) put(e *ptrEntry) {
	if e.addr.Zone() != "" {
		return
	}
	key, root, start := ed.x.root(e.addr)
	if root.n == nil && root.e == nil {
		*root = ptrKid{e: e}
		return
	}
	// The address closest to e's: follow e's nibbles, and any child where
	// they lead nowhere. e's place is at the first nibble where it differs
	// from that address (crit-bit trees do the same with bits).
	k := *root
	for k.n != nil {
		i, _ := k.n.child(keyNibble(&key, int(k.n.d)))
		k = k.n.kids[min(i, len(k.n.kids)-1)]
	}
	near := k.e.addr.As16()
	crit := start
	for crit < ptrNibbles && keyNibble(&key, crit) == keyNibble(&near, crit) {
		crit++
	}
	*root = ed.putAt(*root, &key, crit, e)
}

// putAt puts e below k, whose addresses all share e's nibbles before crit
// and none of which shares nibble crit too (crit is ptrNibbles when e's
// address is indexed).
func (ed *ptrEdit) putAt(k ptrKid, key *[16]byte, crit int, e *ptrEntry) ptrKid {
	switch {
	case k.n != nil && int(k.n.d) < crit:
		n := ed.own(k.n)
		i, _ := n.child(keyNibble(key, int(n.d))) // present: e shares nibble d
		n.kids[i] = ed.putAt(n.kids[i], key, crit, e)
		return ptrKid{n: n}
	case crit == ptrNibbles:
		return ptrKid{e: e} // k is the leaf of e's address
	case k.n != nil && int(k.n.d) == crit:
		n := ed.own(k.n)
		ed.insert(n, keyNibble(key, crit), ptrKid{e: e})
		return ptrKid{n: n}
	}
	// k's addresses and e part at nibble crit: a new node branches there.
	other := anyLeaf(k).addr.As16()
	n := &ptrNode{d: uint8(crit), gen: ed.gen, kids: make([]ptrKid, 0, 2)}
	ed.insert(n, keyNibble(&other, crit), k)
	ed.insert(n, keyNibble(key, crit), ptrKid{e: e})
	return ptrKid{n: n}
}

func (ed *ptrEdit) insert(n *ptrNode, v uint8, k ptrKid) {
	i, _ := n.child(v)
	n.has |= 1 << v
	n.kids = slices.Insert(n.kids, i, k)
}

// del removes the entry of a, if any.
func (ed *ptrEdit) del(a netip.Addr) {
	if a.Zone() != "" {
		return
	}
	key, root, _ := ed.x.root(a)
	if k, changed := ed.delAt(*root, &key, a); changed {
		*root = k
	}
}

// delAt returns k without a, and whether a was there. A node left with one
// child is replaced by it.
func (ed *ptrEdit) delAt(k ptrKid, key *[16]byte, a netip.Addr) (ptrKid, bool) {
	if k.n == nil {
		if k.e != nil && k.e.addr == a {
			return ptrKid{}, true
		}
		return k, false
	}
	v := keyNibble(key, int(k.n.d))
	i, ok := k.n.child(v)
	if !ok {
		return k, false
	}
	c, changed := ed.delAt(k.n.kids[i], key, a)
	if !changed {
		return k, false
	}
	if c.n != nil || c.e != nil {
		n := ed.own(k.n)
		n.kids[i] = c
		return ptrKid{n: n}, true
	}
	if len(k.n.kids) == 2 {
		return k.n.kids[1-i], true
	}
	n := ed.own(k.n)
	n.has &^= 1 << v
	n.kids = slices.Delete(n.kids, i, i+1)
	return ptrKid{n: n}, true
}
