package main

import (
	"strings"
	"testing"
	"time"
)

// The generated page prints what the run measured and nothing it did not:
// no target, no verdict, no figure of another run.
func TestReportPrintsOnlyTheRun(t *testing.T) {
	runs := func(name string, qps float64, cpu time.Duration) serverRuns {
		return serverRuns{name: name, runs: []perfResult{{command: "dnsperf -s 127.0.0.1", completed: 1000, qps: qps, cpu: cpu}}}
	}
	r := &report{
		cfg:     &config{},
		machine: machine{cores: 2},
		goBench: "BenchmarkServeDNS/A/ordinal-2 \t 1704274\t 706.7 ns/op\t 0 B/op\t 0 allocs/op\n" +
			"BenchmarkServeDNS/REFUSED-2 \t 2821617\t 427.2 ns/op\t 0 B/op\t 0 allocs/op\n",
		throughput: &throughputResult{mix: &workload{name: "mix", servers: []serverRuns{
			runs("peerdns", 131980, 7*time.Millisecond), runs("CoreDNS", 29399, 30*time.Millisecond), runs(nameEcho, 151580, 6*time.Millisecond),
		}}},
		agents: &agentsResult{n: 5, coldConv: 86 * time.Millisecond, lateConv: 1220 * time.Millisecond,
			suspect: 3480 * time.Millisecond, dead: 5980 * time.Millisecond, rss: []int64{19 << 20}, idleCPU: []float64{0.004}},
	}
	page := r.markdown()
	for _, want := range []string{
		"| Query mix: peerdns vs CoreDNS | 131,980 q/s vs 29,399 q/s: 4.49× |",
		"| peeragent: killed member (3 members) declared dead by memberlist | 5.98 s |",
		"took 427 ns to 706 ns (ns/op of BenchmarkServeDNS)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"≥", "≤", "| met", "missed", "250 ns", "quarter of a microsecond", "within the run-to-run noise"} {
		if strings.Contains(page, unwanted) {
			t.Errorf("the page says %q, which this run did not measure", unwanted)
		}
	}
}
