package xfr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
	"github.com/peerdns/peerdns/resolver"
)

var zones = []string{"cluster.local.", "10.in-addr.arpa."}

// names are what the test asks peerdns and each secondary, which must
// answer the same.
func names(n int) []dns.Question {
	q := func(name string, t uint16) dns.Question {
		return dns.Question{Name: name, Qtype: t, Qclass: dns.ClassINET}
	}
	out := []dns.Question{
		q("cluster.local.", dns.TypeSOA), q("cluster.local.", dns.TypeNS), q("ns.dns.cluster.local.", dns.TypeA),
		q("dns-version.cluster.local.", dns.TypeTXT), q("10.in-addr.arpa.", dns.TypeSOA),
		q("web.default.svc.cluster.local.", dns.TypeA), q("web.default.svc.cluster.local.", dns.TypeSRV),
		q("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV), q("web.default.peers.cluster.local.", dns.TypeA),
		q("_http._tcp.web.default.peers.cluster.local.", dns.TypeSRV),
	}
	for i := range n {
		out = append(out,
			q(fmt.Sprintf("web-%d.web.default.svc.cluster.local.", i), dns.TypeA),
			q(fmt.Sprintf("%d.0.5.10.in-addr.arpa.", i+1), dns.TypePTR))
	}
	return out
}

// answer is a reply as the comparison sees it: rcode and answer records.
func answer(addr string, q dns.Question) (string, error) {
	m := new(dns.Msg)
	m.Question = []dns.Question{q}
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return "", err
	}
	lines := []string{dns.RcodeToString[r.Rcode]}
	for _, rr := range r.Answer {
		lines = append(lines, rr.String())
	}
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n"), nil
}

// sameAnswers is the check that secondary at addr answers every name as
// peerdns at primary does.
func sameAnswers(primary, addr string, n int) func() error {
	return func() error {
		for _, q := range names(n) {
			want, err := answer(primary, q)
			if err != nil {
				return fmt.Errorf("peerdns %s: %w", q.Name, err)
			}
			got, err := answer(addr, q)
			if err != nil {
				return fmt.Errorf("secondary %s: %w", q.Name, err)
			}
			if got != want {
				return fmt.Errorf("%s %s: secondary answers\n%s\npeerdns answers\n%s", q.Name, dns.TypeToString[q.Qtype], got, want)
			}
		}
		return nil
	}
}

func TestSecondaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane, peerdns and three secondaries")
	}
	for _, s := range secondaries {
		if _, err := os.Stat(s.bin); err != nil {
			testtools.Missing(t, "%s: %v (hack/controlplane.sh installs knot, nsd and bind9)", s.name, err)
		}
	}
	keygen, err := exec.LookPath("tsig-keygen")
	if err != nil {
		testtools.Missing(t, "tsig-keygen: %v", err)
	}
	cp := controlplane.StartT(t, controlplane.Options{})
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	peerdns := buildPeerDNS(t)

	dir := t.TempDir()
	keyText, err := exec.Command(keygen, "xfr-key").Output()
	if err != nil {
		t.Fatalf("tsig-keygen: %v", err)
	}
	keyFile := filepath.Join(dir, "xfr.key")
	if err := os.WriteFile(keyFile, keyText, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := resolver.ParseTSIGKey(string(keyText))
	if err != nil {
		t.Fatalf("the key tsig-keygen wrote: %v\n%s", err, keyText)
	}

	ctx := t.Context()
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	scale := func(n int) time.Time {
		t.Helper()
		slice := statefulSetSlice(n)
		_, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			_, err = client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	scale(3)

	for _, s := range secondaries {
		t.Run(s.name, func(t *testing.T) {
			scale(3)
			dnsPort, webPort, secPort := testtools.FreePort(t, "127.0.0.1"), testtools.FreePort(t, "127.0.0.1"), testtools.FreePort(t, "127.0.0.1")
			primary := net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))
			web := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
			startPeerDNS := func() *proc {
				pd := start(t, "peerdns", exec.Command(peerdns,
					"--kubeconfig="+cp.Kubeconfig(),
					"--dns.listen-address="+primary,
					"--web.listen-address="+strings.TrimPrefix(web, "http://"),
					"--dns.zone=cluster.local.,10.in-addr.arpa.",
					"--dns.ns-address=127.0.0.1",
					"--dns.lame-duck=0s",
					"--dns.transfer.allow=127.0.0.0/8",
					"--dns.transfer.tsig-key="+keyFile,
					"--dns.transfer.notify=127.0.0.1:"+strconv.Itoa(secPort),
				))
				testtools.Eventually(t, "peerdns ready", 30*time.Second, func() error {
					if err := pd.exited(); err != nil {
						return err
					}
					return statusOK(web + "/readyz")
				})
				return pd
			}
			pd := startPeerDNS()
			conf, err := s.writeConfig(secondaryConfig{
				Dir: filepath.Join(t.TempDir(), s.name), Port: secPort, PrimaryPort: dnsPort,
				KeyName: strings.TrimSuffix(key.Name, "."), Algorithm: strings.TrimSuffix(key.Algorithm, "."), Secret: key.Secret,
				Zones: zones,
			})
			if err != nil {
				t.Fatal(err)
			}
			sec := start(t, s.name, exec.Command(s.bin, s.args(conf)...))
			secAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(secPort))
			alive := func(check func() error) func() error {
				return func() error {
					if err := sec.exited(); err != nil {
						return err
					}
					return check()
				}
			}
			took := testtools.Eventually(t, s.name+" loads the zones by AXFR", 60*time.Second, alive(sameAnswers(primary, secAddr, 3)))
			t.Logf("measured: %s answered as peerdns %v after it started", s.name, took)
			if full := metric(t, web, `peerdns_transfers_total{result="full",type="axfr"}`) + metric(t, web, `peerdns_transfers_total{result="full",type="ixfr"}`); full < 2 {
				t.Errorf("%v full transfers for the two zones", full)
			}
			for _, n := range []int{5, 3} {
				incremental := metric(t, web, `peerdns_transfers_total{result="incremental",type="ixfr"}`)
				written := scale(n)
				testtools.Eventually(t, fmt.Sprintf("%s follows the scale to %d", s.name, n), 30*time.Second, alive(sameAnswers(primary, secAddr, n)))
				t.Logf("measured: %s answered the scale to %d endpoints %v after the EndpointSlice write", s.name, n, time.Since(written).Round(time.Millisecond))
				if got := metric(t, web, `peerdns_transfers_total{result="incremental",type="ixfr"}`); got < incremental+2 {
					t.Errorf("scale to %d: %v incremental IXFRs, want at least 2 more than %v (both zones changed)", n, got, incremental)
				}
			}
			if acked := metric(t, web, fmt.Sprintf(`peerdns_notifies_total{result="acked",secondary="127.0.0.1:%d"}`, secPort)); acked < 1 {
				t.Errorf("%v NOTIFYs acknowledged", acked)
			}

			// A restart: the serial does not go backwards (the process
			// stopped once the clock had passed its serial: see
			// resolver/serial.go), the new process's journal does not know
			// the secondary's serial, and the secondary converges by a full
			// transfer.
			before := soaSerial(t, primary)
			testtools.Eventually(t, "the clock passes the serial", 10*time.Second, func() error {
				if now := uint32(time.Now().Unix()); now <= before {
					return fmt.Errorf("serial %d, clock %d", before, now)
				}
				return nil
			})
			pd.kill(t)
			startPeerDNS() // killed when the test ends
			if after := soaSerial(t, primary); after <= before {
				t.Errorf("serial after a restart %d, before %d", after, before)
			}
			testtools.Eventually(t, s.name+" follows the restarted peerdns", 30*time.Second, alive(sameAnswers(primary, secAddr, 3)))
			if full := metric(t, web, `peerdns_transfers_total{result="full",type="axfr"}`) + metric(t, web, `peerdns_transfers_total{result="full",type="ixfr"}`); full < 1 {
				t.Errorf("%v full transfers after the restart", full)
			}
		})
	}
}

// statefulSetSlice is the EndpointSlice of StatefulSet web with n ready
// pods web-0 … web-<n-1> at 10.5.0.1 … 10.5.0.n.
func statefulSetSlice(n int) *discoveryv1.EndpointSlice {
	ready := true
	name, port, proto := "http", int32(80), corev1.ProtocolTCP
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abcde", Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", corev1.IsHeadlessService: "",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	for i := range n {
		host := fmt.Sprintf("web-%d", i)
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.5.0.%d", i+1)}, Hostname: &host,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		})
	}
	return s
}

// soaSerial is cluster.local.'s serial at addr.
func soaSerial(t *testing.T, addr string) uint32 {
	t.Helper()
	m := new(dns.Msg).SetQuestion("cluster.local.", dns.TypeSOA)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("SOA from %s: %v %v", addr, r, err)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

func statusOK(url string) error {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// metric returns the value of series (name and labels, in the exposition's
// label order) from web's /metrics; 0 when absent.
func metric(t *testing.T, web, series string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(web + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

func buildPeerDNS(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "peerdns")
	if b, err := exec.Command("go", "build", "-o", out, "github.com/peerdns/peerdns/cmd/peerdns").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// proc is a process the test started; it is killed when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func start(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// kill ends p with SIGKILL, as a crash would, and waits until it exited.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s still running 10s after SIGKILL", p.name)
	}
}

func (p *proc) exited() error {
	select {
	case <-p.done:
		return errors.New(p.name + " exited: " + p.cmd.ProcessState.String() + "\n" + p.out.String())
	default:
		return nil
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
