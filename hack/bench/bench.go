package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
)

// bench is one run: its working directory, its child processes and the
// control plane and servers shared by the phases.
type bench struct {
	cfg   *config
	log   *slog.Logger
	dir   string
	procs children

	cp      *controlplane.ControlPlane
	client  kubernetes.Interface
	peerdns *dnsServer
	coredns *dnsServer
	echo    *dnsServer // reference: the UDP echo floor
	fixed   *dnsServer // reference: miekg/dns with one fixed A

	// dnsperf inputs, in dir.
	mixFile, srv100File, srv1000File string
	srv100MixedFile                  string // EDNS sizes alternating, see mixedEDNS
}

func newBench(cfg *config, logger *slog.Logger) (*bench, error) {
	for _, bin := range []string{cfg.peerdnsBin, filepath.Join(cfg.toolsBin, "coredns")} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%w (run `make controlplane build`)", err)
		}
	}
	dir, err := os.MkdirTemp("", "peerdns-bench-")
	if err != nil {
		return nil, err
	}
	logger.Info("working directory", "dir", dir, "kept", cfg.keep)
	return &bench{cfg: cfg, log: logger, dir: dir}, nil
}

// close stops everything the bench started and removes its directory.
func (b *bench) close() error {
	var errs []error
	errs = append(errs, b.procs.stopAll())
	if b.cp != nil {
		errs = append(errs, b.cp.Stop())
	}
	if !b.cfg.keep {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

func (b *bench) needsCluster() bool {
	p := b.cfg.phases
	return p[phaseThroughput] || p[phaseLatency] || p[phaseLarge] || p[phaseProgramming] || p[phaseScale]
}

// run runs the phases asked for. A failed phase is reported and the others
// go on; the error joins every failure.
func (b *bench) run(ctx context.Context) (*report, error) {
	rep := &report{cfg: b.cfg, started: time.Now(), failed: map[string]error{}}
	rep.machine = readMachine()
	rep.loadStart = loadAverage()
	var errs []error
	fail := func(phase string, err error) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		rep.failed[phase] = err
		errs = append(errs, fmt.Errorf("%s: %w", phase, err))
		b.log.Error("phase failed", "phase", phase, "err", err)
	}
	phase := func(name string, f func() error) {
		if !b.cfg.phases[name] || ctx.Err() != nil {
			return
		}
		b.log.Info("phase", "phase", name)
		start := time.Now()
		if err := f(); err != nil {
			fail(name, err)
			return
		}
		b.log.Info("phase done", "phase", name, "took", time.Since(start).Round(100*time.Millisecond))
	}

	rep.versions = b.readVersions(ctx)
	phase(phaseGoBench, func() (err error) {
		rep.goBench, err = runGoBench(ctx)
		return err
	})
	if b.needsCluster() && ctx.Err() == nil {
		if err := b.setUp(ctx, rep); err != nil {
			fail("setup", err)
		} else {
			phase(phaseThroughput, func() (err error) { rep.throughput, err = b.throughput(ctx); return err })
			phase(phaseLatency, func() (err error) { rep.latency, err = b.latency(ctx, rep.throughput); return err })
			phase(phaseLarge, func() (err error) { rep.large, err = b.large(ctx); return err })
			phase(phaseProgramming, func() (err error) { rep.programming, err = b.programming(ctx); return err })
			phase(phaseScale, func() (err error) { rep.scale, err = b.scale(ctx); return err })
		}
		if b.cp != nil {
			err := b.cp.Stop()
			b.cp = nil
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	phase(phaseAgents, func() (err error) { rep.agents, err = b.agentsPhase(ctx); return err })
	rep.finished = time.Now()
	rep.loadEnd = loadAverage()
	return rep, errors.Join(errs...)
}

// setUp starts the control plane, loads the services, starts peerdns and
// CoreDNS side by side and the reference servers, and writes the dnsperf
// inputs.
func (b *bench) setUp(ctx context.Context, rep *report) error {
	start := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{ToolsBin: b.cfg.toolsBin, Logger: b.log.With("component", "controlplane")})
	if err != nil {
		return err
	}
	b.cp = cp
	cfg := cp.AdminConfig()
	cfg.QPS = -1 // no client-side rate limit: the creates go as fast as the API server takes them
	cfg.UserAgent = "peerdns-bench"
	if b.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	b.log.Info("control plane ready", "took", time.Since(start).Round(100*time.Millisecond))
	if err := loadBenchServices(ctx, b.client); err != nil {
		return err
	}
	b.log.Info("services loaded", "namespace", benchNamespace)

	if b.peerdns, err = b.startPeerdns(cp.Kubeconfig(), "bench"); err != nil {
		return err
	}
	if b.coredns, err = b.startCoreDNS(cp.Kubeconfig(), "bench"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	var readyErrs [2]error
	for i, s := range []*dnsServer{b.peerdns, b.coredns} {
		wg.Go(func() { readyErrs[i] = s.waitReady(ctx, 60*time.Second, fqdn(benchNamespace, svcLarge, ""), 1000) })
	}
	wg.Wait()
	if err := errors.Join(readyErrs[:]...); err != nil {
		return err
	}
	b.log.Info("peerdns and CoreDNS ready", "peerdns", b.peerdns.addr, "coredns", b.coredns.addr)
	rep.agreement = b.compareAnswers()
	for _, d := range rep.agreement {
		b.log.Warn("answers differ", "detail", d)
	}
	// Memory with the handful of services, after a moment to settle.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	for _, s := range []*dnsServer{b.peerdns, b.coredns} {
		rss, hwm, err := procStatus(s.proc.Pid())
		if err != nil {
			return err
		}
		rep.smallRSS = append(rep.smallRSS, memSample{server: s.name, rss: rss, hwm: hwm})
	}

	if b.echo, err = b.startReference(ctx, kindEcho, nameEcho); err != nil {
		return err
	}
	if b.fixed, err = b.startReference(ctx, kindFixed, nameFixed); err != nil {
		return err
	}
	b.mixFile = filepath.Join(b.dir, "mix.txt")
	b.srv100File = filepath.Join(b.dir, "srv100-edns1232.bin")
	b.srv1000File = filepath.Join(b.dir, "srv1000-edns1232.bin")
	b.srv100MixedFile = filepath.Join(b.dir, "srv100-edns-mixed.bin")
	srv100 := query{srvName(benchNamespace, svcMedium), dns.TypeSRV}
	return errors.Join(
		writeTextQueries(b.mixFile, queryMix()),
		writeBinaryQueriesSized(b.srv100MixedFile, []query{srv100, srv100, srv100}, mixedEDNS),
		writeBinaryQueries(b.srv100File, []query{{srvName(benchNamespace, svcMedium), dns.TypeSRV}}, largeEDNS),
		writeBinaryQueries(b.srv1000File, []query{{srvName(benchNamespace, svcLarge), dns.TypeSRV}}, largeEDNS),
	)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
