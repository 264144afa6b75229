package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// TestMaxStalenessAgainstAPIServer: with --kube.max-staleness, peerdns
// against a real API server becomes ready and stays ready while its watch
// carries nothing for longer than the threshold; once the API server stops,
// /readyz fails within the threshold and a few seconds, and answers, still
// given, carry the Extended DNS Error Stale Answer; once the API server is
// back, the replica is ready and its answers current again.
func TestMaxStalenessAgainstAPIServer(t *testing.T) {
	cp := controlplane.StartT(t, controlplane.Options{})
	client := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	ctx := t.Context()
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", corev1.IsHeadlessService: "",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
			{Addresses: []string{"10.1.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// With --kube.read-services there are three watches, each of which
	// must be open.
	for _, extra := range [][]string{nil, {"--kube.read-services"}} {
		t.Run(strings.Join(append([]string{"watches"}, extra...), " "), func(t *testing.T) {
			checkMaxStaleness(t, cp, extra...)
		})
	}
}

func checkMaxStaleness(t *testing.T, cp *controlplane.ControlPlane, extra ...string) {
	const maxStaleness = 2 * time.Second
	var cfg config
	if _, err := newFlags(&cfg).Parse(append([]string{
		"--kubeconfig", cp.Kubeconfig(), "--dns.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0",
		"--dns.lame-duck", "0s", "--kube.max-staleness", maxStaleness.String(),
	}, extra...)); err != nil {
		t.Fatal(err)
	}
	cfg.staleAfter = time.Second // no flag; the default is 2 minutes
	runCtx, stop := context.WithCancel(context.Background())
	started := make(chan *app, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(runCtx, &cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), func(a *app) { started <- a })
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var a *app
	select {
	case a = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	readyz := "http://" + a.webServer.Addr().String() + "/readyz"
	ready := func() error {
		resp, err := http.Get(readyz)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	}
	unready := func() error {
		if ready() == nil {
			return errors.New("/readyz still 200")
		}
		return nil
	}
	// answer asks web's A records with EDNS and returns an error unless both
	// come back, with the Extended DNS Error Stale Answer when stale.
	answer := func(stale bool) error {
		m := new(dns.Msg)
		m.SetQuestion("web.default.svc.peerdns.internal.", dns.TypeA)
		m.SetEdns0(1232, false)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, a.dnsServer.Addr().String())
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			return fmt.Errorf("%s with %d answers, want NOERROR with 2", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		var ede *dns.EDNS0_EDE
		if o := r.IsEdns0(); o != nil {
			for _, opt := range o.Option {
				if e, ok := opt.(*dns.EDNS0_EDE); ok {
					ede = e
				}
			}
		}
		switch {
		case stale && (ede == nil || ede.InfoCode != dns.ExtendedErrorCodeStaleAnswer):
			return fmt.Errorf("EDE %v, want Stale Answer", ede)
		case !stale && ede != nil:
			return fmt.Errorf("EDE %v on a current answer", ede)
		}
		return nil
	}

	testtools.Eventually(t, "ready", 30*time.Second, ready)
	// A healthy watch on a cluster where nothing changes carries nothing
	// (a bookmark about once a minute): readiness holds well past the
	// threshold, and no answer is stale.
	idleUntil := time.Now().Add(3 * maxStaleness)
	for time.Now().Before(idleUntil) {
		if err := ready(); err != nil {
			t.Fatalf("idle but healthy watch: %v", err)
		}
		if err := answer(false); err != nil {
			t.Fatalf("idle but healthy watch: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}

	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	took := testtools.Eventually(t, "/readyz failing with the API server stopped", maxStaleness+5*time.Second, unready)
	t.Logf("/readyz failed %v after the API server stopped (--kube.max-staleness=%v)", took.Round(time.Millisecond), maxStaleness)
	if err := ready(); err == nil || !strings.Contains(err.Error(), "last synced") {
		t.Errorf("/readyz: %v, want the staleness named", err)
	}
	testtools.Eventually(t, "answers marked stale", 5*time.Second, func() error { return answer(true) })

	if err := cp.StartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	took = testtools.Eventually(t, "ready again with the API server back", 60*time.Second, ready)
	t.Logf("ready %v after the API server was back", took.Round(time.Millisecond))
	// Ready is within the threshold; current is more: the new watch open
	// (the reflector may first relist).
	took = testtools.Eventually(t, "answers current again", 10*time.Second, func() error { return answer(false) })
	t.Logf("answers current %v after that", took.Round(time.Millisecond))
}
