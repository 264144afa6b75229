package resolver

import "github.com/miekg/dns"

// ixfr sends the IXFR reply (RFC 1995 §4) to req, whose zone is at serial
// soa.Serial, and returns what it sent:
//
//   - "soa_only": the client's serial is the current one, the reply is the
//     SOA alone;
//   - "incremental": the journal leads from the client's serial to the
//     current one: SOA, the client's SOA, the deleted records, SOA, the
//     added records, SOA, the journal's steps condensed into one;
//   - "full": anything else (a serial older than the journal, or one this
//     server never published): the whole zone, as AXFR sends it.
func (x *Transfers) ixfr(req *request, soa *dns.SOA, out *batcher) string {
	have := req.m.Ns[0].(*dns.SOA).Serial
	if have == soa.Serial {
		out.add(soa)
		return "soa_only"
	}
	steps, ok := x.journals[req.zi].since(have, soa.Serial)
	if !ok {
		x.full(req, soa, out)
		return "full"
	}
	del, add := condense(steps)
	old := *soa
	old.Serial = have
	out.add(soa)
	out.add(&old)
	for _, rr := range del {
		out.add(rr)
	}
	out.add(soa)
	for _, rr := range add {
		out.add(rr)
	}
	out.add(soa)
	return "incremental"
}
