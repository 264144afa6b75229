package sliceconv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peerdns/peerdns/resolver"
)

// fuzzReader turns fuzz input into choices; past its end every choice is 0.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// pick returns one of pool, or with the last choice a raw string of the
// input's bytes.
func (r *fuzzReader) pick(pool []string) string {
	i := int(r.byte())
	if i < len(pool) {
		return pool[i]
	}
	if i%4 != 0 {
		return pool[i%len(pool)]
	}
	n := int(r.byte()) % 70
	s := make([]byte, 0, n)
	for range n {
		s = append(s, r.byte())
	}
	return string(s)
}

var (
	fuzzHostnames = []string{"", "web-0", "web-1", "WEB-0", "web-10", "a.b", "_tcp", "-", "web-0 ", "ü",
		strings.Repeat("h", 63), strings.Repeat("h", 64), "10-0-0-1"}
	fuzzAddrs = []string{"10.0.0.1", "10.0.0.2", "::ffff:10.0.0.1", "fd00::1", "FD00:0:0::1", "fd00::", "fe80::1%eth0",
		"::", "::1", "0.0.0.0", "255.255.255.255", "1.2.3", "010.0.0.1", "", "2001:db8::ffff:ffff:ffff:ffff"}
	fuzzPortNames = []string{"http", "HTTP", "", "metrics", "abcdefghijklmno", "abcdefghijklmnop", "a.b", "_x", "dns"}
	fuzzProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, "", "xyz"}
	fuzzPorts     = []int32{80, 8080, 9090, 0, -1, 65535, 65536, 53}
	// fuzzTypes are the question types; on reverse names the first three
	// ask for PTR instead.
	fuzzTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY, dns.TypePTR, dns.TypeTXT, dns.TypeNS, dns.TypeSOA}
	// fuzzEDNS are the EDNS sizes of the questions; 0 asks without EDNS.
	fuzzEDNS = []int{1232, 0, 512, 4096}
)

// fuzzSlices builds up to 4 slices of one service from r: odd hostnames,
// IPv4 and IPv6 in every form, duplicate endpoints, conflicting port numbers
// for one port name, and rarely (one slice in 256) a slice of 50–100
// generated endpoints. TestHugeSliceRecords covers slices of 1,000. Each
// slice goes through Lean, as the informer's do.
func fuzzSlices(r *fuzzReader) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for si := range int(r.byte())%4 + 1 {
		s := newSlice(si, discoveryv1.AddressTypeIPv4)
		switch r.byte() % 8 {
		case 1:
			s.AddressType = discoveryv1.AddressTypeIPv6
		case 2:
			s.AddressType = discoveryv1.AddressTypeFQDN
		}
		for range int(r.byte()) % 4 {
			p := discoveryv1.EndpointPort{Protocol: &fuzzProtocols[int(r.byte())%len(fuzzProtocols)]}
			if name := r.pick(fuzzPortNames); name != "" || r.byte()%2 == 0 {
				p.Name = &name
			}
			if c := r.byte(); c%8 != 7 {
				p.Port = &fuzzPorts[int(c)%len(fuzzPorts)]
			}
			s.Ports = append(s.Ports, p)
		}
		for range int(r.byte()) % 8 {
			var ep discoveryv1.Endpoint
			if h := r.pick(fuzzHostnames); h != "" {
				ep.Hostname = &h
			}
			for range int(r.byte()) % 3 {
				ep.Addresses = append(ep.Addresses, r.pick(fuzzAddrs))
			}
			switch c := r.byte(); c % 4 {
			case 1:
				ep.Conditions.Ready = ptr(c&4 != 0)
			case 2:
				ep.Conditions.Terminating = ptr(c&4 != 0)
			case 3:
				ep.Conditions.Ready, ep.Conditions.Terminating = ptr(c&4 != 0), ptr(c&8 != 0)
			}
			s.Endpoints = append(s.Endpoints, ep)
		}
		if r.byte() == 255 {
			s.Endpoints = append(s.Endpoints, bigEndpoints(si, 50+int(r.byte())%51)...)
		}
		out = append(out, Lean(s))
	}
	return out
}

