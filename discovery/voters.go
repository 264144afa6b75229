package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// votingMetrics are the voting configuration's gauges and counters.
type votingMetrics struct {
	epoch        prometheus.Gauge
	transition   prometheus.Gauge
	disagreement prometheus.Gauge
	voter        prometheus.Gauge
	voters       prometheus.Gauge
	changes      *prometheus.CounterVec
	sizeErrors   prometheus.Counter
}

func newVotingMetrics(reg prometheus.Registerer) *votingMetrics {
	f := promauto.With(reg)
	m := &votingMetrics{
		epoch: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_config_epoch",
			Help: "Epoch of this agent's committed voting configuration; it grows by one with each committed change.",
		}),
		transition: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_config_transition",
			Help: "1 while a shrink of the voting configuration is in flight (quorum needs a majority of the old and of the new voters) until the removed ordinals are confirmed gone, else 0.",
		}),
		disagreement: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_config_epoch_disagreement",
			Help: "1 while a member this agent holds alive gossips a voting configuration epoch other than this agent's, else 0.",
		}),
		voter: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_voter",
			Help: "1 while this agent is in its voting configuration (committed or in flight), 0 while it is a learner: it gossips and is probed but does not count.",
		}),
		voters: f.NewGauge(prometheus.GaugeOpts{
			Name: "peeragent_voters",
			Help: "Voters in this agent's committed voting configuration.",
		}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "peeragent_config_changes_total",
			Help: "Committed changes of the voting configuration, by kind: grow (a learner became a voter), shrink (removed voters confirmed gone).",
		}, []string{"kind"}),
		sizeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "peeragent_expected_source_errors_total",
			Help: "Errors reading the target size (the expected-size file or the StatefulSet), counted once per distinct error in a row; the last size read is kept.",
		}),
	}
	m.changes.WithLabelValues("grow")
	m.changes.WithLabelValues("shrink")
	return m
}

// setTarget records a size the source reported and wakes the voting loop.
func (a *Agent) setTarget(t Target) {
	a.target.Store(&t)
	a.log.Info("target size", "replicas", t.Replicas, "confirmed", t.Confirmed)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) sizeError(err error) {
	a.votes.sizeErrors.Inc()
	a.log.Warn("target size not read; keeping the last one", "err", err)
}

// targetSpan is the target set's ordinals: the source's size raised to
// the floor; until the source has reported one, none beyond the floor.
func (a *Agent) targetSpan() []int {
	n := a.cfg.Expected
	if t := a.target.Load(); t != nil {
		n = max(n, t.Replicas)
	}
	return a.rules.span(n)
}

// setMeta re-encodes the node metadata with the epoch.
func (a *Agent) setMeta(epoch uint64) {
	b, _ := json.Marshal(nodeMeta{Version: a.cfg.Version, Zone: a.cfg.Zone, Epoch: epoch})
	a.meta.Store(&b)
}

func (a *Agent) publishVoting(v Voting) {
	a.votes.epoch.Set(float64(v.Epoch()))
	a.votes.transition.Set(b2f(v.Next != nil))
	a.votes.voter.Set(b2f(v.IsVoter(a.self.Ordinal)))
	a.votes.voters.Set(float64(len(v.Current.Voters)))
	a.metrics.expected.Set(float64(len(a.targetSpan())))
}

// votingLoop steps the voting configuration every probe interval, when
// the target changes and when a member's state changes (so a shrink
// commits as soon as the last removed voter is seen leaving). Until the
// size source has reported a target, the configuration neither grows nor
// shrinks.
func (a *Agent) votingLoop(ctx context.Context) {
	tick := time.NewTicker(a.cfg.Timing.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.wake:
		case <-a.table.stepVoting:
		}
		a.stepVoting()
	}
}

