package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// query is one line of a dnsperf input.
type query struct {
	name  string
	qtype uint16
}

// The query mix: per-ordinal A and SRV on the 3- and 100-endpoint services,
// in these shares (of mixSize queries, shuffled with a fixed seed).
const mixSize = 1000

var mixShares = []struct {
	what    string
	percent int
	queries func(k int) query
}{
	{"A web-N." + svcSmall + " (3 endpoints)", 45, func(k int) query { return query{fqdn(benchNamespace, svcSmall, hostname(k%3)), dns.TypeA} }},
	{"A web-N." + svcMedium + " (100 endpoints)", 45, func(k int) query { return query{fqdn(benchNamespace, svcMedium, hostname(k%100)), dns.TypeA} }},
	{"SRV _web._tcp." + svcSmall + " (3 targets)", 8, func(int) query { return query{srvName(benchNamespace, svcSmall), dns.TypeSRV} }},
	{"SRV _web._tcp." + svcMedium + " (100 targets: truncated to 512 bytes, TC)", 2, func(int) query { return query{srvName(benchNamespace, svcMedium), dns.TypeSRV} }},
}

func queryMix() []query {
	var qs []query
	for _, s := range mixShares {
		for k := range mixSize * s.percent / 100 {
			qs = append(qs, s.queries(k))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	return qs
}

// writeTextQueries writes queries in dnsperf's text format (no EDNS).
func writeTextQueries(path string, qs []query) error {
	var buf bytes.Buffer
	for _, q := range qs {
		fmt.Fprintf(&buf, "%s %s\n", q.name, dns.TypeToString[q.qtype])
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeBinaryQueries writes queries in dnsperf's -B format (each message
// with a two-byte length, as on a TCP stream), with EDNS0 and the given
// UDP size, which the text format cannot set.
func writeBinaryQueries(path string, qs []query, ednsSize uint16) error {
	return writeBinaryQueriesSized(path, qs, []uint16{ednsSize})
}

// writeBinaryQueriesSized is writeBinaryQueries with query i advertising
// sizes[i%len(sizes)]; size 0 sends no OPT record (a 512-byte client).
func writeBinaryQueriesSized(path string, qs []query, sizes []uint16) error {
	var buf bytes.Buffer
	for i, q := range qs {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.Id = uint16(i)
		m.RecursionDesired = false
		if size := sizes[i%len(sizes)]; size != 0 {
			m.SetEdns0(size, false)
		}
		wire, err := m.Pack()
		if err != nil {
			return err
		}
		buf.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire))))
		buf.Write(wire)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// perfSpec is one dnsperf run.
type perfSpec struct {
	server   netip.AddrPort
	data     string
	binary   bool // data is in -B format
	tcp      bool
	clients  int
	duration time.Duration
	rate     int  // -Q; 0: as fast as it goes
	verbose  bool // -v: collect every query's latency
	pid      int  // server process whose CPU time to measure; 0: none
	// tcpQuery, when set, replaces dnsperf by tcpLoad sending this message
	// (see tcpload.go for why).
	tcpQuery []byte
}

// runPerf runs one measurement: dnsperf, or tcpLoad where dnsperf cannot.
func runPerf(ctx context.Context, spec perfSpec) (perfResult, error) {
	if spec.tcpQuery != nil {
		return tcpLoad(ctx, spec.server, spec.tcpQuery, spec.clients, spec.duration, spec.pid)
	}
	return runDnsperf(ctx, spec)
}

// perfResult is what one dnsperf run reported.
type perfResult struct {
	command    string
	sent       int
	completed  int
	lost       int
	qps        float64
	avgLatency time.Duration
	rcodes     string // "NOERROR 123 (100.00%)"
	reqSize    int
	respSize   int
	latencies  []time.Duration // with verbose
	cpu        time.Duration   // server CPU time during the run, when pid was given
}

// cpuPerQuery is the server's CPU time per answered query.
func (r perfResult) cpuPerQuery() time.Duration {
	if r.completed == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.completed)
}

func runDnsperf(ctx context.Context, spec perfSpec) (perfResult, error) {
	args := []string{
		"-s", spec.server.Addr().String(),
		"-p", strconv.Itoa(int(spec.server.Port())),
		"-d", spec.data,
		"-c", strconv.Itoa(spec.clients),
		"-l", strconv.FormatFloat(spec.duration.Seconds(), 'f', -1, 64),
		"-t", "2",
	}
	if spec.binary {
		args = append(args, "-B")
	}
	if spec.tcp {
		args = append(args, "-m", "tcp")
	}
	if spec.rate > 0 {
		args = append(args, "-Q", strconv.Itoa(spec.rate))
	}
	if spec.verbose {
		args = append(args, "-v")
	}
	res := perfResult{command: "dnsperf " + strings.Join(args, " ")}
	// Runs end by -l; the context only guards against a hang.
	ctx, cancel := context.WithTimeout(ctx, spec.duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dnsperf", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	var cpu0 time.Duration
	if spec.pid != 0 {
		if cpu0, err = procCPU(spec.pid); err != nil {
			return res, err
		}
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("dnsperf: %w", err)
	}
	var stats bytes.Buffer
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "> ") {
			stats.WriteString(line)
			stats.WriteByte('\n')
			continue
		}
		// "> NOERROR name type 0.000123"; "> T ..." for a timeout.
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if sec, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			res.latencies = append(res.latencies, time.Duration(sec*float64(time.Second)))
		}
	}
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("%s: %w\n%s%s", res.command, err, stderr.String(), stats.String())
	}
	if spec.pid != 0 {
		cpu1, err := procCPU(spec.pid)
		if err != nil {
			return res, err
		}
		res.cpu = cpu1 - cpu0
	}
	if err := parseDnsperf(stats.String(), &res); err != nil {
		return res, fmt.Errorf("%s: %w\n%s%s", res.command, err, stderr.String(), stats.String())
	}
	return res, nil
}

// parseDnsperf reads the statistics block dnsperf prints at the end.
func parseDnsperf(out string, res *perfResult) error {
	found := 0
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		first := strings.Fields(val + " ")
		if len(first) == 0 {
			continue
		}
		var err error
		switch key {
		case "Queries sent":
			res.sent, err = strconv.Atoi(first[0])
		case "Queries completed":
			res.completed, err = strconv.Atoi(first[0])
			found++
		case "Queries lost":
			res.lost, err = strconv.Atoi(first[0])
		case "Queries per second":
			res.qps, err = strconv.ParseFloat(first[0], 64)
			found++
		case "Response codes":
			res.rcodes = val
		case "Average packet size":
			// "request 45, response 120"
			_, err = fmt.Sscanf(val, "request %d, response %d", &res.reqSize, &res.respSize)
		case "Average Latency (s)":
			var sec float64
			sec, err = strconv.ParseFloat(first[0], 64)
			res.avgLatency = time.Duration(sec * float64(time.Second))
		}
		if err != nil {
			return fmt.Errorf("parse %q: %w", line, err)
		}
	}
	if found < 2 {
		return fmt.Errorf("no statistics in dnsperf's output")
	}
	return nil
}