// newSlice is slice si of service ns/svc, labelled as the endpointslice
// controller labels it.
func newSlice(si int, at discoveryv1.AddressType) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns",
			Name:      fmt.Sprintf("svc-%d", si),
			Labels:    map[string]string{discoveryv1.LabelServiceName: "svc", corev1.IsHeadlessService: ""},
		},
		AddressType: at,
	}
}

// bigEndpoints are n generated ready endpoints for slice si; the last 5
// share a hostname with the first 5.
func bigEndpoints(si, n int) []discoveryv1.Endpoint {
	eps := make([]discoveryv1.Endpoint, 0, n)
	for i := range n {
		h := fmt.Sprintf("big-%d", i%(n-5))
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", si, i/250, i%250+1)},
			Hostname:   &h,
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Terminating: ptr(false)},
		})
	}
	return eps
}

func ptr[T any](v T) *T { return &v }

// fuzzName is a name to ask about.
type fuzzName struct {
	name    string
	reverse bool
}

// fuzzNames are the names svc publishes, in both trees: the service, _tcp
// below it, every host and every port of the first 64 endpoints, the PTR
// name of each of their addresses and its parent; and two names it does
// not publish.
func fuzzNames(svc resolver.Service) []fuzzName {
	var names []fuzzName
	add := func(n string, reverse bool) {
		if _, ok := dns.IsDomainName(n); ok {
			names = append(names, fuzzName{n, reverse})
		}
	}
	eps := svc.Endpoints[:min(64, len(svc.Endpoints))]
	for _, tree := range []string{"svc", "peers"} {
		base := "svc.ns." + tree + ".cluster.local."
		add(base, false)
		add("_tcp."+base, false)
		add("nope."+base, false)
		for _, ep := range eps {
			for _, a := range ep.Addrs {
				label := ep.Hostname
				if label == "" {
					label = strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
				}
				add(label+"."+base, false)
			}
			for _, p := range ep.Ports {
				if p.Name != "" {
					add("_"+p.Name+"._"+p.Protocol+"."+base, false)
				}
			}
		}
	}
	add("_nope._tcp.svc.ns.svc.cluster.local.", false)
	for _, ep := range eps {
		for _, a := range ep.Addrs {
			rev, _ := dns.ReverseAddr(a.String())
			add(rev, true)
			if i := strings.IndexByte(rev, '.'); i >= 0 {
				add(rev[i+1:], true)
			}
		}
	}
	return names
}

// fuzzQuestion is one question and the EDNS size it is asked with (0:
// without EDNS).
type fuzzQuestion struct {
	q    dns.Question
	edns int
}

// fuzzQuestions reads 1–8 questions about names from r: a name, a type,
// an EDNS size and now and then a mix of letter cases.
func fuzzQuestions(r *fuzzReader, names []fuzzName) []fuzzQuestion {
	var qs []fuzzQuestion
	for range int(r.byte())%8 + 1 {
		i := int(r.byte())
		if len(names) > 256 {
			i = i<<8 | int(r.byte())
		}
		n := names[i%len(names)]
		ti := int(r.byte()) % len(fuzzTypes)
		t := fuzzTypes[ti]
		if n.reverse && ti < 3 {
			t = dns.TypePTR
		}
		c := r.byte()
		name := n.name
		if c&4 != 0 {
			name = mixCase(name, r.byte())
		}
		qs = append(qs, fuzzQuestion{dns.Question{Name: name, Qtype: t, Qclass: dns.ClassINET}, fuzzEDNS[c%4]})
	}
	return qs
}

