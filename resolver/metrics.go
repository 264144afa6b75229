package resolver

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// qtypeLabels bound the type label: the types peerdns serves, then "other".
var qtypeLabels = [...]string{"A", "AAAA", "SRV", "PTR", "TXT", "SOA", "NS", "ANY", "other"}

// qtypeIndex is the index of qtype's label in qtypeLabels.
func qtypeIndex(qtype uint16) int {
	switch qtype {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeSRV:
		return 2
	case dns.TypePTR:
		return 3
	case dns.TypeTXT:
		return 4
	case dns.TypeSOA:
		return 5
	case dns.TypeNS:
		return 6
	case dns.TypeANY:
		return 7
	}
	return len(qtypeLabels) - 1
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

// durationBuckets are the upper bounds of the duration histogram, in
// seconds: 2µs … 0.5s.
var durationBuckets = prometheus.ExponentialBuckets(2e-6, 4, 10)

// zoneDropped is the zone label of queries in no zone served, as CoreDNS
// labels queries that no server block takes.
const zoneDropped = "dropped"

// metrics are the handler's, with CoreDNS's metric and label names under
// the peerdns_ prefix (server, zone, proto, family, type, rcode), so a
// CoreDNS dashboard or alert ports with a prefix rewrite.
//
// Queries are counted in shards: each UDP worker of a Server has its own,
// which only it writes, and everything else (TCP connections, Answer)
// shares one. A scrape sums the shards. So counting a UDP query writes no
// cache line another worker writes, and looks nothing up in a map.
type metrics struct {
	descs  metricDescs
	server string
	zones  []string // zone labels, indexed by zone+1 (0: zoneDropped)
	shared *metricShard
	born   time.Time // the series' created timestamp

	mu     sync.Mutex
	shards []*metricShard
}

type metricDescs struct {
	requests, responses, truncated, duration, reqSize, respSize, dropped *prometheus.Desc
}

// metricShard holds one writer's counts: per zone, indexed by zone+1 (0:
// in no zone served, zone "dropped"). Padding keeps its counts off the
// cache lines of any other allocation.
type metricShard struct {
	_       [64]byte
	dropped atomic.Uint64
	zones   []zoneCounts
	_       [64]byte
}

// zoneCounts are a zone's counts, indexed as named: proto (Transport),
// family (0: IPv4, 1: IPv6), type (qtypeLabels), rcode (rcodeLabels, then
// other). Histograms keep a count per bucket (not cumulative; the last is
// +Inf) and the sum: durations in nanoseconds, sizes in bytes. The padding
// at both ends keeps the counts of two shards' zones, which may be
// allocated side by side, off each other's cache lines.
type zoneCounts struct {
	_         [64]byte
	requests  [2][2][len(qtypeLabels)]atomic.Uint64
	responses [len(rcodeLabels) + 1]atomic.Uint64
	truncated [2]atomic.Uint64
	duration  [len(qtypeLabels)]durationCounts
	reqSize   [2]sizeCounts
	respSize  [2]sizeCounts
	_         [64]byte
}

// durationCounts and sizeCounts are a histogram's counts: one a bucket
// of durationBuckets or sizeBuckets, then +Inf.
type durationCounts struct {
	buckets [10 + 1]atomic.Uint64
	sum     atomic.Uint64
}

type sizeCounts struct {
	buckets [14 + 1]atomic.Uint64
	sum     atomic.Uint64
}

func newMetrics(reg prometheus.Registerer, s *Store, server string, zones []zone) *metrics {
	if len(durationBuckets)+1 != len(durationCounts{}.buckets) || len(sizeBuckets)+1 != len(sizeCounts{}.buckets) {
		panic("metrics: bucket counts out of step")
	}
	m := &metrics{
		server: server,
		zones:  []string{zoneDropped},
		born:   time.Now(),
		descs: metricDescs{
			requests: prometheus.NewDesc("peerdns_dns_requests_total",
				"DNS queries received, by server (listen address), zone (dropped: in no zone served), transport (proto), client address family (1: IPv4, 2: IPv6) and query type (types peerdns does not serve count as other). With zone transfers on, AXFR, IXFR and signed SOA queries count in peerdns_transfers_total instead.",
				[]string{"server", "zone", "proto", "family", "type"}, nil),
			responses: prometheus.NewDesc("peerdns_dns_responses_total",
				"DNS responses sent, by server, zone and response code.",
				[]string{"server", "zone", "rcode"}, nil),
			truncated: prometheus.NewDesc("peerdns_dns_truncated_responses_total",
				"Responses sent with TC set because answer records did not fit the transport's size limit, by server, zone and transport (additional records left out do not count).",
				[]string{"server", "zone", "proto"}, nil),
			duration: prometheus.NewDesc("peerdns_dns_request_duration_seconds",
				"Time to answer a query inside the server, from parsing the query to the response being ready, by server, zone and query type.",
				[]string{"server", "zone", "type"}, nil),
			reqSize: prometheus.NewDesc("peerdns_dns_request_size_bytes",
				"Size of the queries answered, in bytes, by server, zone and transport.",
				[]string{"server", "zone", "proto"}, nil),
			respSize: prometheus.NewDesc("peerdns_dns_response_size_bytes",
				"Size of the responses sent, in bytes, by server, zone and transport.",
				[]string{"server", "zone", "proto"}, nil),
			dropped: prometheus.NewDesc("peerdns_dns_dropped_requests_total",
				"Packets dropped without an answer: too short for a DNS header, or responses rather than queries.",
				nil, nil),
		},
	}
	for _, z := range zones {
		m.zones = append(m.zones, z.name)
	}
	m.shared = m.newShard()
	if reg != nil {
		reg.MustRegister((*metricsCollector)(m))
	}
	f := promauto.With(reg)
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

// newShard returns a shard for one writer, summed into every scrape from
// now on. A shard is never removed: a worker's counts outlive it.
func (m *metrics) newShard() *metricShard {
	sh := &metricShard{zones: make([]zoneCounts, len(m.zones))}
	m.mu.Lock()
	m.shards = append(m.shards, sh)
	m.mu.Unlock()
	return sh
}

// bucket is the index of the first bound v is at most, len(bounds) (+Inf)
// when none: the bucket a Prometheus histogram counts v in.
func bucket(bounds []float64, v float64) int {
	for i, b := range bounds {
		if v <= b {
			return i
		}
	}
	return len(bounds)
}

// observe counts one query of qlen bytes that came via v, in zone zi (-1:
// none), in v's shard (nil: the shared one). rcode -1 means the packet was
// dropped.
func (m *metrics) observe(v via, zi int, qtype uint16, rcode, qlen int, resp []byte, start time.Time) {
	sh := v.shard
	if sh == nil {
		sh = m.shared
	}
	if rcode < 0 {
		sh.dropped.Add(1)
		return
	}
	z := &sh.zones[zi+1]
	i := qtypeIndex(qtype)
	fam := 0
	if v.v6 {
		fam = 1
	}
	z.requests[v.t][fam][i].Add(1)
	rc := len(rcodeLabels) // other
	for j, l := range rcodeLabels {
		if l == rcode {
			rc = j
			break
		}
	}
	z.responses[rc].Add(1)
	if len(resp) > 3 && resp[2]&byte(flagTC>>8) != 0 {
		z.truncated[v.t].Add(1)
	}
	rq := &z.reqSize[v.t]
	rq.buckets[bucket(sizeBuckets, float64(qlen))].Add(1)
	rq.sum.Add(uint64(qlen))
	rs := &z.respSize[v.t]
	rs.buckets[bucket(sizeBuckets, float64(len(resp)))].Add(1)
	rs.sum.Add(uint64(len(resp)))
	d := time.Since(start)
	dh := &z.duration[i]
	dh.buckets[bucket(durationBuckets, d.Seconds())].Add(1)
	dh.sum.Add(uint64(max(d, 0)))
}

// metricsCollector exposes the sums of a metrics' shards.
type metricsCollector metrics

func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.descs
	for _, desc := range []*prometheus.Desc{d.requests, d.responses, d.truncated, d.duration, d.reqSize, d.respSize, d.dropped} {
		ch <- desc
	}
}

// Collect sends every series, those still at 0 too, as the handler has
// always exposed them. Counts added while it sums may show in one series
// and not yet in another.
func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*metrics)(c)
	m.mu.Lock()
	shards := m.shards[:len(m.shards):len(m.shards)]
	m.mu.Unlock()
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(desc, prometheus.CounterValue, float64(v), m.born, labels...)
	}
	histogram := func(desc *prometheus.Desc, bounds []float64, counts func(*metricShard) ([]atomic.Uint64, *atomic.Uint64), sumUnit float64, labels ...string) {
		cum := make(map[float64]uint64, len(bounds))
		var total, sum uint64
		per := make([]uint64, len(bounds)+1)
		for _, sh := range shards {
			b, s := counts(sh)
			for i := range b {
				per[i] += b[i].Load()
			}
			sum += s.Load()
		}
		for i, b := range bounds {
			total += per[i]
			cum[b] = total
		}
		total += per[len(bounds)]
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(desc, total, float64(sum)*sumUnit, cum, m.born, labels...)
	}
	var dropped uint64
	for _, sh := range shards {
		dropped += sh.dropped.Load()
	}
	counter(m.descs.dropped, dropped)
	for zi, zl := range m.zones {
		for _, t := range []Transport{UDP, TCP} {
			for fam, fl := range familyLabels {
				for i, q := range qtypeLabels {
					var n uint64
					for _, sh := range shards {
						n += sh.zones[zi].requests[t][fam][i].Load()
					}
					counter(m.descs.requests, n, m.server, zl, t.String(), fl, q)
				}
			}
			var n uint64
			for _, sh := range shards {
				n += sh.zones[zi].truncated[t].Load()
			}
			counter(m.descs.truncated, n, m.server, zl, t.String())
			histogram(m.descs.reqSize, sizeBuckets, func(sh *metricShard) ([]atomic.Uint64, *atomic.Uint64) {
				h := &sh.zones[zi].reqSize[t]
				return h.buckets[:], &h.sum
			}, 1, m.server, zl, t.String())
			histogram(m.descs.respSize, sizeBuckets, func(sh *metricShard) ([]atomic.Uint64, *atomic.Uint64) {
				h := &sh.zones[zi].respSize[t]
				return h.buckets[:], &h.sum
			}, 1, m.server, zl, t.String())
		}
		for i, q := range qtypeLabels {
			histogram(m.descs.duration, durationBuckets, func(sh *metricShard) ([]atomic.Uint64, *atomic.Uint64) {
				h := &sh.zones[zi].duration[i]
				return h.buckets[:], &h.sum
			}, 1e-9, m.server, zl, q)
		}
		for i := range len(rcodeLabels) + 1 {
			rl := "other"
			if i < len(rcodeLabels) {
				rl = dns.RcodeToString[rcodeLabels[i]]
			}
			var n uint64
			for _, sh := range shards {
				n += sh.zones[zi].responses[i].Load()
			}
			counter(m.descs.responses, n, m.server, zl, rl)
		}
	}
}
