package resolver

import (
	"github.com/miekg/dns"
)

// SchemaVersion is the Kubernetes DNS specification version served at
// dns-version.<zone>.
const SchemaVersion = "1.1.0"

// SOA timers, which secondaries (transfer.go) follow: without a NOTIFY they
// check the serial every refresh, after a failed check every retry, and stop
// answering for the zone after expire without reaching peerdns. The minimum
// is the negative TTL.
const (
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
	// versionTTL is the TTL of the dns-version record, which changes only
	// with the software.
	versionTTL = 28800
)

// staticRecords are a zone's records that never change, each packed alone
// and uncompressed, so they can follow any question.
type staticRecords struct {
	ns      []byte // <zone> NS the NS target (see nsTargetZone)
	version []byte // dns-version.<zone> TXT "1.1.0"
}

// soaRecord is a zone's SOA packed alone, for one serial.
type soaRecord struct {
	serial uint32
	b      []byte
}

func (h *Handler) newStaticRecords(z *zone) staticRecords {
	return staticRecords{
		ns: packAlone(&dns.NS{
			Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: h.cfg.TTL},
			Ns:  h.nsTargetOf(z),
		}),
		version: packAlone(&dns.TXT{
			Hdr: dns.RR_Header{Name: "dns-version." + z.name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: versionTTL},
			Txt: []string{SchemaVersion},
		}),
	}
}

// nsTarget is the name of the NS target in forward zone: ns.dns.<zone>. It
// has the server's own addresses (Config.NSAddresses) as A/AAAA records.
func nsTarget(zone string) string { return "ns.dns." + zone }

// nsTargetOf is the NS target (and SOA MNAME) of zone z. A reverse zone
// cannot hold a name with addresses, so its NS names the target in the
// first forward zone, whose A/AAAA records peerdns serves too.
func (h *Handler) nsTargetOf(z *zone) string {
	if z.reverse {
		return nsTarget(h.ptrZone)
	}
	return nsTarget(z.name)
}

// soa returns zone zi's SOA record at the store's current serial. The state
// it reads is the one the caller answered from or a later one, so a serial
// is never older than the data it comes with.
func (h *Handler) soa(zi int) []byte {
	serial := h.store.snapshot().serialOf(zi)
	if c := h.soas[zi].Load(); c != nil && c.serial == serial {
		return c.b
	}
	c := &soaRecord{serial: serial, b: packAlone(h.zoneSOA(zi, serial))}
	h.soas[zi].Store(c)
	return c.b
}

// packAlone packs rr uncompressed, with no reference to any other name.
func packAlone(rr dns.RR) []byte {
	b := make([]byte, dns.Len(rr))
	n, err := dns.PackRR(rr, b, 0, nil, false)
	if err != nil {
		panic("resolver: pack " + rr.String() + ": " + err.Error()) // zone names were validated
	}
	return b[:n]
}