// mixCase upper-cases the ASCII letters of s at the positions i whose bit
// i%8 is set in mask.
func mixCase(s string, mask byte) string {
	b := []byte(s)
	for i, c := range b {
		if mask>>(i%8)&1 != 0 && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// fuzzServer is a store and its handler.
type fuzzServer struct {
	st *resolver.Store
	h  *resolver.Handler
}

// fuzzServers are two servers every input reuses: building a handler
// costs more than checking an input (its metrics, mostly), and is not the
// data path under test. Each input leaves both stores empty, and checks
// that every name it asked about is gone. Their SOA serials stay equal, as
// both go through the same number of changes per input.
var fuzzServers struct {
	sync.Mutex
	a, b *fuzzServer
}

func newFuzzServer(t testing.TB) *fuzzServer {
	st := resolver.NewStore()
	st.SetSynced()
	cfg := resolver.DefaultConfig()
	cfg.Zones = []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}
	h, err := resolver.NewHandler(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fuzzServer{st, h}
}

// lockFuzzServers returns the two servers, locked for one input; the
// caller unlocks fuzzServers.
func lockFuzzServers(t testing.TB) (a, b *fuzzServer) {
	fuzzServers.Lock()
	for fuzzServers.a == nil {
		a, b := newFuzzServer(t), newFuzzServer(t)
		soa := query(t, dns.Question{Name: "cluster.local.", Qtype: dns.TypeSOA, Qclass: dns.ClassINET}, 0, 0)
		// Built in two different seconds, their serials would differ.
		if bytes.Equal(a.h.Answer(nil, soa, resolver.UDP), b.h.Answer(nil, soa, resolver.UDP)) {
			fuzzServers.a, fuzzServers.b = a, b
		}
	}
	return fuzzServers.a, fuzzServers.b
}

// query packs q with id and, unless edns is 0, an OPT record of that size.
func query(t testing.TB, q dns.Question, id uint16, edns int) []byte {
	m := new(dns.Msg)
	m.Id = id
	m.Question = []dns.Question{q}
	if edns > 0 {
		m.SetEdns0(uint16(edns), false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query %v: %v", q, err)
	}
	return b
}

// FuzzSliceRecords feeds EndpointSlices built from arbitrary input through
// the whole data path: lean transform, merge, store (an update from an
// earlier state of the service the input chooses), answers to up to 8
// questions the input chooses among the names the service publishes.
// Invariants: no panic; the merge does not depend on the order of the
// slices and keeps only valid, unmapped addresses without a zone; every
// answer, over UDP and TCP, unpacks and packs again with miekg/dns, echoes
// the question, is never SERVFAIL, fits the UDP size, and sets TC exactly
// when answer or authority records were left out; answers are the same
// bytes (SOA serial aside) whatever the slice order; once the service is
// deleted every name asked about is NXDOMAIN.
func FuzzSliceRecords(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 1, 1, 2, 1, 0, 0})
	f.Add([]byte{2, 0, 1, 0, 1, 2, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 2, 2, 1, 2, 3, 0})
	f.Add([]byte{1, 1, 2, 0, 0, 2, 0, 1, 2, 7, 2, 3, 4, 2, 5, 1, 255})
	f.Add([]byte{3, 0, 3, 0, 5, 1, 2, 5, 0, 6, 4, 10, 1, 0, 11, 1, 1, 12, 2, 3, 6, 1})
	f.Fuzz(checkSliceInput)
}

// checkSliceInput is FuzzSliceRecords's check of one input.
func checkSliceInput(t *testing.T, data []byte) {
	r := &fuzzReader{data}
	objs := fuzzSlices(r)
	// An earlier state of the service: the slices the input chooses.
	var before []*discoveryv1.EndpointSlice
	mask := r.byte()
	for i, o := range objs {
		if mask>>i&1 != 0 {
			before = append(before, o)
		}
	}
	checkSliceRecords(t, objs, before, func(svc resolver.Service) []fuzzQuestion {
		return fuzzQuestions(r, fuzzNames(svc))
	})
}

// checkSliceRecords checks the invariants FuzzSliceRecords lists for the
// service of objs, stored after the service of before, with the questions
// ask returns for it.
func checkSliceRecords(t *testing.T, objs, before []*discoveryv1.EndpointSlice, ask func(resolver.Service) []fuzzQuestion) {
	svc := Service("ns", "svc", objs)
	rev := slices.Clone(objs)
	slices.Reverse(rev)
	svc2 := Service("ns", "svc", rev)
	if !reflect.DeepEqual(svc, svc2) {
		t.Fatalf("merge depends on slice order (-forward +reversed):\n%s", cmp.Diff(svc, svc2, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })))
	}
	for _, ep := range svc.Endpoints {
		for _, a := range ep.Addrs {
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("address %v in %+v", a, ep)
			}
		}
	}
	qs := ask(svc)

	a, b := lockFuzzServers(t)
	defer fuzzServers.Unlock()
	defer func() {
		a.st.Delete("ns", "svc")
		b.st.Delete("ns", "svc")
	}()
	old := Service("ns", "svc", before)
	a.st.Upsert(old)
	a.st.Upsert(svc)
	b.st.Upsert(old)
	b.st.Upsert(svc2)
	wire := make([][]byte, len(qs))
	for i, fq := range qs {
		wire[i] = query(t, fq.q, uint16(i), fq.edns)
		checkAnswers(t, a, b, fq, wire[i])
	}
	a.st.Delete("ns", "svc")
	for i, fq := range qs {
		if resp := a.h.Answer(nil, wire[i], resolver.UDP); len(resp) < 12 || resp[3]&0xf != dns.RcodeNameError {
			t.Fatalf("%v after the service is deleted: not NXDOMAIN\n%x", fq.q, resp)
		}
	}
}

