// Package discovery is peeragent's core: it finds a StatefulSet's peers by
// their stable DNS names, forms membership with hashicorp/memberlist,
// computes quorum against the expected cluster size, and reports it as
// metrics, a member list and change hooks. Its readiness check requires
// quorum only with Config.RequireQuorumForReady; otherwise it reports the
// first join, duplicate names and shutdown.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Agent is one member's membership sidecar. Create it with New, then call
// Run once.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	self    Identity
	admit   ExpectedSet // the names that may gossip
	rules   VotingRules
	metrics *metrics
	votes   *votingMetrics
	size    SizeSource // nil: the target is Config.Expected
	table   *membership
	finder  *peerFinder
	hooks   *hookRunner
	queue   *memberlist.TransmitLimitedQueue
	keyring *gossipKeyring // nil: no encryption
	keys    keyFiles       // the key files last applied
	names   *nameGuard
	meta    atomic.Pointer[[]byte] // nodeMeta, encoded
	proc    uint64                 // identifies this process in its views: random, never 0
	viewSeq uint64                 // the last view's sequence number; stateLoop's alone
	// target is the last size the source reported; nil until it has.
	target atomic.Pointer[Target]
	wake   chan struct{} // cap 1: the target changed
	// fresh: no saved configuration was loaded and no target seen yet;
	// the first target becomes the configuration (VotingRules.Initial).
	// Only the voting loop reads and writes it after New.
	fresh bool

	started chan struct{}
	// Set before started is closed, read-only afterwards.
	ml   *memberlist.Memberlist
	addr netip.AddrPort

	ran      atomic.Bool
	stopping atomic.Bool
	abort    atomic.Bool // tests: stop like a crash, without leaving

	joinMu  sync.Mutex
	joining map[string]bool
	joinWG  sync.WaitGroup
}

// New validates cfg, loads the gossip keys and registers the metrics. It
// binds nothing: Run does.
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	self, _ := ParseIdentity(cfg.NodeName)
	a := &Agent{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "agent"),
		self:    self,
		admit:   cfg.admitted(),
		rules:   VotingRules{Start: cfg.OrdinalStart, Floor: cfg.Expected, Stabilization: cfg.Stabilization},
		started: make(chan struct{}),
		joining: map[string]bool{},
		wake:    make(chan struct{}, 1),
		size:    cfg.Size,
		proc:    rand.Uint64() | 1,
	}
	if cfg.ExpectedFile != "" {
		a.size = &fileSize{path: cfg.ExpectedFile, interval: cfg.ExpectedFileInterval, max: cfg.MaxMembers}
	}
	voting, err := loadVoting(cfg.StateFile, self.Set)
	if err != nil {
		return nil, err
	}
	if voting == nil {
		v := a.rules.Bootstrap()
		voting = &v
		a.fresh = true
	}
	if a.size == nil {
		a.target.Store(&Target{Replicas: cfg.Expected})
	}
	a.metrics = newMetrics(cfg.Registerer, ExpectedSet{Set: self.Set, Start: cfg.OrdinalStart, N: cfg.Expected}, self)
	a.votes = newVotingMetrics(cfg.Registerer)
	a.table = newMembership(cfg.NodeName, cfg.Version, a.admit, *voting, a.targetSpan(), cfg.Timing, a.metrics)
	a.table.setUnsized(a.fresh && a.size != nil)
	a.names = newNameGuard(cfg.NodeName, cfg.Timing.SuspectTimeout)
	a.setMeta(voting.Epoch())
	a.publishVoting(*voting)
	r := cfg.Resolver
	if r == nil {
		if cfg.DNSServer != "" {
			r = NewDNSResolver(cfg.DNSServer, cfg.LookupTimeout)
		} else {
			r = NewSystemResolver()
		}
	}
	a.finder = newPeerFinder(&a.cfg, r, a.metrics, cfg.Logger.With("component", "peers"))
	a.finder.names = a.table.wantedNames
	a.hooks = newHookRunner(&a.cfg, a.metrics, cfg.Logger.With("component", "hooks"))
	a.queue = &memberlist.TransmitLimitedQueue{NumNodes: a.table.present, RetransmitMult: 4}
	if cfg.KeyringDir != "" {
		kf, err := readKeyFiles(cfg.KeyringDir, cfg.PrimaryKeyName)
		if err != nil {
			return nil, err
		}
		kr, err := memberlist.NewKeyring(kf.all, kf.primary)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		a.keyring, a.keys = &gossipKeyring{kr: kr}, kf
		a.metrics.keyring.ring.Store(a.keyring)
	}
	return a, nil
}

