package charts_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/testtools"
)

// TestPeeragentExampleFoundThroughPeerdns installs the peeragent chart's
// example on a control plane whose controllers run its pods (kwok), runs
// peerdns with the arguments the peerdns chart renders, and asks it for the
// SRV name the example's sidecars are given: the two charts' defaults must
// agree on a name that lists every member.
func TestPeeragentExampleFoundThroughPeerdns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/peerdns and runs a control plane with controllers; skipped with -short")
	}
	helmBinary(t)
	cp := controlplane.StartT(t, controlplane.Options{Controllers: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The example with its defaults: peer view, peerdns.internal.
	example := render(t, peeragentChart, peeragentValueSets["example"])
	for obj, err := range newApplier(ctx, t, cp.AdminConfig()).apply(t, example, false) {
		t.Fatalf("apply %s: %v", obj, err)
	}
	sts := only(t, "StatefulSet", example.statefulSets)
	var srv string
	for _, a := range sts.Spec.Template.Spec.InitContainers[0].Args {
		if v, ok := strings.CutPrefix(a, "--peers.srv="); ok {
			srv = dns.Fqdn(v)
		}
	}

	// peerdns as its chart runs it, listening on loopback and reading the
	// test's API server instead of the in-cluster one.
	bin := filepath.Join(t.TempDir(), "peerdns")
	build := exec.Command("go", "build", "-o", bin, "./cmd/peerdns")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", testtools.FreePort(t, "127.0.0.1"))
	var args []string
	for _, a := range peerdnsContainer(t, render(t, peerdnsChart, "")).Args {
		switch {
		case a == "--kubeconfig=":
			a = "--kubeconfig=" + cp.Kubeconfig()
		case strings.HasPrefix(a, "--dns.listen-address="):
			a = "--dns.listen-address=" + dnsAddr
		case strings.HasPrefix(a, "--web.listen-address="):
			a = fmt.Sprintf("--web.listen-address=127.0.0.1:%d", testtools.FreePort(t, "127.0.0.1"))
		}
		args = append(args, a)
	}
	p, err := proc.Start("peerdns", bin, args, filepath.Join(t.TempDir(), "peerdns.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Logf("stop peerdns: %v\n%s", err, p.Tail(20))
		}
	})

	var want []string
	for i := range int(*sts.Spec.Replicas) {
		want = append(want, fmt.Sprintf("%s-%d.%s.%s.peers.peerdns.internal.", sts.Name, i, sts.Spec.ServiceName, releaseNamespace))
	}
	took := testtools.Eventually(t, "every member in "+srv, time.Minute, func() error {
		m := new(dns.Msg)
		m.SetQuestion(srv, dns.TypeSRV)
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
		reply, _, err := c.ExchangeContext(ctx, m, dnsAddr)
		if err != nil {
			return err
		}
		var got []string
		for _, rr := range reply.Answer {
			if s, ok := rr.(*dns.SRV); ok && s.Port == 7946 {
				got = append(got, s.Target)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s: %s, targets %q, want %q", srv, dns.RcodeToString[reply.Rcode], got, want)
		}
		return nil
	})
	t.Logf("%s lists the %d members after %v", srv, len(want), took.Round(time.Millisecond))
}
