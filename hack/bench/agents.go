package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/promcheck"
	"github.com/peerdns/peerdns/internal/testtools"
)

// The agents run on loopback, agent i on 127.0.0.<agentHostBase+i>, all on
// one gossip port, and find each other through per-ordinal names served by
// peerDNS below: the API server rejects loopback addresses in
// EndpointSlices, so peerdns cannot serve them.
const (
	agentSet      = "web"
	agentDomain   = "web.bench.test."
	agentHostBase = 20
)

func agentAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(agentHostBase + i)}) }

// peerDNS answers A queries for <set>-<i>.<domain> with agentAddr(i) for
// i < n, once enabled; NXDOMAIN otherwise, as for a pod not there yet.
type peerDNS struct {
	srv     *dns.Server
	pc      net.PacketConn
	n       int
	enabled atomic.Bool
}

func startPeerDNS(n int) (*peerDNS, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("agents' dns: %w", err)
	}
	p := &peerDNS{pc: pc, n: n}
	started := make(chan struct{})
	p.srv = &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(p.serveDNS)}
	errc := make(chan error, 1)
	go func() { errc <- p.srv.ActivateAndServe() }()
	select {
	case <-started:
		return p, nil
	case err := <-errc:
		pc.Close()
		return nil, fmt.Errorf("agents' dns: %w", err)
	}
}

func (p *peerDNS) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Rcode = dns.RcodeNameError
	if len(r.Question) == 1 && p.enabled.Load() {
		q := r.Question[0]
		host, domain, _ := strings.Cut(dns.CanonicalName(q.Name), ".")
		ord, err := strconv.Atoi(strings.TrimPrefix(host, agentSet+"-"))
		if domain == agentDomain && strings.HasPrefix(host, agentSet+"-") && err == nil && ord >= 0 && ord < p.n {
			m.Rcode = dns.RcodeSuccess
			if q.Qtype == dns.TypeA {
				m.Answer = []dns.RR{&dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
					A:   agentAddr(ord).AsSlice(),
				}}
			}
		}
	}
	// A reply that cannot be sent is lost, as a dropped datagram would be:
	// the agent asks again at its next refresh.
	_ = w.WriteMsg(m)
}

func (p *peerDNS) addr() string { return p.pc.LocalAddr().String() }

// close stops the server. miekg/dns's Shutdown fails only for a server that
// never started, and a peerDNS exists only once it has.
func (p *peerDNS) close() { _ = p.srv.Shutdown() }

// agent is one running peeragent.
type agent struct {
	proc    *proc.Process
	metrics string // its /metrics URL
}

// agentsResult is the peeragent measurements.
type agentsResult struct {
	version  string
	n        int
	coldConv time.Duration // names resolvable from the start: first start → all see n alive
	lateConv time.Duration // names appear lateAfter after the start → all see n alive
	lateWait time.Duration
	rss      []int64       // each agent after converging and idling
	idleCPU  []float64     // each agent's share of one core over the idle window
	idle     time.Duration // the idle window
	suspect  time.Duration // kill → every survivor counts the killed member not alive
	dead     time.Duration // kill → every survivor shows it dead
	profile  string
}

const agentLateAfter = 3 * time.Second