func (a *Agent) setString() string {
	return fmt.Sprintf("%s-%d…%s-%d", a.admit.Set, a.admit.Start, a.admit.Set, a.admit.Start+a.admit.N-1)
}

// Started is closed once memberlist listens; Addr is valid from then on.
func (a *Agent) Started() <-chan struct{} { return a.started }

// Addr is the gossip address other members reach this one at.
func (a *Agent) Addr() netip.AddrPort { return a.addr }

// Members lists the expected set in ordinal order, with each name's state.
func (a *Agent) Members() []Member { return a.table.snapshot() }

// Quorum is the current quorum standing.
func (a *Agent) Quorum() Quorum { return a.table.currentQuorum() }

// Startup reports nil once this member has joined the cluster: another
// member answered this agent's own probe (at once when N is 1). Once nil it
// stays nil; it is meant for a startup probe, so that the containers after
// the sidecar start only when the agent has heard from a peer. So while
// every other member is down it never reports nil: behind that probe, a
// sole survivor that restarts cannot start its database.
func (a *Agent) Startup() error {
	select {
	case <-a.started:
	default:
		return errors.New("gossip not started")
	}
	if !a.table.joined() {
		return errors.New("not joined: no other member has answered this agent's probes yet")
	}
	return nil
}

// Ready reports nil once this member has joined the cluster (as Startup)
// while no other live process claims its name and, with
// RequireQuorumForReady, while quorum holds. It fails from the moment
// shutdown begins.
func (a *Agent) Ready() error {
	if err := a.Startup(); err != nil {
		return err
	}
	if a.stopping.Load() {
		return errors.New("shutting down")
	}
	if a.table.isDuplicated() {
		return fmt.Errorf("another live process claims the name %s", a.cfg.NodeName)
	}
	if a.cfg.RequireQuorumForReady {
		if q := a.table.currentQuorum(); !q.Has {
			return fmt.Errorf("no quorum: %s", q)
		}
	}
	return nil
}

// StartupHandler answers 200 once Startup reports nil, else 503 with the
// reason: a startup probe for the containers that follow the sidecar.
func (a *Agent) StartupHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := a.Startup(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// MembersHandler serves Members as JSON.
func (a *Agent) MembersHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Members())
	})
}

func (a *Agent) memberlistConfig() *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = a.cfg.NodeName
	host, port, _ := splitBind(a.cfg.BindAddr)
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = host, port, port
	if a.cfg.AdvertiseAddr != "" {
		ip, aport, _ := splitAdvertise(a.cfg.AdvertiseAddr)
		mc.AdvertiseAddr = ip
		if aport != 0 {
			mc.AdvertisePort = aport
		}
	} else if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		mc.AdvertiseAddr = host
	}
	t := a.cfg.Timing
	mc.ProbeInterval = t.ProbeInterval
	mc.ProbeTimeout = t.ProbeTimeout
	mc.SuspicionMult = t.SuspicionMult
	mc.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	mc.GossipInterval = t.GossipInterval
	mc.GossipNodes = t.GossipNodes
	mc.PushPullInterval = t.PushPullInterval
	mc.TCPTimeout = t.TCPTimeout
	mc.GossipToTheDeadTime = t.GossipToTheDeadTime
	mc.DeadNodeReclaimTime = t.DeadNodeReclaimTime
	mc.Label = a.cfg.Label
	if a.keyring != nil {
		mc.Keyring = a.keyring.kr
	}
	d := delegates{a: a}
	mc.Delegate, mc.Events, mc.Alive, mc.Conflict, mc.Ping = d, d, d, d, d
	mc.LogOutput = nil
	mc.Logger = log.New(&memberlistLog{
		logger:  a.cfg.Logger.With("component", "memberlist"),
		observe: a.classifyLog,
	}, "", 0)
	return mc
}

