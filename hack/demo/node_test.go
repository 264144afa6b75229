package main

import (
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// requireNode skips the test unless this machine can run a real node, as
// test/node does (under PEERDNS_REQUIRE_TOOLS=1, as in make test, it fails
// instead).
func requireNode(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real node; skipped with -short")
	}
	bin := toolsBin(t)
	if why := thisHost(bin).nodeUnsupported(); why != "" {
		testtools.Missing(t, "cannot run a node here: %s", why)
	}
	return bin
}

// nothingLeft is the demo's last line after a node run.
var nothingLeft = regexp.MustCompile(`(?m)^Stopped the control plane and the node\. Nothing is left: .* no link (\S+), no route to (\S+), no mount under and no directory (\S+), no cgroup of the (\d+) containers seen\.$`)

// checkNothingLeft finds what the demo said it checked and checks the
// link, route, mounts and directory again from here.
func checkNothingLeft(t *testing.T, printed string) {
	t.Helper()
	m := nothingLeft.FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("output lacks %s:\n%s", nothingLeft, printed)
	}
	trace := nodeTrace{dir: m[3], node: controlplane.NodeInfo{Link: m[1], PodCIDR: m[2]}}
	if left := leftovers(trace); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestNodeDemo runs `make demo` on a real node to the end, unattended, and
// checks it exits 0 having told every step, and that nothing of the node
// is left.
func TestNodeDemo(t *testing.T) {
	bin := requireNode(t)
	var out, errOut syncBuffer
	code := run([]string{"-mode=auto", "-tools-bin=" + bin}, strings.NewReader(""), &out, &errOut)
	printed := out.String()
	if code != 0 {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, printed, errOut.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^== 11/11  Stop everything$`),
		regexp.MustCompile(`(?m)^\$ helm install seed \./seed `),
		regexp.MustCompile(`(?m)^_web\._tcp\.nginx\.default\.svc\.peerdns\.internal\.\s+\d+\s+IN\s+SRV\s+0 \d+ 80 web-0\.nginx\.default\.svc\.peerdns\.internal\.$`),
		regexp.MustCompile(`web-1 created`),
		regexp.MustCompile(`(?m)^peeragent_has_quorum 1$`),
		regexp.MustCompile(`(?m)^peeragent_expected_members 5$`),
		regexp.MustCompile(`web-1 Ready`),
		regexp.MustCompile(`(?m)^\$ helm install etcd \./etcd `),
		regexp.MustCompile(`install to a healthy 3-member etcd: `),
		regexp.MustCompile(`(?m)^_etcd-server\._tcp\.etcd\.default\.peers\.peerdns\.internal\.\s+\d+\s+IN\s+SRV\s+0 \d+ 2380 etcd-0\.etcd\.default\.peers\.peerdns\.internal\.$`),
		regexp.MustCompile(`etcd-1 reads seed=v1 again`),
	} {
		if !want.MatchString(printed) {
			t.Errorf("output lacks %s:\n%s", want, printed)
		}
	}
	checkNothingLeft(t, printed)
}

// TestNodeDemoInterrupted interrupts the demo (SIGINT, as Ctrl-C sends)
// while the seed's pods come up, and checks it exits 1 saying so, and
// leaves nothing behind.
func TestNodeDemoInterrupted(t *testing.T) {
	bin := requireNode(t)
	out := &syncBuffer{}
	var errOut syncBuffer
	codec := make(chan int, 1)
	go func() { codec <- run([]string{"-mode=node", "-tools-bin=" + bin}, strings.NewReader(""), out, &errOut) }()
	testtools.Eventually(t, "web-1 created", 5*time.Minute, func() error {
		select {
		case code := <-codec:
			t.Fatalf("demo ended (exit code %d) before web-1 was created:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
		default:
		}
		if !strings.Contains(out.String(), "web-1 created") {
			return errNotYet
		}
		return nil
	})
	// run's signal.NotifyContext has SIGINT: it cancels the demo instead
	// of ending the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-codec:
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo still running 2 minutes after SIGINT:\n%s", out.String())
	}
	printed := out.String()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(printed, "\nInterrupted: ") {
		t.Errorf("output does not say it was interrupted:\n%s", printed)
	}
	checkNothingLeft(t, printed)
}
