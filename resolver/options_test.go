package resolver

import (
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// withOPTRdata packs an A query for name with an OPT record whose RDATA
// (the options) is rdata as given, well-formed or not.
func withOPTRdata(t *testing.T, name string, rdata []byte) []byte {
	t.Helper()
	q := packQuery(t, name, dns.TypeA, 1232) // the OPT record is last, with no options
	binary.BigEndian.PutUint16(q[len(q)-2:], uint16(len(rdata)))
	return append(q, rdata...)
}

func TestMalformedOPTOptionsAreFORMERR(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	const name = "web-1.nginx.default.svc.cluster.local."
	for _, bc := range []struct {
		name  string
		rdata []byte
		want  int
	}{
		{name: "well-formed cookie", rdata: []byte{0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8}, want: dns.RcodeSuccess},
		{name: "two options", rdata: []byte{0, 3, 0, 0, 0, 12, 0, 2, 0, 0}, want: dns.RcodeSuccess},
		{name: "length past the RDATA", rdata: []byte{0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8}, want: dns.RcodeFormatError},
		{name: "a partial option header", rdata: []byte{0, 3, 0, 0, 0, 12}, want: dns.RcodeFormatError},
		{name: "one byte", rdata: []byte{0}, want: dns.RcodeFormatError},
		{name: "keepalive with a timeout from the client, ignored", rdata: []byte{0, 11, 0, 2, 0, 100}, want: dns.RcodeSuccess},
	} {
		t.Run(bc.name, func(t *testing.T) {
			b := h.Answer(make([]byte, 0, 512), withOPTRdata(t, name, bc.rdata), UDP)
			if b == nil {
				t.Fatal("no answer")
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			if r.Rcode != bc.want {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[bc.want])
			}
		})
	}
}

// TestQclassANY: QCLASS * (RFC 1035 §3.2.5) is answered from the IN data,
// as Knot does; the question keeps class ANY.
func TestQclassANY(t *testing.T) {
	h := newTestHandler(t, true, seed()...)
	for _, name := range []string{"web-1.nginx.default.svc.cluster.local.", "nope.default.svc.cluster.local."} {
		in := new(dns.Msg)
		in.SetQuestion(name, dns.TypeA)
		anyClass := in.Copy()
		anyClass.Question[0].Qclass = dns.ClassANY
		want, got := exchange(t, h, in, UDP), exchange(t, h, anyClass, UDP)
		if got.Question[0].Qclass != dns.ClassANY {
			t.Errorf("%s: question class %d, want ANY", name, got.Question[0].Qclass)
		}
		got.Question[0].Qclass = dns.ClassINET
		if got.String() != want.String() {
			t.Errorf("%s: class ANY answered\n%v\nclass IN\n%v", name, got, want)
		}
	}
}
