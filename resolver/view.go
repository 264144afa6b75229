package resolver

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The trees a service's names live in, below the zone.
const (
	treeService = "svc"   // ready endpoints, as the specification says
	treePeers   = "peers" // every endpoint with an address, ready or not
)

// A view is the immutable set of names one service publishes: its ready
// endpoints, served under "svc" (what the Kubernetes DNS specification
// requires), or all its endpoints with an address, ready or not, served
// under "peers". When every endpoint is ready the two trees share one view.
// A change to the service builds new views, so answers cached on the nodes
// of an old view die with it.
type view struct {
	name, namespace string
	hosts           []host // ordered by ordinal (web-0, web-1, … web-10)
	// byLabel indexes hosts by label once there are enough of them that a
	// linear scan would cost more than a map lookup.
	byLabel map[string]int
	// ports are the (name, protocol) pairs of the named ports some host
	// has, ordered by name then protocol; Port is 0. Each names a port
	// node; the numbers are per host.
	ports  []Port
	protos uint8 // bit set of the protocols of ports (protoBit)

	service   node   // <svc>.<ns>.<tree>.<zone>, tree being svc or peers
	hostNodes []node // <host>.<svc>.<ns>.<tree>.<zone>, parallel to hosts
	portNodes []node // _<port>._<proto>.<svc>.<ns>.<tree>.<zone>, parallel to ports
}

// host is one per-endpoint name, its addresses, IPv4 first, and its named
// ports: the union of the ports of the endpoints behind the name, ordered by
// name, protocol and number. Hosts with equal ports share one array.
type host struct {
	label string
	addrs []netip.Addr
	ports []Port
}

// nodeKind says what a node names, and so which records it has.
type nodeKind uint8

const (
	kindService nodeKind = iota
	kindHost
	kindPort
	kindPTR
	kindNS // ns.dns.<zone>, the NS target: the server's own addresses
)

// node is a name with records. Its answers are built on first use, per zone
// and query type, and kept in wire form until the data behind it changes.
type node struct {
	kind nodeKind
	v    *view
	i    int       // index into v.hosts or v.ports
	ptr  *ptrEntry // kindPTR only
	// cache holds one slot per (zone, tree, answer kind); allocated on first
	// use.
	cache atomic.Pointer[[]atomic.Pointer[answer]]
	// building is held while an answer of the node is built, so it is
	// built once however many queries miss the cache at the same time.
	building sync.Mutex
}

const linearScanMax = 16

// newView builds the view of svc's endpoints for which keep is true. It
// returns nil when no endpoint qualifies: the names do not exist. Hostnames
// and port names that cannot be encoded as one label (see validLabel; port
// names at most 15 characters) are left out, each reported to drop.
func newView(svc *Service, keep func(*Endpoint) bool, drop func(what, value string)) *view {
	type building struct {
		host
		eps [][]Port // the distinct Ports arrays of the endpoints behind it
	}
	byLabel := map[string]*building{}
	var hosts []*building
	add := func(label string, a netip.Addr, ports []Port) {
		h := byLabel[label]
		if h == nil {
			h = &building{host: host{label: label}}
			byLabel[label] = h
			hosts = append(hosts, h)
		}
		if !slices.Contains(h.addrs, a) {
			h.addrs = append(h.addrs, a)
		}
		if !slices.ContainsFunc(h.eps, func(p []Port) bool { return samePorts(p, ports) }) {
			h.eps = append(h.eps, ports)
		}
	}
	for i := range svc.Endpoints {
		ep := &svc.Endpoints[i]
		if !keep(ep) {
			continue
		}
		for _, a := range ep.Addrs {
			a = a.Unmap()
			if !a.IsValid() {
				continue
			}
			label := strings.ToLower(ep.Hostname)
			if label == "" {
				label = dashedLabel(a)
			} else if !validLabel(label, maxLabel) || label[0] == '_' {
				// A leading '_' would be read as a protocol label.
				drop("hostname", ep.Hostname)
				continue
			}
			add(label, a, ep.Ports)
		}
	}
	if len(hosts) == 0 {
		return nil
	}
	v := &view{
		name:      strings.ToLower(svc.Name),
		namespace: strings.ToLower(svc.Namespace),
		hosts:     make([]host, len(hosts)),
	}
	// Hosts with equal port sets share one normalized array, so a service
	// of 1,000 endpoints in one slice keeps one copy of its ports.
	interned := map[string][]Port{}
	var key strings.Builder
	for i, h := range hosts {
		slices.SortFunc(h.addrs, compareAddr)
		var ports []Port
		for _, p := range slices.Concat(append([][]Port{svc.Ports}, h.eps...)...) {
			if p.Name == "" || protoBit(p.Protocol) == 0 || p.Port == 0 {
				continue // the specification gives unnamed ports no SRV name
			}
			p.Name, p.Protocol = strings.ToLower(p.Name), strings.ToLower(p.Protocol)
			if !validLabel(p.Name, maxPortName) {
				drop("port name", p.Name)
				continue
			}
			ports = append(ports, p)
		}
		slices.SortFunc(ports, comparePort)
		ports = slices.Compact(ports)
		key.Reset()
		for _, p := range ports {
			key.WriteString(p.Name)
			key.WriteByte('/')
			key.WriteString(p.Protocol)
			key.WriteByte('/')
			key.WriteString(strconv.Itoa(int(p.Port)))
			key.WriteByte(',')
		}
		if shared, ok := interned[key.String()]; ok {
			ports = shared
		} else {
			ports = slices.Clip(ports)
			interned[key.String()] = ports
		}
		h.ports = ports
		v.hosts[i] = h.host
		for _, p := range ports {
			p.Port = 0
			if !slices.Contains(v.ports, p) {
				v.ports = append(v.ports, p)
				v.protos |= protoBit(p.Protocol)
			}
		}
	}
	slices.SortFunc(v.hosts, func(a, b host) int { return compareLabel(a.label, b.label) })
	if len(v.hosts) > linearScanMax {
		v.byLabel = make(map[string]int, len(v.hosts))
		for i, h := range v.hosts {
			v.byLabel[h.label] = i
		}
	}
	slices.SortFunc(v.ports, comparePort)
	v.service = node{kind: kindService, v: v}
	v.hostNodes = make([]node, len(v.hosts))
	for i := range v.hostNodes {
		v.hostNodes[i] = node{kind: kindHost, v: v, i: i}
	}
	v.portNodes = make([]node, len(v.ports))
	for i := range v.portNodes {
		v.portNodes[i] = node{kind: kindPort, v: v, i: i}
	}
	return v
}

