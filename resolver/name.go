package resolver

import (
	"net/netip"
	"strconv"
	"strings"
)

// maxName is the longest name on the wire (RFC 1035 §2.3.4).
const maxName = 255

// wireName is a domain name in lower-case wire form (length-prefixed labels
// ending in the root label) with the offset of each label. The handler parses
// the question into one on the stack, so a lookup costs no allocation.
type wireName struct {
	b      [maxName]byte
	n      int // bytes used in b, including the root label
	labels [maxName / 2]uint8
	nl     int // number of labels, the root label not counted
}

// parseName reads an uncompressed name at msg[off:], lower-casing it. It
// returns the offset just past the name and false for anything a question
// should not contain (compression pointers, over-long names).
func parseName(msg []byte, off int, w *wireName) (int, bool) {
	w.n, w.nl = 0, 0
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		if l == 0 {
			if w.n+1 > maxName {
				return 0, false
			}
			w.b[w.n] = 0
			w.n++
			return off + 1, true
		}
		if l > 63 || off+1+l > len(msg) || w.n+1+l+1 > maxName {
			return 0, false
		}
		w.labels[w.nl] = uint8(w.n)
		w.nl++
		w.b[w.n] = byte(l)
		for i := range l {
			c := msg[off+1+i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			w.b[w.n+1+i] = c
		}
		w.n += 1 + l
		off += 1 + l
	}
}

// label returns label i (0 is the leftmost) without its length byte.
func (w *wireName) label(i int) []byte {
	o := int(w.labels[i])
	return w.b[o+1 : o+1+int(w.b[o])]
}

// String is the name in presentation form, ending in a dot.
func (w *wireName) String() string {
	if w.nl == 0 {
		return "."
	}
	var s strings.Builder
	for i := range w.nl {
		s.Write(w.label(i))
		s.WriteByte('.')
	}
	return s.String()
}

// appendWire appends the wire form of a presentation name made of plain
// labels (letters, digits, '-', '_'), which is all peerdns ever publishes.
func appendWire(b []byte, name string) []byte {
	name = strings.TrimSuffix(name, ".")
	for name != "" {
		l, rest, _ := strings.Cut(name, ".")
		b = append(b, byte(len(l)))
		b = append(b, strings.ToLower(l)...)
		name = rest
	}
	return append(b, 0)
}

// dashedLabel is the per-endpoint label of an address when the endpoint has
// no hostname: 10.1.0.5 → 10-1-0-5, 2001:db8::1 → 2001-db8--1. A label may not
// end in '-', so "2001:db8::" becomes "2001-db8--0". A leading '-' ("::1")
// gets a leading "0" for the same reason.
func dashedLabel(a netip.Addr) string {
	s := strings.ReplaceAll(a.Unmap().String(), ".", "-")
	s = strings.ReplaceAll(s, ":", "-")
	if strings.HasSuffix(s, "-") {
		s += "0"
	}
	if strings.HasPrefix(s, "-") {
		s = "0" + s
	}
	return s
}

// reverseName is the PTR owner of a, without the trailing dot:
// "5.0.1.10.in-addr.arpa" or the 32 nibbles of an IPv6 address "….ip6.arpa".
func reverseName(a netip.Addr) string {
	a = a.Unmap()
	var b strings.Builder
	if a.Is4() {
		v := a.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(v[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa")
		return b.String()
	}
	const hex = "0123456789abcdef"
	v := a.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[v[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[v[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}

// parseReverse reads labels [0, n) of w, the part of a reverse name left of
// "in-addr.arpa"/"ip6.arpa", as an address prefix: all 4 (or 32) labels give a
// full address, fewer give the prefix they name. ok is false when a label is
// not an octet (nibble) or there are too many.
func parseReverse(w *wireName, n int, v6 bool) (netip.Prefix, bool) {
	if v6 {
		if n > 32 {
			return netip.Prefix{}, false
		}
		var a [16]byte
		for i := range n {
			l := w.label(n - 1 - i) // most significant nibble first
			if len(l) != 1 {
				return netip.Prefix{}, false
			}
			d, ok := nibble(l[0])
			if !ok {
				return netip.Prefix{}, false
			}
			if i%2 == 0 {
				a[i/2] = d << 4
			} else {
				a[i/2] |= d
			}
		}
		return netip.PrefixFrom(netip.AddrFrom16(a), 4*n), true
	}
	if n > 4 {
		return netip.Prefix{}, false
	}
	var a [4]byte
	for i := range n {
		l := w.label(n - 1 - i)
		if len(l) == 0 || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
			return netip.Prefix{}, false
		}
		v := 0
		for _, c := range l {
			if c < '0' || c > '9' {
				return netip.Prefix{}, false
			}
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return netip.Prefix{}, false
		}
		a[i] = byte(v)
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), 8*n), true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// maxPortName is the longest port name Kubernetes accepts (an IANA service
// name, RFC 6335 §5.1).
const maxPortName = 15

// validLabel reports whether s, already in lower case, can be published as
// one label of a name: 1–max octets of letters, digits, '-' and '_'. Anything
// else (a dot, a space, a 64-octet label) could not be encoded, or would be
// read as more than one label.
func validLabel(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
