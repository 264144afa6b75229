package discovery

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The label values each vector is initialised with, so every series exists
// from the start (a rate over a counter that appears late misses its first
// increase) and cardinality is visibly bounded.
var (
	memberStates   = []string{"alive", "suspect", "dead", "left"}
	changeEvents   = []string{"join", "leave", "fail", "suspect", "recover", "update"}
	rejectReasons  = []string{"unknown_name", "label", "key"}
	lookupTypes    = []string{"SRV", "A", "AAAA"}
	lookupResults  = []string{"ok", "not_found", "error"}
	results        = []string{"success", "failure"}
	hookNames      = []string{"on_change", "peers_file"}
	rttBuckets     = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5}
	latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

type metrics struct {
	expected          prometheus.Gauge
	members           *prometheus.GaugeVec
	quorumSize        prometheus.Gauge
	hasQuorum         prometheus.Gauge
	failureTolerance  prometheus.Gauge
	quorumTransitions prometheus.Counter
	memberUp          *prometheus.GaugeVec
	memberRTT         *prometheus.HistogramVec
	healthScore       prometheus.Gauge
	changes           *prometheus.CounterVec
	joins             *prometheus.CounterVec
	nameConflicts     prometheus.Counter
	rejected          *prometheus.CounterVec
	lookups           *prometheus.CounterVec
	lookupDuration    *prometheus.HistogramVec
	peersResolved     prometheus.Gauge
	viewDisagreement  prometheus.Gauge
	nameDuplicated    prometheus.Gauge
	membersByVersion  *prometheus.GaugeVec
	ready             prometheus.Gauge
	keyring           *keyringCollector
	keyringReloads    *prometheus.CounterVec
	hookRuns          *prometheus.CounterVec
	nodeInfo          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, set ExpectedSet, self Identity) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		expected: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_expected_members",
			Help: "Target cluster size: the size source's replicas (the expected-size file or the StatefulSet), at least --cluster.expected; learners of the target set become voters once stable.",
		}),
		members: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "peeragent_members",
			Help: "Members as this agent sees them, voters and learners, by state (alive, suspect, dead, left); this agent counts as alive.",
		}, []string{"state"}),
		quorumSize: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_quorum_size",
			Help: "Alive voters needed for quorum: a strict majority, floor(V/2)+1, of the V voters of the committed voting configuration.",
		}),
		hasQuorum: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_has_quorum",
			Help: "1 while a majority of the voting configuration (of the old and of the new one while a change is in flight) answered this agent's own probes within the suspect timeout, as checked at the end of each probe round (so a member silent for up to suspect timeout + probe interval + probe timeout still counts; this agent included when it votes), and no other live process claims this agent's name, else 0. A local view, not a lease or a consensus: when reachability is not transitive, agents that cannot reach each other may both report 1.",
		}),
		failureTolerance: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_failure_tolerance",
			Help: "Alive voters minus quorum size: how many more may fail before quorum is lost (negative once lost; the smaller of both configurations' while a change is in flight).",
		}),
		quorumTransitions: f.NewCounter(prometheus.CounterOpts{
			Name: "peeragent_quorum_transitions_total",
			Help: "Times has_quorum changed value.",
		}),
		memberUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "peeragent_member_up",
			Help: "1 if the member with this ordinal is alive (answered this agent's own probes within the suspect timeout, as checked at the end of each probe round: up to suspect timeout + probe interval + probe timeout after its last ack), else 0.",
		}, []string{"ordinal"}),
		memberRTT: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "peeragent_member_rtt_seconds",
			Help:    "Round-trip time of successful probes to the member with this ordinal.",
			Buckets: rttBuckets,
		}, []string{"ordinal"}),
		healthScore: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_health_score",
			Help: "memberlist's awareness score: 0 is healthy; higher means this agent is missing probe deadlines and slows its probing.",
		}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_membership_changes_total",
			Help: "Member state changes seen, by event: join, leave (graceful), fail (declared dead), suspect, recover (suspect to alive), update (address or metadata).",
		}, []string{"event"}),
		joins: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_joins_total",
			Help: "Join attempts to peers found in DNS, by result.",
		}, []string{"result"}),
		nameConflicts: f.NewCounter(prometheus.CounterOpts{
			Name: "peeragent_name_conflicts_total",
			Help: "Alive messages for a known member name from a different address, dropped until the old address is declared dead and the reclaim time has passed.",
		}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_rejected_messages_total",
			Help: "Gossip messages rejected, by reason: unknown_name (a node name outside the admitted set), label (another cluster label), key (no installed key decrypts it, or it is not encrypted).",
		}, []string{"reason"}),
		lookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_dns_lookups_total",
			Help: "DNS lookups for peers, by record type and result (not_found: NXDOMAIN or no record of that type).",
		}, []string{"type", "result"}),
		lookupDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "peeragent_dns_lookup_duration_seconds",
			Help:    "Duration of DNS lookups for peers, by record type.",
			Buckets: latencyBuckets,
		}, []string{"type"}),
		peersResolved: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_peers_resolved",
			Help: "Peers (this agent excluded) with an address from DNS: the admitted SRV targets and the per-ordinal names of the voters and the target set.",
		}),
		viewDisagreement: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_view_disagreement",
			Help: "1 if a member this agent counts alive reported, within the last 3 view intervals, a different list of alive members than this agent's, else 0. It fires when reachability is not transitive (two members each reach a third but not each other) and briefly while a change propagates.",
		}),
		nameDuplicated: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_name_duplicated",
			Help: "1 while another live process claims this agent's own node name (it answered a probe addressed to that name at another address within the suspect timeout), else 0. While 1, has_quorum is 0 and /readyz fails.",
		}),
		membersByVersion: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "peeragent_members_by_version",
			Help: "Members this agent counts alive, by the version each gossips (--node.version; \"unknown\" if unset).",
		}, []string{"version"}),
		ready: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_ready",
			Help: "1 while /readyz answers 200, else 0.",
		}),
		keyring: newKeyringCollector(),
		keyringReloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_keyring_reloads_total",
			Help: "Changes of the key files applied to the keyring, by result (failure: the files could not be read, or the keyring did not end up holding exactly their keys; retried every reload interval, and counted again only when the error changes).",
		}, []string{"result"}),
		hookRuns: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_hook_runs_total",
			Help: "Settled member lists delivered, by hook (on_change command, peers_file) and result.",
		}, []string{"hook", "result"}),
		nodeInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "peeragent_node_info",
			Help: "Always 1, labelled with this agent's node name and ordinal.",
		}, []string{"name", "ordinal"}),
	}
	reg.MustRegister(m.keyring)
	m.expected.Set(float64(set.N))
	m.quorumSize.Set(float64(QuorumSize(set.N)))
	for _, s := range memberStates {
		m.members.WithLabelValues(s)
	}
	for _, o := range set.Ordinals() {
		m.memberUp.WithLabelValues(strconv.Itoa(o))
		m.memberRTT.WithLabelValues(strconv.Itoa(o))
	}
	for _, e := range changeEvents {
		m.changes.WithLabelValues(e)
	}
	for _, r := range results {
		m.joins.WithLabelValues(r)
		m.keyringReloads.WithLabelValues(r)
		for _, h := range hookNames {
			m.hookRuns.WithLabelValues(h, r)
		}
	}
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	for _, t := range lookupTypes {
		m.lookupDuration.WithLabelValues(t)
		for _, r := range lookupResults {
			m.lookups.WithLabelValues(t, r)
		}
	}
	m.nodeInfo.WithLabelValues(self.Name(), strconv.Itoa(self.Ordinal)).Set(1)
	return m
}