// Run starts gossip and keeps finding and joining peers until ctx is done.
// Then it turns unready, stops its loops (waiting for a probe in flight),
// lets an OnChange run in progress finish (for up to OnChangeShutdownGrace),
// announces its leave, leaves gracefully and shuts memberlist down, the
// leave and the joins in flight bounded by LeaveTimeout together. It
// returns an error only if
// gossip could not start.
func (a *Agent) Run(ctx context.Context) error {
	if a.ran.Swap(true) {
		return errors.New("agent: Run called twice")
	}
	mc := a.memberlistConfig()
	if a.cfg.wrapTransport != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger,
		})
		if err != nil {
			return fmt.Errorf("start gossip: %w", err)
		}
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = nt.GetAutoBindPort()
		}
		mc.Transport = a.cfg.wrapTransport(nt)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start gossip: %w", err)
	}
	local := ml.LocalNode()
	ip, _ := netip.AddrFromSlice(local.Addr)
	a.ml, a.addr = ml, netip.AddrPortFrom(ip.Unmap(), local.Port)
	a.finder.ipv6 = ip.Unmap().Is6()
	if a.finder.port == 0 {
		a.finder.port = local.Port
	}
	a.names.setAddr(a.addr.String())
	close(a.started)
	if a.keyring == nil && (a.cfg.Expected > 1 || a.size != nil) {
		a.log.Warn("gossip is not encrypted: anyone who can reach the gossip port can join, read the membership and forge messages; set a keyring directory")
	}
	v := a.table.currentVoting()
	a.log.Info("gossip started", "node", a.cfg.NodeName, "address", a.addr,
		"voters", v.Current.Voters, "epoch", v.Epoch(), "voter", v.IsVoter(a.self.Ordinal),
		"encrypted", a.keyring != nil, "label", a.cfg.Label)

	loopCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.discoverLoop(loopCtx) })
	wg.Go(func() { a.probeLoop(loopCtx) })
	wg.Go(func() { a.stateLoop(loopCtx) })
	wg.Go(func() { a.votingLoop(loopCtx) })
	if a.size != nil {
		wg.Go(func() { a.size.Run(loopCtx, a.setTarget, a.sizeError) })
	}
	if a.hooks.enabled() {
		wg.Go(func() { a.hooks.run(loopCtx) })
	}
	if a.cfg.ReapChildren {
		wg.Go(func() { reapChildren(loopCtx, a.log) })
	}
	if a.keyring != nil {
		wg.Go(func() { a.keyringLoop(loopCtx) })
	}

	<-ctx.Done()
	a.stopping.Store(true)
	a.metrics.ready.Set(0)
	cancel()
	wg.Wait()
	deadline := time.Now().Add(a.cfg.LeaveTimeout)
	if a.abort.Load() {
		_ = ml.Shutdown()
		a.waitJoins(deadline)
		return nil
	}
	a.leave(ml, deadline)
	if err := ml.Shutdown(); err != nil {
		a.log.Warn("gossip shutdown", "err", err)
	}
	a.waitJoins(deadline)
	a.log.Info("gossip stopped")
	return nil
}

