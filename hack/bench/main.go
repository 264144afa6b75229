// Command bench measures peerdns and peeragent side by side with CoreDNS's
// kubernetes plugin and with the machine's limit, and writes the results as
// Markdown (docs/benchmarks.md). `make bench` runs it.
//
// It starts a real control plane (etcd and kube-apiserver) on loopback,
// loads headless Services and EndpointSlices, runs peerdns and CoreDNS
// against the same API server, and drives them with Debian's dnsperf. Every
// process it starts is stopped when it ends, on failure and on Ctrl-C too.
// Progress goes to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// config is everything the flags set.
type config struct {
	out            string
	keep           bool
	duration       time.Duration
	largeDuration  time.Duration
	repeat         int
	clients        int
	writes         int
	writeTimeout   time.Duration
	scaleServices  int
	scaleEndpoints int
	scaleBudget    time.Duration
	createWorkers  int
	agents         int
	idle           time.Duration
	peerdnsBin     string
	peeragentBin   string
	toolsBin       string
	phases         phaseSet
}

// The phases, in the order they run.
const (
	phaseGoBench     = "gobench"
	phaseThroughput  = "throughput"
	phaseLatency     = "latency"
	phaseLarge       = "large"
	phaseProgramming = "programming"
	phaseScale       = "scale"
	phaseAgents      = "agents"
)

var allPhases = []string{phaseGoBench, phaseThroughput, phaseLatency, phaseLarge, phaseProgramming, phaseScale, phaseAgents}

// phaseSet is the comma-separated --phases flag.
type phaseSet map[string]bool

func (p phaseSet) String() string {
	var on []string
	for _, name := range allPhases {
		if p[name] {
			on = append(on, name)
		}
	}
	return strings.Join(on, ",")
}

func (p phaseSet) Set(v string) error {
	clear(p)
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		known := false
		for _, n := range allPhases {
			known = known || n == name
		}
		if !known {
			return fmt.Errorf("unknown phase %q (known: %s)", name, strings.Join(allPhases, ","))
		}
		p[name] = true
	}
	return nil
}

func newFlags(cfg *config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: go run ./hack/bench [flags]\n\nMeasures peerdns and peeragent against CoreDNS and the machine's limit; writes Markdown.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	toolsBin := os.Getenv("PEERDNS_TOOLS_BIN")
	if toolsBin == "" {
		toolsBin = filepath.Join(".cache", "bin")
	}
	cfg.phases = phaseSet{}
	for _, p := range allPhases {
		cfg.phases[p] = true
	}
	fs.StringVar(&cfg.out, "out", "", "Write the Markdown report to this file. Empty: stdout.")
	fs.BoolVar(&cfg.keep, "keep", false, "Keep the working directory (logs, Corefile, query files) instead of removing it.")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "Length of each dnsperf run of the query mix and of the latency runs.")
	fs.DurationVar(&cfg.largeDuration, "large.duration", 5*time.Second, "Length of each dnsperf run of the large SRV answers.")
	fs.IntVar(&cfg.repeat, "repeat", 3, "dnsperf runs per server and workload; the report gives medians.")
	fs.IntVar(&cfg.clients, "clients", 4, "dnsperf clients (-c).")
	fs.IntVar(&cfg.writes, "programming.writes", 1000, "EndpointSlice writes timed for the programming latency.")
	fs.DurationVar(&cfg.writeTimeout, "programming.timeout", 5*time.Second, "Give up on one change not visible after this long.")
	fs.IntVar(&cfg.scaleServices, "scale.services", 10000, "Headless services created for the scale measurement.")
	fs.IntVar(&cfg.scaleEndpoints, "scale.endpoints", 10, "Endpoints per service in the scale measurement.")
	fs.DurationVar(&cfg.scaleBudget, "scale.budget", 150*time.Second, "Stop creating scale objects after this long and measure with what exists (the report says so).")
	fs.IntVar(&cfg.createWorkers, "scale.workers", 32, "Parallel creates for the scale objects.")
	fs.IntVar(&cfg.agents, "agents", 5, "peeragent processes started for the convergence measurement.")
	fs.DurationVar(&cfg.idle, "agents.idle", 10*time.Second, "Window over which the agents' idle CPU is measured.")
	fs.StringVar(&cfg.peerdnsBin, "peerdns", filepath.Join("bin", "peerdns"), "peerdns binary (make build).")
	fs.StringVar(&cfg.peeragentBin, "peeragent", filepath.Join("bin", "peeragent"), "peeragent binary (make build).")
	fs.StringVar(&cfg.toolsBin, "tools", toolsBin, "Directory with coredns, etcd and kube-apiserver (make controlplane). Default $PEERDNS_TOOLS_BIN, else .cache/bin.")
	fs.Var(cfg.phases, "phases", "Comma-separated phases to run: "+strings.Join(allPhases, ",")+".")
	return fs
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == referenceCommand {
		return serveReference(ctx, args[1:], stderr)
	}
	var cfg config
	fs := newFlags(&cfg, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.repeat < 1 || cfg.clients < 1 || cfg.writes < 1 || cfg.agents < 3 {
		fmt.Fprintln(stderr, "bench: --repeat, --clients and --programming.writes must be ≥ 1, --agents ≥ 3")
		return 2
	}
	logger := slog.New(newProgressHandler(stderr))
	b, err := newBench(&cfg, logger)
	if err != nil {
		logger.Error("bench", "err", err)
		return 1
	}
	rep, runErr := b.run(ctx)
	if cerr := b.close(); cerr != nil {
		logger.Error("clean up", "err", cerr)
		if runErr == nil {
			runErr = cerr
		}
	}
	if ctx.Err() != nil {
		logger.Error("interrupted: no report written")
		return 130
	}
	if rep != nil {
		if err := writeReport(cfg.out, rep); err != nil {
			logger.Error("write report", "err", err)
			return 1
		}
		if cfg.out != "" {
			logger.Info("report written", "path", cfg.out)
		}
	}
	if runErr != nil {
		logger.Error("bench", "err", runErr)
		return 1
	}
	return 0
}

func writeReport(path string, rep *report) error {
	text := rep.markdown()
	if path == "" {
		_, err := io.WriteString(os.Stdout, text)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newProgressHandler logs progress lines to w with the time since the start
// of the run in place of the wall clock.
func newProgressHandler(w io.Writer) slog.Handler {
	start := time.Now()
	return slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.String("t", time.Since(start).Round(100*time.Millisecond).String())
		}
		return a
	}})
}