func (b *bench) agentsPhase(ctx context.Context) (*agentsResult, error) {
	if _, err := os.Stat(b.cfg.peeragentBin); err != nil {
		return nil, fmt.Errorf("%w (make build)", err)
	}
	res := &agentsResult{n: b.cfg.agents, idle: b.cfg.idle, lateWait: agentLateAfter, profile: "lan (the default)"}
	if out, err := runOutput(ctx, b.cfg.peeragentBin, "--version"); err == nil {
		res.version = firstLine(out)
	}
	dnsSrv, err := startPeerDNS(b.cfg.agents)
	if err != nil {
		return nil, err
	}
	defer dnsSrv.close()
	ports, err := testtools.FreePorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	port := ports[0]

	// 1. Names resolvable before the agents start.
	dnsSrv.enabled.Store(true)
	agents, err := b.startAgents(b.cfg.agents, port, dnsSrv.addr(), "cold")
	if err != nil {
		return nil, err
	}
	first := agents[0].proc.Started
	if err := waitAgents(ctx, agents, "alive", b.cfg.agents, 30*time.Second); err != nil {
		return nil, err
	}
	res.coldConv = time.Since(first)
	b.log.Info("agents converged, names resolvable from the start", "agents", b.cfg.agents, "took", res.coldConv.Round(time.Millisecond))
	if err := stopAgents(agents); err != nil {
		return nil, err
	}

	// 2. Names that appear after the agents started; then idle.
	dnsSrv.enabled.Store(false)
	if agents, err = b.startAgents(b.cfg.agents, port, dnsSrv.addr(), "late"); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, agentLateAfter); err != nil {
		return nil, err
	}
	dnsSrv.enabled.Store(true)
	resolvable := time.Now()
	if err := waitAgents(ctx, agents, "alive", b.cfg.agents, 30*time.Second); err != nil {
		return nil, err
	}
	res.lateConv = time.Since(resolvable)
	b.log.Info("agents converged after their names appeared", "agents", b.cfg.agents, "took", res.lateConv.Round(time.Millisecond))
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	cpu0 := make([]time.Duration, len(agents))
	for i, a := range agents {
		if cpu0[i], err = procCPU(a.proc.Pid()); err != nil {
			return nil, err
		}
	}
	idleStart := time.Now()
	if err := sleepCtx(ctx, b.cfg.idle); err != nil {
		return nil, err
	}
	window := time.Since(idleStart)
	for i, a := range agents {
		cpu, err := procCPU(a.proc.Pid())
		if err != nil {
			return nil, err
		}
		rss, _, err := procStatus(a.proc.Pid())
		if err != nil {
			return nil, err
		}
		res.idleCPU = append(res.idleCPU, float64(cpu-cpu0[i])/float64(window))
		res.rss = append(res.rss, rss)
	}
	b.log.Info("agents idle", "rss_mb", fmt.Sprint(mbs(res.rss)), "cpu_percent", fmt.Sprint(percents(res.idleCPU)))
	if err := stopAgents(agents); err != nil {
		return nil, err
	}

	// 3. Three members; one killed.
	if agents, err = b.startAgents(3, port, dnsSrv.addr(), "kill"); err != nil {
		return nil, err
	}
	if err := waitAgents(ctx, agents, "alive", 3, 30*time.Second); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	killed := time.Now()
	if err := agents[2].proc.Kill(); err != nil {
		return nil, err
	}
	survivors := agents[:2]
	if err := waitAgents(ctx, survivors, "alive", 2, 30*time.Second); err != nil {
		return nil, err
	}
	res.suspect = time.Since(killed)
	if err := waitAgents(ctx, survivors, "dead", 1, 60*time.Second); err != nil {
		return nil, err
	}
	res.dead = time.Since(killed)
	b.log.Info("killed member detected", "not_alive_after", res.suspect.Round(time.Millisecond), "dead_after", res.dead.Round(time.Millisecond))
	return res, stopAgents(survivors)
}

// startAgents starts n agents of an expected set of n.
func (b *bench) startAgents(n, port int, dnsAddr, tag string) ([]*agent, error) {
	var agents []*agent
	webs, err := testtools.FreePorts("127.0.0.1", n)
	if err != nil {
		return nil, err
	}
	for i, web := range webs {
		gossip := netip.AddrPortFrom(agentAddr(i), uint16(port)).String()
		args := []string{
			"--node.name=" + fmt.Sprintf("%s-%d", agentSet, i),
			"--cluster.expected=" + strconv.Itoa(n),
			"--gossip.listen-address=" + gossip,
			"--gossip.advertise-address=" + gossip,
			"--peers.domain=" + strings.TrimSuffix(agentDomain, "."),
			"--peers.port=" + strconv.Itoa(port),
			"--peers.dns-server=" + dnsAddr,
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", web),
			"--log.level=info",
		}
		name := fmt.Sprintf("peeragent-%s-%d", tag, i)
		p, err := b.procs.start(name, b.cfg.peeragentBin, args, filepath.Join(b.dir, name+".log"))
		if err != nil {
			return nil, errors.Join(err, stopAgents(agents))
		}
		agents = append(agents, &agent{proc: p, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", web)})
	}
	return agents, nil
}

func stopAgents(agents []*agent) error {
	var errs []error
	for _, a := range agents {
		errs = append(errs, a.proc.Stop(10*time.Second))
	}
	return errors.Join(errs...)
}

// waitAgents polls every agent's peeragent_members{state} until each
// reports want.
func waitAgents(ctx context.Context, agents []*agent, state string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		all := true
		var last string
		for _, a := range agents {
			if a.proc.Exited() {
				return exitedError(a.proc.Name, a.proc)
			}
			got, err := membersGauge(ctx, client, a.metrics, state)
			if err != nil || got != want {
				all = false
				last = fmt.Sprintf("%s: %s=%d (%v)", a.proc.Name, state, got, err)
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agents never all reported %s=%d: %s\n%s", state, want, last, agents[0].proc.Tail(10))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// membersGauge reads peeragent_members{state="<state>"} from /metrics.
func membersGauge(ctx context.Context, client *http.Client, url, state string) (int, error) {
	m, err := promcheck.Scrape(ctx, client, url)
	if err != nil {
		return 0, err
	}
	v, err := m.Get(`peeragent_members{state="` + state + `"}`)
	return int(v), err
}

func mbs(xs []int64) []int64 {
	var out []int64
	for _, x := range xs {
		out = append(out, x>>20)
	}
	return out
}

func percents(xs []float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.2f%%", 100*x))
	}
	return out
}