// leave tells every member this one is going, so they record it as left
// rather than failed, then leaves through memberlist, unless a witness
// holds another process under this agent's name (nameGuard.isDisplaced). (memberlist does mark
// a self-announced dead node left internally, but hands the delegate the
// same Node either way, so the agent announces its leave itself.)
func (a *Agent) leave(ml *memberlist.Memberlist, deadline time.Time) {
	data, _ := json.Marshal(leaveMsg{Name: a.cfg.NodeName, Addr: a.addr.String()})
	msg := append([]byte{msgLeave}, data...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range a.table.snapshot() {
		if m.Name == a.cfg.NodeName || !m.State.present() {
			continue
		}
		ap, err := netip.ParseAddrPort(m.Address)
		if err != nil {
			continue
		}
		// A Node of our own: the ones ml.Members() returns are memberlist's
		// live records, which it keeps writing to.
		n := &memberlist.Node{Name: m.Name, Addr: ap.Addr().AsSlice(), Port: ap.Port()}
		wg.Go(func() {
			if err := ml.SendReliable(n, msg); err != nil {
				a.log.Debug("announce leave", "member", n.Name, "err", err)
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.cfg.LeaveTimeout / 2):
		a.log.Warn("announcing the leave timed out; some members will see this one as failed")
	}
	if a.names.isDisplaced() {
		// memberlist's leave is a dead message naming the member, not its
		// address: the others would take it as the leave of the process
		// they hold under this name, which is another one.
		a.log.Warn("not leaving through memberlist: another live process holds this member's name at the other members")
		return
	}
	if err := ml.Leave(time.Until(deadline)); err != nil {
		a.log.Warn("leave", "err", err)
	} else {
		a.log.Info("left the cluster")
	}
}

// waitJoins waits for the joins in flight until deadline at the latest.
// One still dialling or waiting for its peer's state then ends on its own
// within Timing.TCPTimeout (memberlist's Join takes no context), after Run
// has returned.
func (a *Agent) waitJoins(deadline time.Time) {
	done := make(chan struct{})
	go func() { a.joinWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
	}
}

// jitter spreads d by ±20% so agents started together do not query DNS and
// join in lock-step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// discoverLoop looks peers up and joins the expected ones memberlist does not
// hold at the address DNS gives. While some are missing it retries from
// RefreshMinInterval, doubling up to max(RefreshInterval/4,
// RefreshMinInterval); once all are there, it refreshes every
// RefreshInterval. Every delay gets ±20% jitter.
func (a *Agent) discoverLoop(ctx context.Context) {
	backoff := a.cfg.RefreshMinInterval
	missingCap := max(a.cfg.RefreshInterval/4, a.cfg.RefreshMinInterval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		named := a.finder.named()
		peers := a.finder.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		if !named && a.finder.named() {
			a.table.notify() // the hooks can now show DNS names
		}
		a.joinPeers(peers)
		next := a.cfg.RefreshInterval
		if a.missing() {
			next = backoff
			backoff = min(backoff*2, missingCap)
		} else {
			backoff = a.cfg.RefreshMinInterval
		}
		timer.Reset(jitter(next))
	}
}

// missing reports whether a voter or a member of the target set, other
// than this one, is neither alive nor suspect.
func (a *Agent) missing() bool {
	for _, name := range a.table.wantedNames() {
		if st, _ := a.table.stateOf(name); name != a.cfg.NodeName && !st.present() {
			return true
		}
	}
	return false
}

func (a *Agent) joinPeers(peers map[string]peer) {
	for name, p := range peers {
		if a.table.held(name, p.Addr.String()) {
			continue
		}
		a.joinMu.Lock()
		busy := a.joining[name]
		a.joining[name] = true
		a.joinMu.Unlock()
		if busy {
			continue
		}
		a.joinWG.Go(func() {
			defer func() {
				a.joinMu.Lock()
				delete(a.joining, name)
				a.joinMu.Unlock()
			}()
			if a.stopping.Load() {
				return
			}
			if _, err := a.ml.Join([]string{p.Addr.String()}); err != nil {
				a.metrics.joins.WithLabelValues("failure").Inc()
				a.log.Debug("join failed", "peer", p.Name, "address", p.Addr, "err", err)
				return
			}
			a.metrics.joins.WithLabelValues("success").Inc()
			a.log.Debug("joined", "peer", p.Name, "address", p.Addr)
		})
	}
}

// probeLoop pings every member each probe interval, and at once when a
// member joins (all pairs: N-1 pings per agent and interval, N(N-1) in the
// cluster), so a member counts as alive only once it answered this
// agent directly, and a silent one turns suspect. It also checks for
// another process claiming this agent's name, and samples memberlist's
// health score.
//
// workaround: memberlist keeps its suspect state to itself (Members()
// lists suspect nodes as alive, and no delegate reports suspicion), and a
// member it learns from another member's gossip is alive at once. These
// pings are this agent's own evidence; memberlist's own probes feed the
// same table through NotifyPingComplete.
func (a *Agent) probeLoop(ctx context.Context) {
	tick := time.NewTicker(a.cfg.Timing.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.table.probe:
		}
		var wg sync.WaitGroup
		for _, m := range a.table.snapshot() {
			if m.Name == a.cfg.NodeName || !m.State.present() {
				continue
			}
			udp, err := net.ResolveUDPAddr("udp", m.Address)
			if err != nil {
				continue
			}
			wg.Go(func() {
				// workaround: memberlist's Ping reads its clock after the
				// send returns, so an ack that arrives first yields a
				// negative round trip; time the whole call instead.
				sent := time.Now()
				if _, err := a.ml.Ping(m.Name, udp); err == nil {
					a.table.ack(m.Name, m.Address, time.Since(sent))
				}
			})
		}
		wg.Go(func() { a.table.setDuplicated(a.names.check(a.ml)) })
		wg.Wait()
		a.table.checkSuspects()
		a.metrics.healthScore.Set(float64(a.ml.GetHealthScore()))
	}
}

// stateLoop reacts to membership changes: it gossips this agent's view,
// debounces the member list for the hooks and keeps the ready gauge.
func (a *Agent) stateLoop(ctx context.Context) {
	viewTick := time.NewTicker(a.cfg.Timing.ViewInterval)
	defer viewTick.Stop()
	st := newSettler(a.cfg.settleTime())
	defer st.timer.Stop()
	var lastHash uint64
	var sentOnce bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.table.changed:
			v := a.table.currentView()
			if !sentOnce || v.Hash != lastHash {
				a.broadcastView(v)
				lastHash, sentOnce = v.Hash, true
			}
			if a.hooks.enabled() && a.table.joined() && a.finder.named() {
				st.observe(hookInput{members: a.memberList(), quorum: a.table.currentQuorum()})
			}
			a.metrics.ready.Set(b2f(a.Ready() == nil))
		case <-viewTick.C:
			v := a.table.currentView()
			a.broadcastView(v)
			lastHash, sentOnce = v.Hash, true
		case <-st.timer.C:
			if in, ok := st.fire(); ok {
				a.hooks.offer(in)
			}
		}
	}
}

