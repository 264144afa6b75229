package resolver

import (
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the handler's. Every series a query touches is resolved when
// the handler is built, so counting a query is a few atomic adds.
type metrics struct {
	requests   [2][len(qtypeLabels)]prometheus.Counter
	responses  map[int]prometheus.Counter
	rcodeOther prometheus.Counter
	dropped    prometheus.Counter
	truncated  [2]prometheus.Counter
	duration   [2]prometheus.Observer
}

// qtypeLabels bound the type label: the types peerdns serves, then "other".
var qtypeLabels = [...]string{"A", "AAAA", "SRV", "PTR", "TXT", "SOA", "NS", "ANY", "other"}

var qtypeIndex = map[uint16]int{
	dns.TypeA: 0, dns.TypeAAAA: 1, dns.TypeSRV: 2, dns.TypePTR: 3,
	dns.TypeTXT: 4, dns.TypeSOA: 5, dns.TypeNS: 6, dns.TypeANY: 7,
}

var rcodeLabels = []int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeNotAuth, dns.RcodeBadVers,
}

func newMetrics(reg prometheus.Registerer, s *Store) *metrics {
	f := promauto.With(reg)
	requests := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_dns_requests_total",
		Help: "DNS queries received, by transport and query type (types peerdns does not serve count as other). With zone transfers on, AXFR, IXFR and signed SOA queries count in peerdns_transfers_total instead.",
	}, []string{"transport", "type"})
	responses := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_dns_responses_total",
		Help: "DNS responses sent, by response code.",
	}, []string{"rcode"})
	truncated := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_dns_truncated_responses_total",
		Help: "Responses sent with TC set because answer records did not fit the transport's size limit, by transport (additional records left out do not count).",
	}, []string{"transport"})
	duration := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "peerdns_dns_request_duration_seconds",
		Help:    "Time to answer a query inside the server, from parsing the query to the response being ready, by transport.",
		Buckets: prometheus.ExponentialBuckets(2e-6, 4, 10), // 2µs … 0.5s
	}, []string{"transport"})
	m := &metrics{
		responses: map[int]prometheus.Counter{},
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "peerdns_dns_dropped_requests_total",
			Help: "Packets dropped without an answer: too short for a DNS header, or responses rather than queries.",
		}),
	}
	for _, t := range []Transport{UDP, TCP} {
		for i, q := range qtypeLabels {
			m.requests[t][i] = requests.WithLabelValues(t.String(), q)
		}
		m.truncated[t] = truncated.WithLabelValues(t.String())
		m.duration[t] = duration.WithLabelValues(t.String())
	}
	for _, rc := range rcodeLabels {
		m.responses[rc] = responses.WithLabelValues(dns.RcodeToString[rc])
	}
	m.rcodeOther = responses.WithLabelValues("other")
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

// observe counts one query. rcode -1 means the packet was dropped.
func (m *metrics) observe(t Transport, qtype uint16, rcode int, resp []byte, start time.Time) {
	if rcode < 0 {
		m.dropped.Inc()
		return
	}
	i, ok := qtypeIndex[qtype]
	if !ok {
		i = len(qtypeLabels) - 1
	}
	m.requests[t][i].Inc()
	if c, ok := m.responses[rcode]; ok {
		c.Inc()
	} else {
		m.rcodeOther.Inc()
	}
	if len(resp) > 3 && resp[2]&byte(flagTC>>8) != 0 {
		m.truncated[t].Inc()
	}
	m.duration[t].Observe(time.Since(start).Seconds())
}
