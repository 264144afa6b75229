package resolver

import (
	"math/bits"
	"net/netip"
	"slices"
)

// ptrIndex is the immutable index of the addresses that have PTR records: a
// trie on the bytes of the address, one for IPv4 (4 levels at most) and one
// for IPv6 (16 at most). An address sits as high in its trie as the
// addresses beside it allow: a subtree that holds one address is that
// address's entry. The trie keeps addresses in order, so it also tells the
// empty non-terminals of reverse zones (exists) without a sorted copy.
//
// A change copies the nodes on the paths it touches and shares the rest
// with the previous index (ptrEdit), so it costs the size of the change
// times the depth, not the number of addresses. Addresses with a zone are
// never indexed: no reverse name can carry a zone.
type ptrIndex struct {
	v4, v6 *ptrNode
}

// ptrNode is one level of the trie: the children for the values of the
// address byte at its depth.
type ptrNode struct {
	has  [4]uint64 // bit b set: a child for byte value b
	kids []ptrKid  // one per bit set in has, in byte order
	// gen is the change (ptrEdit) that made this node. That change alone
	// may still modify it, before the state holding it is published.
	gen uint64
}

// ptrKid is a subtree, or the one address below this point.
type ptrKid struct {
	n *ptrNode
	e *ptrEntry
}

// ptrKey returns the bytes a trie is keyed by, the root for a's family and
// the index of a's first byte in the key.
func (x *ptrIndex) root(a netip.Addr) (key [16]byte, root **ptrNode, d int) {
	key = a.As16()
	if a.Is4() {
		return key, &x.v4, 12
	}
	return key, &x.v6, 0
}

// child returns n's child for byte b, its index in kids (where it would be
// inserted when absent), and whether it exists.
func (n *ptrNode) child(b byte) (ptrKid, int, bool) {
	w, bit := b>>6, uint64(1)<<(b&63)
	i := bits.OnesCount64(n.has[w] & (bit - 1))
	for j := range w {
		i += bits.OnesCount64(n.has[j])
	}
	if n.has[w]&bit == 0 {
		return ptrKid{}, i, false
	}
	return n.kids[i], i, true
}

// get returns a's entry, or nil.
func (x *ptrIndex) get(a netip.Addr) *ptrEntry {
	if a.Zone() != "" {
		return nil
	}
	key, root, d := x.root(a)
	for n := *root; n != nil; d++ {
		k, _, ok := n.child(key[d])
		if !ok {
			return nil
		}
		if k.e != nil {
			if k.e.addr == a {
				return k.e
			}
			return nil
		}
		n = k.n
	}
	return nil
}

// exists reports whether some indexed address lies in p, which ends on a
// label of its reverse zone: a byte for IPv4, a nibble for IPv6.
func (x *ptrIndex) exists(p netip.Prefix) bool {
	key, root, d := x.root(p.Addr())
	n := *root
	end := d + p.Bits()/8
	for ; d < end; d++ {
		if n == nil {
			return false
		}
		k, _, ok := n.child(key[d])
		if !ok {
			return false
		}
		if k.e != nil {
			return p.Contains(k.e.addr) // the only address below
		}
		n = k.n
	}
	if n == nil {
		return false
	}
	switch p.Bits() % 8 {
	case 0:
		return true // nodes are never empty
	case 4:
		// The 16 children whose high nibble is p's fill 16 bits of one word.
		hi := key[d] >> 4
		return n.has[hi/4]>>(hi%4*16)&0xffff != 0
	}
	// Not a reverse-zone boundary: look at every child.
	for _, k := range n.kids {
		if k.e != nil && p.Contains(k.e.addr) || k.n != nil && x.anyIn(k.n, p) {
			return true
		}
	}
	return false
}

func (x *ptrIndex) anyIn(n *ptrNode, p netip.Prefix) bool {
	for _, k := range n.kids {
		if k.e != nil && p.Contains(k.e.addr) || k.n != nil && x.anyIn(k.n, p) {
			return true
		}
	}
	return false
}

// all yields every indexed entry.
func (x *ptrIndex) all(yield func(*ptrEntry) bool) {
	var walk func(n *ptrNode) bool
	walk = func(n *ptrNode) bool {
		if n == nil {
			return true
		}
		for _, k := range n.kids {
			if k.e != nil && !yield(k.e) || k.n != nil && !walk(k.n) {
				return false
			}
		}
		return true
	}
	_ = walk(x.v4) && walk(x.v6)
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
	return &ptrNode{has: n.has, kids: slices.Clone(n.kids), gen: ed.gen}
}

// put indexes e, replacing the entry of the same address.
func (ed *ptrEdit) put(e *ptrEntry) {
	if e.addr.Zone() != "" {
		return
	}
	key, root, d := ed.x.root(e.addr)
	*root = ed.putAt(*root, key, d, e)
}

func (ed *ptrEdit) putAt(n *ptrNode, key [16]byte, d int, e *ptrEntry) *ptrNode {
	if n == nil {
		n = &ptrNode{gen: ed.gen}
	} else {
		n = ed.own(n)
	}
	b := key[d]
	k, i, ok := n.child(b)
	switch {
	case !ok:
		n.has[b>>6] |= 1 << (b & 63)
		n.kids = slices.Insert(n.kids, i, ptrKid{e: e})
	case k.n != nil:
		n.kids[i].n = ed.putAt(k.n, key, d+1, e)
	case k.e.addr == e.addr:
		n.kids[i].e = e
	default:
		// Two addresses share the bytes up to d: move the one here a
		// level down, next to the new one.
		sub := ed.putAt(nil, k.e.addr.As16(), d+1, k.e)
		n.kids[i] = ptrKid{n: ed.putAt(sub, key, d+1, e)}
	}
	return n
}

// del removes the entry of a, if any.
func (ed *ptrEdit) del(a netip.Addr) {
	if a.Zone() != "" {
		return
	}
	key, root, d := ed.x.root(a)
	if *root != nil {
		*root = ed.delAt(*root, key, d, a)
	}
}

// delAt returns n without a, nil when nothing is left. A subtree left with
// one address becomes that address's entry.
func (ed *ptrEdit) delAt(n *ptrNode, key [16]byte, d int, a netip.Addr) *ptrNode {
	b := key[d]
	k, i, ok := n.child(b)
	if !ok || k.e != nil && k.e.addr != a {
		return n
	}
	var c *ptrNode
	if k.n != nil {
		c = ed.delAt(k.n, key, d+1, a)
		if c != nil && (len(c.kids) > 1 || c.kids[0].n != nil) {
			if c == k.n {
				return n // unchanged, or changed in place below n, which this edit made
			}
			n = ed.own(n)
			n.kids[i].n = c
			return n
		}
	}
	n = ed.own(n)
	if c != nil {
		n.kids[i] = c.kids[0] // one address left below: it moves up
		return n
	}
	n.has[b>>6] &^= 1 << (b & 63)
	n.kids = slices.Delete(n.kids, i, i+1)
	if len(n.kids) == 0 {
		return nil
	}
	return n
}