// keyringCollector reports the live gossip keyring at each scrape: the keys
// memberlist decrypts and encrypts with, not the key files.
type keyringCollector struct {
	ring    atomic.Pointer[gossipKeyring] // nil: encryption off
	keys    *prometheus.Desc
	key     *prometheus.Desc
	primary *prometheus.Desc
}

func newKeyringCollector() *keyringCollector {
	return &keyringCollector{
		keys: prometheus.NewDesc("peeragent_keyring_keys",
			"Gossip encryption keys installed in the live keyring, the primary included (0: encryption off).", nil, nil),
		key: prometheus.NewDesc("peeragent_keyring_key_info",
			"Always 1, one series per key installed in the live keyring (the primary included), labelled with the first 8 hex digits of the key's SHA-256: a revoked key is gone once its series is.", []string{"fingerprint"}, nil),
		primary: prometheus.NewDesc("peeragent_keyring_primary_key_info",
			"Always 1, labelled with the first 8 hex digits of the SHA-256 of the live keyring's primary key (the one this agent encrypts with), to check a rotation reached every member.", []string{"fingerprint"}, nil),
	}
}

func (c *keyringCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.key
	ch <- c.primary
}

func (c *keyringCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.ring.Load()
	if g == nil {
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, 0)
		return
	}
	kf := g.keys()
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(len(kf.all)))
	for _, k := range kf.all {
		ch <- prometheus.MustNewConstMetric(c.key, prometheus.GaugeValue, 1, fingerprint(k))
	}
	ch <- prometheus.MustNewConstMetric(c.primary, prometheus.GaugeValue, 1, fingerprint(kf.primary))
}