// checkAnswers asks server a and b question q (fq packed) over UDP and TCP.
func checkAnswers(t *testing.T, a, b *fuzzServer, fq fuzzQuestion, q []byte) {
	udp, tcp := a.h.Answer(nil, q, resolver.UDP), a.h.Answer(nil, q, resolver.TCP)
	question := q // header and question, without the OPT record
	if fq.edns > 0 {
		question = q[:len(q)-11]
	}
	for _, x := range []struct {
		tr   resolver.Transport
		resp []byte
	}{{resolver.UDP, udp}, {resolver.TCP, tcp}} {
		if x.tr == resolver.TCP && bytes.Equal(tcp, udp) {
			break // checked as the UDP answer
		}
		m := new(dns.Msg)
		if err := m.Unpack(x.resp); err != nil {
			t.Fatalf("answer to %v over %v does not unpack: %v\n%x", fq.q, x.tr, err, x.resp)
		}
		if m.Rcode == dns.RcodeServerFailure {
			t.Fatalf("answer to %v over %v: SERVFAIL", fq.q, x.tr)
		}
		if len(m.Question) != 1 || len(x.resp) < len(question) || !bytes.Equal(x.resp[12:len(question)], question[12:]) {
			t.Fatalf("answer to %v over %v does not echo its question:\n%x\n%x", fq.q, x.tr, q, x.resp)
		}
		if _, err := m.Pack(); err != nil {
			t.Fatalf("answer to %v over %v does not pack again: %v", fq.q, x.tr, err)
		}
	}
	limit := dns.MinMsgSize
	if fq.edns > 0 {
		limit = min(max(fq.edns, dns.MinMsgSize), resolver.DefaultConfig().MaxUDPSize)
	}
	if len(udp) > limit {
		t.Fatalf("answer to %v over UDP with EDNS %d: %d bytes", fq.q, fq.edns, len(udp))
	}
	// TC exactly when answer or authority records were left out (RFC 2181
	// §9); over TCP only an answer of about 64 KiB can be cut.
	needed := func(m []byte) int { return int(binary.BigEndian.Uint16(m[6:]) + binary.BigEndian.Uint16(m[8:])) }
	tc := func(m []byte) bool { return m[2]&2 != 0 }
	if tc(tcp) && len(tcp) < dns.MaxMsgSize-dns.MinMsgSize {
		t.Fatalf("answer to %v over TCP: TC with %d bytes", fq.q, len(tcp))
	}
	if !tc(tcp) && tc(udp) != (needed(udp) < needed(tcp)) {
		t.Fatalf("answer to %v over UDP: TC %v with %d of %d answer and authority records", fq.q, tc(udp), needed(udp), needed(tcp))
	}
	for _, x := range []struct {
		tr     resolver.Transport
		ra, rb []byte
	}{{resolver.UDP, udp, b.h.Answer(nil, q, resolver.UDP)}, {resolver.TCP, tcp, b.h.Answer(nil, q, resolver.TCP)}} {
		// The SOA serial of a negative answer is the time of the last
		// change. Both stores go through the same number of changes, but a
		// change sets the serial to the current second when that is more
		// than the last serial plus one, so the two can differ.
		if !bytes.Equal(x.ra, x.rb) && !bytes.Equal(withoutSerial(t, x.ra), withoutSerial(t, x.rb)) {
			t.Fatalf("answer to %v over %v depends on the slice order:\n%x\n%x", fq.q, x.tr, x.ra, x.rb)
		}
	}
}

// withoutSerial returns answer b packed again with every SOA serial 0.
func withoutSerial(t *testing.T, b []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	for _, rr := range slices.Concat(m.Answer, m.Ns) {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = 0
		}
	}
	out, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
