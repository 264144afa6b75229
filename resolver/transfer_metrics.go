package resolver

import (
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// xfrMetrics are the transfers' and NOTIFYs' metrics.
type xfrMetrics struct {
	transfers *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	sent      *prometheus.CounterVec
	notifies  *prometheus.CounterVec
	journal   []prometheus.GaugeFunc // per zone
}

// Transfer results, the result label of peerdns_transfers_total.
var xfrResults = []string{"full", "incremental", "soa_only", "refused", "failed"}

// Refusal reasons, the reason label of peerdns_transfer_refusals_total.
var xfrReasons = []string{"malformed", "udp", "address", "unsigned", "bad_key", "bad_signature", "bad_time", "zone", "not_synced"}

func newXfrMetrics(reg prometheus.Registerer, x *Transfers) *xfrMetrics {
	f := promauto.With(reg)
	m := &xfrMetrics{
		transfers: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peerdns_transfers_total",
			Help: "Zone transfer requests answered, by type (axfr, ixfr, soa: a signed SOA query, as secondaries send before a transfer) and result: full (the whole zone), incremental (the journal's differences), soa_only (the client is current, or an IXFR reply too large for UDP), refused (see peerdns_transfer_refusals_total), failed (the connection failed while sending).",
		}, []string{"type", "result"}),
		refusals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peerdns_transfer_refusals_total",
			Help: "Zone transfer requests refused, by reason: malformed, udp (AXFR over UDP), address (not in --dns.transfer.allow), unsigned (a key is configured), bad_key, bad_signature, bad_time (TSIG), zone (not a zone served), not_synced (the EndpointSlices are not loaded yet). No zone data is sent.",
		}, []string{"reason"}),
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peerdns_transfer_bytes_total",
			Help: "Bytes of zone transfer replies sent, by type (axfr, ixfr, soa); TCP length prefixes included.",
		}, []string{"type"}),
		notifies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peerdns_notifies_total",
			Help: "NOTIFY messages to secondaries (--dns.transfer.notify), by secondary and result: sent, acked (answered NOERROR), failed (no answer in time, or an error answer; retried with backoff).",
		}, []string{"secondary", "result"}),
	}
	for _, t := range []string{"axfr", "ixfr", "soa"} {
		for _, r := range xfrResults {
			m.transfers.WithLabelValues(t, r)
		}
		m.sent.WithLabelValues(t)
	}
	for _, r := range xfrReasons {
		m.refusals.WithLabelValues(r)
	}
	for _, s := range x.cfg.Notify {
		for _, r := range []string{"sent", "acked", "failed"} {
			m.notifies.WithLabelValues(s, r)
		}
	}
	for zi := range x.h.zones {
		j := x.journals[zi]
		m.journal = append(m.journal, f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "peerdns_transfer_journal_steps",
			Help:        "Changes held in the zone's IXFR journal: a secondary at most this many changes behind gets only the differences.",
			ConstLabels: prometheus.Labels{"zone": x.h.zones[zi].name},
		}, func() float64 { return float64(j.depth()) }))
	}
	return m
}

func xfrType(qtype uint16) string {
	switch qtype {
	case dns.TypeIXFR:
		return "ixfr"
	case dns.TypeSOA:
		return "soa"
	}
	return "axfr"
}

func (m *xfrMetrics) refused(qtype uint16, reason string) {
	m.transfers.WithLabelValues(xfrType(qtype), "refused").Inc()
	m.refusals.WithLabelValues(reason).Inc()
}

func (m *xfrMetrics) done(qtype uint16, result string, err error, bytes int) {
	if err != nil {
		result = "failed"
	}
	m.transfers.WithLabelValues(xfrType(qtype), result).Inc()
	m.sent.WithLabelValues(xfrType(qtype)).Add(float64(bytes))
}

func (m *xfrMetrics) notify(secondary, result string) {
	m.notifies.WithLabelValues(secondary, result).Inc()
}