func (a *Agent) stepVoting() {
	t := a.target.Load()
	if t == nil {
		return
	}
	aliveSince, gone := a.table.observe()
	old := a.table.currentVoting()
	if a.fresh {
		a.fresh = false
		old = a.rules.Initial(t.Replicas)
		a.log.Info("voting configuration from the first target size", "voters", old.Current.Voters)
		if err := saveVoting(a.cfg.StateFile, a.self.Set, old.Current); err != nil {
			a.log.Error("voting configuration not saved", "path", a.cfg.StateFile, "err", err)
		}
	}
	if t.Confirmed {
		// The API says no pod beyond the target exists.
		for _, o := range old.Current.Voters {
			if o >= a.cfg.OrdinalStart+t.Replicas {
				gone[o] = true
			}
		}
	}
	next := a.rules.Step(old, Observation{Now: time.Now(), Target: t.Replicas, AliveSince: aliveSince, Gone: gone})
	committed := next.Epoch() != old.Epoch()
	if committed {
		// Saved before it counts, so a restart never resumes an older one.
		if err := saveVoting(a.cfg.StateFile, a.self.Set, next.Current); err != nil {
			a.log.Error("voting configuration not saved; a restart would resume the previous one", "path", a.cfg.StateFile, "err", err)
		}
	}
	span := a.targetSpan()
	if !next.equal(a.table.currentVoting()) || !slices.Equal(span, a.table.targetOrdinals()) {
		a.table.setVoting(next, span)
	}
	a.table.setUnsized(false) // after the configuration from the target is in place
	a.publishVoting(next)
	a.votes.disagreement.Set(b2f(a.table.epochDisagreement()))
	if next.Next != nil && (old.Next == nil || !slices.Equal(old.Next.Voters, next.Next.Voters)) {
		a.log.Info("voting configuration change in flight: quorum needs a majority of both until the removed voters are confirmed gone",
			"voters", next.Current.Voters, "next", next.Next.Voters, "epoch", next.Epoch())
	}
	if !committed {
		return
	}
	kind := "grow"
	if len(next.Current.Voters) < len(old.Current.Voters) {
		kind = "shrink"
	}
	a.votes.changes.WithLabelValues(kind).Add(float64(next.Epoch() - old.Epoch()))
	a.log.Info("voting configuration committed", "kind", kind, "epoch", next.Epoch(),
		"voters", next.Current.Voters, "previous_voters", old.Current.Voters,
		"voter", next.IsVoter(a.self.Ordinal))
	a.setMeta(next.Epoch())
	if a.ml != nil {
		if err := a.ml.UpdateNode(a.cfg.Timing.TCPTimeout); err != nil {
			a.log.Warn("gossip the new epoch", "err", err)
		}
	}
}

// votingState is what StateFile holds.
type votingState struct {
	Set     string       `json:"set"`
	Current VotingConfig `json:"current"`
}

// loadVoting reads the saved voting configuration; nil when path is empty
// or the file does not exist. A file that does not parse, or belongs to
// another set, is an error: starting from the bootstrap configuration
// instead could take the agent back to a smaller set.
func loadVoting(path, set string) (*Voting, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: voting state: %w", ErrConfig, err)
	}
	var st votingState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: voting state %s: %w", ErrConfig, path, err)
	}
	if st.Set != set {
		return nil, fmt.Errorf("%w: voting state %s is for set %q, not %q", ErrConfig, path, st.Set, set)
	}
	if len(st.Current.Voters) == 0 || !slices.IsSorted(st.Current.Voters) {
		return nil, fmt.Errorf("%w: voting state %s: voters %v are not a sorted, non-empty list", ErrConfig, path, st.Current.Voters)
	}
	return &Voting{Current: st.Current}, nil
}

func saveVoting(path, set string, c VotingConfig) error {
	if path == "" {
		return nil
	}
	b, _ := json.Marshal(votingState{Set: set, Current: c})
	return writeFileAtomic(path, append(b, '\n'))
}

// ReadyStatus says whether this agent votes, for the body of a ready
// /readyz: "voter, epoch 3" or "learner, epoch 3".
func (a *Agent) ReadyStatus() string {
	v := a.table.currentVoting()
	role := "learner"
	if v.IsVoter(a.self.Ordinal) {
		role = "voter"
	}
	s := fmt.Sprintf("%s, epoch %d", role, v.Epoch())
	if v.Next != nil {
		s += ", change in flight"
	}
	return s
}
