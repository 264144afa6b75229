package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// target is a DNS server dnsperf drives.
type target struct {
	name string
	addr netip.AddrPort
	pid  int // for its CPU time; 0 when it runs inside the bench
}

// Names of the reference points in the report.
const (
	nameFixed = "miekg/dns, one fixed A"
	nameEcho  = "UDP echo (floor)"
)

// serverRuns is every dnsperf run of one workload against one server.
type serverRuns struct {
	name string
	runs []perfResult
}

func (s serverRuns) qps() float64 {
	var xs []float64
	for _, r := range s.runs {
		xs = append(xs, r.qps)
	}
	return median(xs)
}

func (s serverRuns) avgLatency() time.Duration {
	var xs []time.Duration
	for _, r := range s.runs {
		xs = append(xs, r.avgLatency)
	}
	return median(xs)
}

func (s serverRuns) cpuPerQuery() time.Duration {
	var xs []time.Duration
	for _, r := range s.runs {
		if r.cpu > 0 {
			xs = append(xs, r.cpuPerQuery())
		}
	}
	return median(xs)
}

func (s serverRuns) lost() int {
	n := 0
	for _, r := range s.runs {
		n += r.lost
	}
	return n
}

// workload is a set of runs of one dnsperf input against several servers.
type workload struct {
	name    string
	servers []serverRuns
}

func (w *workload) server(name string) *serverRuns {
	for i := range w.servers {
		if w.servers[i].name == name {
			return &w.servers[i]
		}
	}
	return nil
}

// runRounds runs spec against each target in turn, repeat times over,
// round after round, so that whatever else loads the machine meanwhile
// falls on every server alike.
func (b *bench) runRounds(ctx context.Context, name string, targets []target, spec perfSpec) (*workload, error) {
	w := &workload{name: name}
	for _, t := range targets {
		w.servers = append(w.servers, serverRuns{name: t.name})
	}
	for round := range b.cfg.repeat {
		for i, t := range targets {
			s := spec
			s.server, s.pid = t.addr, t.pid
			r, err := runPerf(ctx, s)
			if err != nil {
				return w, err
			}
			w.servers[i].runs = append(w.servers[i].runs, r)
			b.log.Info("dnsperf", "workload", name, "server", t.name, "round", round+1,
				"qps", fmt.Sprintf("%.0f", r.qps), "avg_latency", r.avgLatency, "lost", r.lost, "rcodes", r.rcodes)
		}
	}
	return w, nil
}

func (b *bench) dnsTargets() []target {
	return []target{
		{name: b.peerdns.name, addr: b.peerdns.addr, pid: b.peerdns.proc.Pid()},
		{name: b.coredns.name, addr: b.coredns.addr, pid: b.coredns.proc.Pid()},
	}
}

// throughputResult is the query mix at full speed.
type throughputResult struct {
	mix *workload
}

func (b *bench) throughput(ctx context.Context) (*throughputResult, error) {
	targets := append(b.dnsTargets(),
		target{name: nameFixed, addr: b.fixed.addr, pid: b.fixed.proc.Pid()},
		target{name: nameEcho, addr: b.echo.addr, pid: b.echo.proc.Pid()},
	)
	w, err := b.runRounds(ctx, "mix", targets, perfSpec{data: b.mixFile, clients: b.cfg.clients, duration: b.cfg.duration})
	if err != nil {
		return nil, err
	}
	return &throughputResult{mix: w}, nil
}

// latencyResult is the latency distribution at a fixed rate, half of
// CoreDNS's peak on the mix.
type latencyResult struct {
	rate      int
	peakFrom  string // where the peak came from
	servers   []serverRuns
	summaries map[string]latencySummary // every query of every run
	runP99    map[string][]time.Duration
}

func (b *bench) latency(ctx context.Context, tp *throughputResult) (*latencyResult, error) {
	res := &latencyResult{summaries: map[string]latencySummary{}, runP99: map[string][]time.Duration{}}
	if tp != nil && tp.mix.server(b.coredns.name) != nil {
		res.rate = int(tp.mix.server(b.coredns.name).qps() / 2)
		res.peakFrom = "median of the throughput runs"
	} else {
		r, err := runDnsperf(ctx, perfSpec{server: b.coredns.addr, data: b.mixFile, clients: b.cfg.clients, duration: b.cfg.duration})
		if err != nil {
			return nil, err
		}
		res.rate = int(r.qps / 2)
		res.peakFrom = "one run of the mix"
	}
	b.log.Info("latency at half CoreDNS's peak", "rate", res.rate)
	w, err := b.runRounds(ctx, "latency", b.dnsTargets(), perfSpec{data: b.mixFile, clients: b.cfg.clients, duration: b.cfg.duration, rate: res.rate, verbose: true})
	if err != nil {
		return nil, err
	}
	res.servers = w.servers
	for _, s := range w.servers {
		var all []time.Duration
		for _, r := range s.runs {
			all = append(all, r.latencies...)
			res.runP99[s.name] = append(res.runP99[s.name], summarize(r.latencies).p99)
		}
		res.summaries[s.name] = summarize(all)
		b.log.Info("latency", "server", s.name, "p50", res.summaries[s.name].p50, "p99", res.summaries[s.name].p99)
	}
	return res, nil
}
