package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/promcheck"
	"github.com/peerdns/peerdns/internal/testtools"
)

// dnsServer is peerdns or CoreDNS running as a child process.
type dnsServer struct {
	name  string
	proc  *proc.Process
	addr  netip.AddrPort // DNS, UDP and TCP
	ready string         // URL that answers 200 once the server has synced
	// metrics is peerdns's /metrics URL; empty for the others.
	metrics string
	// readyAfter is how long after the process started the ready URL first
	// answered 200 (polled every readyPoll).
	readyAfter time.Duration
}

const readyPoll = 5 * time.Millisecond

func loopback(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
}

// startPeerdns runs bin/peerdns against the kubeconfig; tag names its log.
func (b *bench) startPeerdns(kubeconfig, tag string) (*dnsServer, error) {
	ports, err := testtools.FreePorts("127.0.0.1", 2)
	if err != nil {
		return nil, err
	}
	dnsPort, webPort := ports[0], ports[1]
	s := &dnsServer{
		name:    "peerdns",
		addr:    loopback(dnsPort),
		ready:   fmt.Sprintf("http://127.0.0.1:%d/readyz", webPort),
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", webPort),
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--dns.listen-address=" + s.addr.String(),
		"--dns.zone=" + zone,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", webPort),
		"--dns.lame-duck=0s",
		"--log.level=info",
		"--log.format=json",
	}
	s.proc, err = b.procs.start("peerdns", b.cfg.peerdnsBin, args, filepath.Join(b.dir, "peerdns-"+tag+".log"))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// startCoreDNS runs CoreDNS with the kubernetes plugin against the
// kubeconfig, without a cache, and the ready plugin for readiness.
func (b *bench) startCoreDNS(kubeconfig, tag string) (*dnsServer, error) {
	ports, err := testtools.FreePorts("127.0.0.1", 2)
	if err != nil {
		return nil, err
	}
	dnsPort, readyPort := ports[0], ports[1]
	s := &dnsServer{
		name:  "CoreDNS",
		addr:  loopback(dnsPort),
		ready: fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort),
	}
	corefile := filepath.Join(b.dir, "Corefile-"+tag)
	if err := os.WriteFile(corefile, []byte(corefileText(dnsPort, readyPort, kubeconfig)), 0o600); err != nil {
		return nil, err
	}
	s.proc, err = b.procs.start("coredns", filepath.Join(b.cfg.toolsBin, "coredns"), []string{"-conf", corefile}, filepath.Join(b.dir, "coredns-"+tag+".log"))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// corefileText is CoreDNS as a cluster runs it for this zone, minus the
// cache (neither server caches; a cache in front would measure the cache)
// and minus logging: the kubernetes plugin, and ready for readiness.
func corefileText(dnsPort, readyPort int, kubeconfig string) string {
	return fmt.Sprintf(`%s:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    kubernetes %s {
        kubeconfig %s
    }
}
`, strings.TrimSuffix(zone, "."), dnsPort, readyPort, strings.TrimSuffix(zone, "."), kubeconfig)
}

// waitReady polls the server's ready URL from the moment it started until
// it answers 200, then until name answers with want addresses.
func (s *dnsServer) waitReady(ctx context.Context, timeout time.Duration, name string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		if s.proc.Exited() {
			return exitedError(s.name, s.proc)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.ready, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.readyAfter = time.Since(s.proc.Started)
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w\n%s", s.name, ctx.Err(), s.proc.Tail(20))
		case <-time.After(readyPoll):
		}
	}
	// Over TCP: a service with many endpoints does not fit in UDP.
	for {
		r, _, err := queryTCP(s.addr, name, dns.TypeA, time.Second)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(addrsOf(r)) == want {
			return nil
		}
		select {
		case <-ctx.Done():
			last := fmt.Sprint(err)
			if err == nil {
				last = answerSummary(r)
			}
			return fmt.Errorf("%s ready but %s not answered with %d addresses (last: %s)", s.name, name, want, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metric reads one sample from the server's /metrics.
func (s *dnsServer) metric(ctx context.Context, series string) (float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	m, err := promcheck.Scrape(ctx, client, s.metrics)
	if err != nil {
		return 0, err
	}
	return m.Get(series)
}

// stop ends the server (peerdns's lame duck is off).
func (s *dnsServer) stop() error { return s.proc.Stop(5 * time.Second) }

// peerdnsSynced reads, from peerdns's JSON log, the duration of its
// "endpointslices synced" line: from the start of its watch to every
// service of the initial list written to its store.
func peerdnsSynced(logPath string) (time.Duration, bool) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg      string `json:"msg"`
			Duration int64  `json:"duration"` // slog's JSON handler writes nanoseconds
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "endpointslices synced" {
			return time.Duration(line.Duration), true
		}
	}
	return 0, false
}
