package kube

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the Watcher's Prometheus metrics.
type metrics struct {
	adds, updates, deletes prometheus.Counter
	synced                 prometheus.Gauge
	programming            prometheus.Histogram
	watchErrors            prometheus.Counter
	lastEvent              prometheus.Gauge
}

// newMetrics creates the metrics and registers them with reg; a nil reg
// keeps them unregistered. It panics if they are already registered with
// reg, which is a programming error (two Watchers on one registry).
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	events := f.NewCounterVec(prometheus.CounterOpts{
		Name: "peerdns_kube_watch_events_total",
		Help: "EndpointSlice events received from the API server's watch, by event (add, update, delete). A relist after a watch expiry counts an update for every slice and a delete for every slice that vanished meanwhile.",
	}, []string{"event"})
	return &metrics{
		adds:    events.WithLabelValues("add"),
		updates: events.WithLabelValues("update"),
		deletes: events.WithLabelValues("delete"),
		synced: f.NewGauge(prometheus.GaugeOpts{
			Name: "peerdns_kube_synced",
			Help: "1 once the initial list of EndpointSlices has been loaded into the resolver (names that do not exist are then NXDOMAIN instead of SERVFAIL), 0 before.",
		}),
		programming: f.NewHistogram(prometheus.HistogramOpts{
			Name: "peerdns_dns_programming_duration_seconds",
			Help: "Time from the change that triggered an EndpointSlice update (its endpoints.kubernetes.io/last-change-trigger-time annotation) to the new answers being served. Observed once per slice update whose trigger time changed; includes the API server's and the endpointslice controller's delays and any clock skew between them and peerdns.",
			// 1 ms to about 17 minutes, as CoreDNS's kubernetes plugin.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 21),
		}),
		watchErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "peerdns_kube_watch_errors_total",
			Help: "Failed list or watch requests for EndpointSlices (and Services, with --kube.read-services): the API server unreachable, an error status other than 410 Gone (a watch expiry, which is relisted), or a watch stream that broke. Counted only when the client was built from Config.RESTConfig (always in peerdns). Answers keep coming from the last known state meanwhile.",
		}),
		lastEvent: f.NewGauge(prometheus.GaugeOpts{
			Name: "peerdns_kube_last_event_timestamp_seconds",
			Help: "Unix time of the last EndpointSlice data received from the API server: a list, a watch event, or a watch bookmark (the API server sends one about once a minute on an idle watch). 0 before the first. Its age grows while the watch is broken.",
		}),
	}
}
