package resolver

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPtrIndexMatchesMap applies random batches of puts and deletes to the
// PTR index and checks every address and every reverse-zone prefix against a
// plain map, and that indexes published before a batch are unchanged by it.
func TestPtrIndexMatchesMap(t *testing.T) {
	for _, fam := range []struct {
		name   string
		bits   int
		step   int // prefix lengths that end on a reverse label
		random func(r *rand.Rand) netip.Addr
	}{
		{name: "IPv4", bits: 32, step: 8, random: func(r *rand.Rand) netip.Addr {
			// Few values per byte, so addresses share long prefixes.
			return netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(6))})
		}},
		{name: "IPv6", bits: 128, step: 4, random: func(r *rand.Rand) netip.Addr {
			var b [16]byte
			b[0], b[1] = 0xfd, 0x00
			b[7] = byte(r.IntN(2))
			b[14], b[15] = byte(r.IntN(3)*0x11), byte(r.IntN(20))
			return netip.AddrFrom16(b)
		}},
	} {
		t.Run(fam.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var universe []netip.Addr
			seen := map[netip.Addr]bool{}
			for range 2000 {
				if a := fam.random(r); !seen[a] {
					seen[a] = true
					universe = append(universe, a)
				}
			}
			type version struct {
				x    ptrIndex
				want map[netip.Addr]*ptrEntry
			}
			var versions []version
			var x ptrIndex
			want := map[netip.Addr]*ptrEntry{}
			for gen := uint64(1); gen <= 300; gen++ {
				ed := &ptrEdit{x: x, gen: gen}
				next := maps.Clone(want)
				for range r.IntN(40) + 1 {
					a := universe[r.IntN(len(universe))]
					if r.IntN(3) == 0 {
						ed.del(a)
						delete(next, a)
					} else {
						e := &ptrEntry{addr: a}
						ed.put(e)
						next[a] = e
					}
				}
				x, want = ed.x, next
				versions = append(versions, version{x, want})
			}
			for i, v := range versions {
				if i%5 != 4 {
					continue // one version in five: the brute-force check is slow
				}
				if err := checkIndex(&v.x, v.want, universe, fam.bits, fam.step); err != nil {
					t.Fatalf("version %d of %d: %v", i, len(versions), err)
				}
			}
		})
	}
}

// checkIndex compares x with want: every address of universe, every prefix
// of them on a reverse label, and the list of all entries.
func checkIndex(x *ptrIndex, want map[netip.Addr]*ptrEntry, universe []netip.Addr, bits, step int) error {
	for _, a := range universe {
		if got := x.get(a); got != want[a] {
			return fmt.Errorf("get(%v) = %v, want %v", a, got, want[a])
		}
		for l := step; l < bits; l += step {
			p := netip.PrefixFrom(a, l).Masked()
			exists := false
			for b := range want {
				exists = exists || p.Contains(b)
			}
			if got := x.exists(p); got != exists {
				return fmt.Errorf("exists(%v) = %v, want %v", p, got, exists)
			}
		}
	}
	var got, all []netip.Addr
	x.all(func(e *ptrEntry) bool {
		got = append(got, e.addr)
		return true
	})
	for a := range want {
		all = append(all, a)
	}
	slices.SortFunc(all, netip.Addr.Compare)
	if diff := cmp.Diff(all, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		return fmt.Errorf("all (-want +got):\n%s", diff)
	}
	return nil
}

// TestStrMapMatchesMap checks that a strMap and its copies behave as maps,
// and that set leaves the map it was called on unchanged.
func TestStrMapMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// Two keys with one hash, so that a shard holds entries of equal hash.
	var same []string
	byHash := map[uint32]string{}
	for i := 0; same == nil; i++ {
		k := fmt.Sprintf("k-%d/ns", i)
		if o, ok := byHash[keyHash(k)]; ok {
			same = []string{o, k}
		}
		byHash[keyHash(k)] = k
	}
	var m strMap[int]
	want := map[string]int{}
	type version struct {
		m    strMap[int]
		want map[string]int
	}
	var versions []version
	for i := range 5000 {
		k := fmt.Sprintf("svc-%d/ns-%d", r.IntN(3000), r.IntN(3))
		if r.IntN(10) == 0 {
			k = same[r.IntN(2)]
		}
		if r.IntN(3) == 0 {
			m = m.set(k, 0, true)
			delete(want, k)
		} else {
			m = m.set(k, i, false)
			want[k] = i
		}
		if i%500 == 0 {
			versions = append(versions, version{m, maps.Clone(want)})
		}
	}
	versions = append(versions, version{m, want})
	for i, v := range versions {
		got := map[string]int{}
		for k, x := range v.m.all() {
			got[k] = x
			if y, ok := v.m.getBytes([]byte(k)); !ok || y != x {
				t.Fatalf("version %d: getBytes(%q) = %v, %v, want %v", i, k, y, ok, x)
			}
		}
		if diff := cmp.Diff(v.want, got); diff != "" {
			t.Fatalf("version %d (-want +got):\n%s", i, diff)
		}
		if _, ok := v.m.get("absent/ns"); ok {
			t.Fatalf("version %d: absent key found", i)
		}
	}
}
