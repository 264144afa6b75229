package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	childproc "github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/promcheck"
	"github.com/peerdns/peerdns/internal/testtools"
)

const waitFor = 30 * time.Second

func freePort(t *testing.T) int { return testtools.FreePort(t, "127.0.0.1") }

func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testtools.Eventually(t, what, waitFor, check)
}

// serveZone answers SRV and A queries from a fixed zone on 127.0.0.1 (UDP)
// until the test ends.
func serveZone(t *testing.T, srvName string, targets map[string]int) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		switch {
		case name == dns.Fqdn(srvName) && q.Qtype == dns.TypeSRV:
			for target, port := range targets {
				resp.Answer = append(resp.Answer, &dns.SRV{
					Hdr:    dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 5},
					Target: dns.Fqdn(target), Port: uint16(port), Weight: 10,
				})
			}
		case targets[strings.TrimSuffix(name, ".")] != 0:
			if q.Qtype == dns.TypeA {
				resp.Answer = append(resp.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		default:
			resp.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(resp)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// proc is one peeragent process.
type proc struct {
	*childproc.Process
	name string
	web  string
	// client reaches web; nil: http.DefaultClient.
	client *http.Client
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCommand(t, name, exec.Command(binary, args...))
}

// startCommand starts cmd, a peeragent or a command that execs one (ip
// netns exec), and kills it when t ends.
func startCommand(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	c, err := childproc.StartCommand(name, cmd, filepath.Join(t.TempDir(), "peeragent.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: c, name: name}
	for _, a := range cmd.Args {
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			p.web = "http://" + v
		}
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, p.Tail(60))
		}
	})
	return p
}

// httpClient is the client that reaches p's web address.
func (p *proc) httpClient() *http.Client {
	if p.client == nil {
		return http.DefaultClient
	}
	return p.client
}

// signal sends sig and waits for the process to exit, returning its code.
func (p *proc) signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(waitFor):
		t.Fatalf("%s did not exit after %v", p.name, sig)
	}
	return p.ExitCode()
}

func (p *proc) get(path string) (int, string, error) {
	client := p.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(p.web + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (p *proc) members() (map[string]string, error) {
	code, body, err := p.get("/members")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/members: %d", code)
	}
	var ms []struct{ Name, State string }
	if err := json.Unmarshal([]byte(body), &ms); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = m.State
	}
	return out, nil
}

// metric returns the value of series on /metrics.
func (p *proc) metric(series string) (float64, error) {
	m, err := promcheck.Scrape(context.Background(), p.httpClient(), p.web+"/metrics")
	if err != nil {
		return 0, err
	}
	return m.Get(series)
}

func wantMembers(p *proc, want map[string]string) func() error {
	return func() error {
		got, err := p.members()
		if err != nil {
			return err
		}
		for name, state := range want {
			if got[name] != state {
				return fmt.Errorf("%s sees %v, want %v", p.name, got, want)
			}
		}
		return nil
	}
}

func wantMetric(p *proc, series string, want float64) func() error {
	return func() error {
		got, err := p.metric(series)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: %s = %v, want %v", p.name, series, got, want)
		}
		return nil
	}
}

