package resolver

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// zone is one zone peerdns is authoritative for.
type zone struct {
	name string // lower case, fully qualified: "cluster.local."
	wire []byte // name in wire form
	// reverse is set for zones under in-addr.arpa. or ip6.arpa.: they serve
	// PTR records and nothing else. prefix is the address range the zone
	// itself names (10.in-addr.arpa. → 10.0.0.0/8), v6 which tree it is in.
	reverse bool
	v6      bool
	prefix  netip.Prefix
	// labelsToArpa is how many of the zone's labels sit left of
	// "in-addr.arpa"/"ip6.arpa".
	labelsToArpa int
	// static holds the zone's records that never change, in wire form.
	static staticRecords
}

// maxZoneWire is the longest zone, in wire octets, under which every name
// peerdns publishes fits in maxName octets. The longest such name is a
// per-endpoint name in the peer view, every label as long as Kubernetes
// allows (a DNS label, 63 octets, for hostname, service and namespace):
// 3×(1+63) + (1+len("peers")) = 198 octets before the zone. Port names are
// at most 15 characters (IANA service names), so _<port>._<proto> names are
// shorter. The bound applies to forward zones only: the names in a reverse
// zone are addresses, at most 73 octets whatever the zone, and PTR targets
// and the NS target of reverse zones are names in the first forward zone.
const maxZoneWire = maxName - 3*(1+maxLabel) - (1 + len(treePeers))

// maxLabel is the longest label (RFC 1035 §2.3.4).
const maxLabel = 63

func newZone(name string) (zone, error) {
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return zone{}, fmt.Errorf("zone %q: not a domain name", name)
	}
	name = dns.CanonicalName(name)
	z := zone{name: name, wire: appendWire(nil, name)}
	for _, tree := range []struct {
		suffix string
		v6     bool
	}{{"in-addr.arpa.", false}, {"ip6.arpa.", true}} {
		if name != tree.suffix && !strings.HasSuffix(name, "."+tree.suffix) {
			continue
		}
		z.reverse, z.v6 = true, tree.v6
		var w wireName
		if _, ok := parseName(z.wire, 0, &w); !ok {
			return zone{}, fmt.Errorf("zone %q: not a domain name", name)
		}
		z.labelsToArpa = w.nl - 2
		p, ok := parseReverse(&w, z.labelsToArpa, z.v6)
		if !ok {
			return zone{}, fmt.Errorf("reverse zone %q: labels are not octets (in-addr.arpa) or nibbles (ip6.arpa)", name)
		}
		z.prefix = p
	}
	if !z.reverse && len(z.wire) > maxZoneWire {
		return zone{}, fmt.Errorf("zone %q: longer than %d characters, which leaves no room for the longest names served below it (<63-octet hostname>.<63-octet service>.<63-octet namespace>.peers.<zone> must fit in %d octets)", name, maxZoneWire-1, maxName)
	}
	return z, nil
}

// match reports whether w is at or below z, and if so the number of labels
// of w left of the zone.
func (z *zone) match(w *wireName) (int, bool) {
	start := w.n - len(z.wire)
	if start < 0 || !bytes.Equal(w.b[start:w.n], z.wire) {
		return 0, false
	}
	if start == 0 {
		return 0, true
	}
	for i := range w.nl {
		if int(w.labels[i]) == start {
			return i, true
		}
	}
	return 0, false
}
