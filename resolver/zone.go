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

// CheckZones reports whether names can be the zones of a Handler
// (Config.Zones): what NewHandler would refuse, without building one.
func CheckZones(names []string) error {
	_, err := newZones(names)
	return err
}

// newZones parses names as the zones of one handler. Besides what newZone
// refuses, a zone may be given only once and may not lie inside another:
// the longer zone would answer every name below it, so the shorter one's
// names there (its peers tree, for cluster.local. and peers.cluster.local.)
// would be hidden.
func newZones(names []string) ([]zone, error) {
	zones := make([]zone, 0, len(names))
	for _, name := range names {
		z, err := newZone(name)
		if err != nil {
			return nil, err
		}
		for _, o := range zones {
			switch {
			case o.name == z.name:
				return nil, fmt.Errorf("zone %q: given twice", z.name)
			case strings.HasSuffix(z.name, "."+o.name):
				return nil, fmt.Errorf("zone %q is inside zone %q, whose names it would hide", z.name, o.name)
			case strings.HasSuffix(o.name, "."+z.name):
				return nil, fmt.Errorf("zone %q is inside zone %q, whose names it would hide", o.name, z.name)
			}
		}
		zones = append(zones, z)
	}
	return zones, nil
}

// newZone parses one zone name. It refuses the root zone (peerdns would
// answer every name, REFUSED none, and its NS target ns.dns.. is not a
// name) and names with a label that is not letters, digits, '-' and '_':
// every name peerdns serves is built of such labels.
func newZone(name string) (zone, error) {
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return zone{}, fmt.Errorf("zone %q: not a domain name", name)
	}
	name = dns.CanonicalName(name)
	if name == "." {
		return zone{}, fmt.Errorf("zone %q: the root zone: peerdns would answer for every name on the internet", name)
	}
	for _, l := range dns.SplitDomainName(name) {
		if !validLabel(l, maxLabel) {
			return zone{}, fmt.Errorf("zone %q: label %q is not letters, digits, '-' and '_'", name, l)
		}
	}
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