// samePorts reports whether a and b are the same array (the usual case:
// endpoints of one slice), or both empty.
func samePorts(a, b []Port) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

func comparePort(a, b Port) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// host returns the node of the per-endpoint name label, or nil.
func (v *view) host(label []byte) *node {
	if v.byLabel != nil {
		if i, ok := v.byLabel[string(label)]; ok {
			return &v.hostNodes[i]
		}
		return nil
	}
	for i := range v.hosts {
		if v.hosts[i].label == string(label) {
			return &v.hostNodes[i]
		}
	}
	return nil
}

// port returns the node of _<port>._<proto>, or nil. Both labels come
// without their leading underscore.
func (v *view) port(name, proto []byte) *node {
	for i := range v.ports {
		if v.ports[i].Name == string(name) && v.ports[i].Protocol == string(proto) {
			return &v.portNodes[i]
		}
	}
	return nil
}

// hasProto reports whether _<proto>.<svc>… exists: some named port uses it.
func (v *view) hasProto(proto []byte) bool {
	return v != nil && v.protos&protoBit(string(proto)) != 0
}

// endpointCount is the number of per-endpoint names.
func (v *view) endpointCount() int {
	if v == nil {
		return 0
	}
	return len(v.hosts)
}

func protoBit(p string) uint8 {
	switch strings.ToLower(p) {
	case "tcp":
		return 1
	case "udp":
		return 2
	case "sctp":
		return 4
	}
	return 0
}

// compareLabel orders per-endpoint labels the way a StatefulSet orders its
// pods: labels "<base>-<digits>" by base, then by the digits as a number
// (web-2 before web-10), then as text (web-2 before web-02, which has the
// same value); every other label by itself as its base, after the ordinal
// labels of the same base. It is a total order: the comparison of the keys
// (base, has no ordinal, ordinal, label), and a label is part of its key.
func compareLabel(a, b string) int {
	pa, oa, oka := splitOrdinal(a)
	pb, ob, okb := splitOrdinal(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	if oka != okb {
		if oka {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(oa, ob), strings.Compare(a, b))
}

// maxOrdinalDigits bounds the digits read as an ordinal, so the number fits
// an int64; longer runs of digits are not ordinals.
const maxOrdinalDigits = 18

// splitOrdinal splits "web-12" into "web" and 12. ok is false, and base is
// s, when s does not end in '-' and 1 to maxOrdinalDigits digits.
func splitOrdinal(s string) (base string, ordinal int64, ok bool) {
	i := strings.LastIndexByte(s, '-')
	digits := s[i+1:]
	if i < 0 || len(digits) == 0 || len(digits) > maxOrdinalDigits {
		return s, 0, false
	}
	for j := range len(digits) {
		c := digits[j]
		if c < '0' || c > '9' {
			return s, 0, false
		}
		ordinal = ordinal*10 + int64(c-'0')
	}
	return s[:i], ordinal, true
}

// compareAddr orders IPv4 before IPv6, then numerically.
func compareAddr(a, b netip.Addr) int {
	if a.Is4() != b.Is4() {
		if a.Is4() {
			return -1
		}
		return 1
	}
	return a.Compare(b)
}