// Three peeragent processes find each other through DNS; one is killed
// (SIGKILL) and detected as failed, one stops on SIGTERM and is seen as
// left, and the quorum follows.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	const srvName = "_gossip._tcp.web.test"
	gossip := map[string]int{}
	targets := map[string]int{}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		gossip[name] = freePort(t)
		targets[name+".web.test"] = gossip[name]
	}
	dnsAddr := serveZone(t, srvName, targets)

	procs := map[string]*proc{}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		procs[name] = startProc(t, name,
			"--node.name="+name,
			"--cluster.expected=3",
			"--cluster.label=test/web",
			fmt.Sprintf("--gossip.listen-address=127.0.0.1:%d", gossip[name]),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)),
			"--peers.srv="+srvName,
			"--peers.dns-server="+dnsAddr,
			"--peers.refresh-interval=1s",
			"--peers.refresh-min-interval=50ms",
			"--gossip.profile=local",
			"--gossip.probe-interval=200ms",
			"--gossip.probe-timeout=100ms",
			"--gossip.dead-node-reclaim-time=200ms",
			"--gossip.leave-timeout=2s",
			"--log.level=debug",
		)
	}
	all := map[string]string{"web-0": "alive", "web-1": "alive", "web-2": "alive"}
	for _, p := range procs {
		eventually(t, p.name+" ready", func() error {
			code, body, err := p.get("/readyz")
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("/readyz: %d %s", code, body)
			}
			return nil
		})
		eventually(t, p.name+" sees all", wantMembers(p, all))
		eventually(t, p.name+" has quorum", wantMetric(p, "peeragent_has_quorum", 1))
	}
	// What an operator's Prometheus sees: the exposition passes promtool's
	// linter, and a real server scrapes quorum from every member.
	promcheck.Lint(t, procs["web-0"].web+"/metrics")
	var scrape []string
	for _, p := range procs {
		scrape = append(scrape, strings.TrimPrefix(p.web, "http://"))
	}
	prom := promcheck.Start(t, scrape...)
	prom.WaitFor(t, "sum(peeragent_has_quorum)", 3, 30*time.Second)

	if code := procs["web-2"].signal(t, syscall.SIGKILL); code != -1 {
		t.Errorf("web-2 exit code after SIGKILL = %d, want -1 (killed)", code)
	}
	obs := procs["web-0"]
	eventually(t, "web-2 detected dead", wantMembers(obs, map[string]string{"web-0": "alive", "web-1": "alive", "web-2": "dead"}))
	for series, want := range map[string]float64{
		`peeragent_has_quorum`:                              1,
		`peeragent_members{state="alive"}`:                  2,
		`peeragent_members{state="dead"}`:                   1,
		`peeragent_failure_tolerance`:                       0,
		`peeragent_member_up{ordinal="2"}`:                  0,
		`peeragent_expected_members`:                        3,
		`peeragent_rejected_messages_total{reason="label"}`: 0,
	} {
		if err := wantMetric(obs, series, want)(); err != nil {
			t.Error(err)
		}
	}

	if code := procs["web-1"].signal(t, syscall.SIGTERM); code != 0 {
		t.Errorf("web-1 exit code after SIGTERM = %d, want 0", code)
	}
	eventually(t, "web-1 seen as left", wantMembers(obs, map[string]string{"web-0": "alive", "web-1": "left", "web-2": "dead"}))
	eventually(t, "quorum lost", wantMetric(obs, "peeragent_has_quorum", 0))
	prom.WaitFor(t, "sum(peeragent_has_quorum)", 0, 30*time.Second)
	if code, _, err := obs.get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz without quorum: %d %v, want 200 (liveness never depends on peers)", code, err)
	}
	if code := obs.signal(t, syscall.SIGTERM); code != 0 {
		t.Errorf("web-0 exit code after SIGTERM = %d, want 0", code)
	}
}

// A pod started above --cluster.expected, as `kubectl scale` up makes one,
// runs as a learner: it does not exit, joins, answers /readyz saying so,
// and the voter does not count it.
func TestNewOrdinalRunsAsLearner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	const srvName = "_gossip._tcp.web.test"
	gossip := map[string]int{}
	targets := map[string]int{}
	for i := range 2 {
		name := fmt.Sprintf("web-%d", i)
		gossip[name] = freePort(t)
		targets[name+".web.test"] = gossip[name]
	}
	dnsAddr := serveZone(t, srvName, targets)
	procs := map[string]*proc{}
	for i := range 2 {
		name := fmt.Sprintf("web-%d", i)
		procs[name] = startProc(t, name,
			"--node.name="+name,
			"--cluster.expected=1",
			"--cluster.source=flag",
			fmt.Sprintf("--gossip.listen-address=127.0.0.1:%d", gossip[name]),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", freePort(t)),
			"--peers.srv="+srvName,
			"--peers.dns-server="+dnsAddr,
			"--peers.refresh-min-interval=50ms",
			"--gossip.profile=local",
			"--gossip.probe-interval=200ms",
			"--gossip.probe-timeout=100ms",
		)
	}
	learner, voter := procs["web-1"], procs["web-0"]
	eventually(t, "web-1 ready as a learner", func() error {
		code, body, err := learner.get("/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, "learner") {
			return fmt.Errorf("/readyz: %d %q, want 200 saying learner", code, body)
		}
		return nil
	})
	both := map[string]string{"web-0": "alive", "web-1": "alive"}
	eventually(t, "web-0 sees web-1", wantMembers(voter, both))
	code, body, err := voter.get("/members")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/members: %d %v", code, err)
	}
	var members []struct {
		Name  string `json:"name"`
		Voter bool   `json:"voter"`
	}
	if err := json.Unmarshal([]byte(body), &members); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if want := m.Name == "web-0"; m.Voter != want {
			t.Errorf("/members shows %s voter=%v, want %v", m.Name, m.Voter, want)
		}
	}
	for p, want := range map[*proc]map[string]float64{
		voter:   {"peeragent_voter": 1, "peeragent_voters": 1, "peeragent_has_quorum": 1, `peeragent_members{state="alive"}`: 2},
		learner: {"peeragent_voter": 0, "peeragent_voters": 1, "peeragent_has_quorum": 1},
	} {
		for series, v := range want {
			eventually(t, p.name+" "+series, wantMetric(p, series, v))
		}
	}
}