func (a *Agent) broadcastView(v view) {
	a.viewSeq++
	a.queue.QueueBroadcast(viewBroadcast(encodeView(viewMsg{
		Name: a.cfg.NodeName, Hash: v.Hash, Members: v.Members,
		Proc: a.proc, Seq: a.viewSeq, Sent: time.Now().UnixNano(),
	})))
}

// memberList is what the hooks see: the DNS name (or node name) of every
// member memberlist holds, alive or suspect, in ordinal order.
func (a *Agent) memberList() []string {
	var out []string
	for _, m := range a.table.snapshot() {
		if m.State.present() {
			out = append(out, a.finder.dnsName(m.Name))
		}
	}
	return out
}

// keyringLoop re-reads the key files and applies changes to the live
// keyring; a change that fails to apply, or leaves the ring different from
// the files, is applied again at the next tick.
func (a *Agent) keyringLoop(ctx context.Context) {
	tick := time.NewTicker(a.cfg.KeyringReloadInterval)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		kf, err := readKeyFiles(a.cfg.KeyringDir, a.cfg.PrimaryKeyName)
		if err == nil && kf.equal(a.keys) {
			lastErr = ""
			continue
		}
		msg := "gossip keyring not reloaded; keeping the installed keys"
		if err == nil {
			err = a.keyring.apply(kf)
			msg = "gossip keyring does not match the key files; retrying at the next reload"
		}
		if err != nil {
			if err.Error() != lastErr {
				lastErr = err.Error()
				a.metrics.keyringReloads.WithLabelValues("failure").Inc()
				a.log.Error(msg, "err", err)
			}
			continue
		}
		lastErr = ""
		a.keys = kf
		a.metrics.keyringReloads.WithLabelValues("success").Inc()
		a.log.Info("gossip keyring reloaded", "keys", len(kf.all), "primary", fingerprint(kf.primary))
	}
}
