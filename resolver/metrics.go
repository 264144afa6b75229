package resolver

import (
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the handler's, with CoreDNS's metric and label names under
// the peerdns_ prefix (server, zone, proto, family, type, rcode), so a
// CoreDNS dashboard or alert ports with a prefix rewrite. Every series a
// query touches is resolved when the handler is built, so counting a query
// is a few atomic adds.
type metrics struct {
	// Indexed by zone+1 (0: in no zone served, zone "dropped"), then as
	// named: proto (Transport), family (0: IPv4, 1: IPv6), type
	// (qtypeLabels), rcode (rcodeLabels, then other).
	requests  [][2][2][len(qtypeLabels)]prometheus.Counter
	responses [][len(rcodeLabels) + 1]prometheus.Counter
	duration  [][len(qtypeLabels)]prometheus.Observer
	reqSize   [][2]prometheus.Observer
	respSize  [][2]prometheus.Observer
	truncated [][2]prometheus.Counter
	dropped   prometheus.Counter
}

// qtypeLabels bound the type label: the types peerdns serves, then "other".
var qtypeLabels = [...]string{"A", "AAAA", "SRV", "PTR", "TXT", "SOA", "NS", "ANY", "other"}

var qtypeIndex = map[uint16]int{
	dns.TypeA: 0, dns.TypeAAAA: 1, dns.TypeSRV: 2, dns.TypePTR: 3,
	dns.TypeTXT: 4, dns.TypeSOA: 5, dns.TypeNS: 6, dns.TypeANY: 7,
}

var rcodeLabels = [...]int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeNotAuth, dns.RcodeBadVers,
}

// familyLabels are CoreDNS's: the address family numbers of IPv4 and IPv6.
var familyLabels = [2]string{"1", "2"}

// sizeBuckets are CoreDNS's message size buckets, so its dashboards' size
// panels read the same.
var sizeBuckets = []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3}

// zoneDropped is the zone label of queries in no zone served, as CoreDNS
// labels queries that no server block takes.
const zoneDropped = "dropped"

func newMetrics(reg prometheus.Registerer, s *Store, server string, zones []zone) *metrics {
	f := promauto.With(reg)
	requests := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_dns_requests_total",
		Help: "DNS queries received, by server (listen address), zone (dropped: in no zone served), transport (proto), client address family (1: IPv4, 2: IPv6) and query type (types peerdns does not serve count as other). With zone transfers on, AXFR, IXFR and signed SOA queries count in peerdns_transfers_total instead.",
	}, []string{"server", "zone", "proto", "family", "type"})
	responses := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_dns_responses_total",
		Help: "DNS responses sent, by server, zone and response code.",
	}, []string{"server", "zone", "rcode"})
	truncated := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_dns_truncated_responses_total",
		Help: "Responses sent with TC set because answer records did not fit the transport's size limit, by server, zone and transport (additional records left out do not count).",
	}, []string{"server", "zone", "proto"})
	duration := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "peerdns_dns_request_duration_seconds",
		Help:    "Time to answer a query inside the server, from parsing the query to the response being ready, by server, zone and query type.",
		Buckets: prometheus.ExponentialBuckets(2e-6, 4, 10), // 2µs … 0.5s
	}, []string{"server", "zone", "type"})
	reqSize := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "peerdns_dns_request_size_bytes",
		Help:    "Size of the queries answered, in bytes, by server, zone and transport.",
		Buckets: sizeBuckets,
	}, []string{"server", "zone", "proto"})
	respSize := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "peerdns_dns_response_size_bytes",
		Help:    "Size of the responses sent, in bytes, by server, zone and transport.",
		Buckets: sizeBuckets,
	}, []string{"server", "zone", "proto"})
	n := len(zones) + 1
	m := &metrics{
		requests:  make([][2][2][len(qtypeLabels)]prometheus.Counter, n),
		responses: make([][len(rcodeLabels) + 1]prometheus.Counter, n),
		duration:  make([][len(qtypeLabels)]prometheus.Observer, n),
		reqSize:   make([][2]prometheus.Observer, n),
		respSize:  make([][2]prometheus.Observer, n),
		truncated: make([][2]prometheus.Counter, n),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "peerdns_dns_dropped_requests_total",
			Help: "Packets dropped without an answer: too short for a DNS header, or responses rather than queries.",
		}),
	}
	for zi := range n {
		zl := zoneDropped
		if zi > 0 {
			zl = zones[zi-1].name
		}
		for _, t := range []Transport{UDP, TCP} {
			for fam, fl := range familyLabels {
				for i, q := range qtypeLabels {
					m.requests[zi][t][fam][i] = requests.WithLabelValues(server, zl, t.String(), fl, q)
				}
			}
			m.truncated[zi][t] = truncated.WithLabelValues(server, zl, t.String())
			m.reqSize[zi][t] = reqSize.WithLabelValues(server, zl, t.String())
			m.respSize[zi][t] = respSize.WithLabelValues(server, zl, t.String())
		}
		for i, q := range qtypeLabels {
			m.duration[zi][i] = duration.WithLabelValues(server, zl, q)
		}
		for i, rc := range rcodeLabels {
			m.responses[zi][i] = responses.WithLabelValues(server, zl, dns.RcodeToString[rc])
		}
		m.responses[zi][len(rcodeLabels)] = responses.WithLabelValues(server, zl, "other")
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "peerdns_services",
		Help: "Headless services known, with at least one endpoint that has an address.",
	}, func() float64 { return float64(s.snapshot().nservices) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "peerdns_endpoints",
		Help: "Per-endpoint names served for ready endpoints, over all services.",
	}, func() float64 { return float64(s.snapshot().endpoints) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "peerdns_unencodable_names_total",
		Help: "Names left out of the answers because they cannot be encoded as one DNS label: a whole service for a bad service or namespace name, one endpoint for a bad hostname, one port for a bad port name. Each is also logged at warn.",
	}, func() float64 { return float64(s.unencodable.Load()) })
	return m
}

// observe counts one query of qlen bytes that came via v, in zone zi (-1:
// none). rcode -1 means the packet was dropped.
func (m *metrics) observe(v via, zi int, qtype uint16, rcode, qlen int, resp []byte, start time.Time) {
	if rcode < 0 {
		m.dropped.Inc()
		return
	}
	zi++
	i, ok := qtypeIndex[qtype]
	if !ok {
		i = len(qtypeLabels) - 1
	}
	fam := 0
	if v.v6 {
		fam = 1
	}
	m.requests[zi][v.t][fam][i].Inc()
	rc := len(rcodeLabels) // other
	for j, l := range rcodeLabels {
		if l == rcode {
			rc = j
			break
		}
	}
	m.responses[zi][rc].Inc()
	if len(resp) > 3 && resp[2]&byte(flagTC>>8) != 0 {
		m.truncated[zi][v.t].Inc()
	}
	m.reqSize[zi][v.t].Observe(float64(qlen))
	m.respSize[zi][v.t].Observe(float64(len(resp)))
	m.duration[zi][i].Observe(time.Since(start).Seconds())
}
