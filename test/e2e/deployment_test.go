package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// deployment is what the scenarios share, as the services of one cluster
// do: a control plane, peerdns reading it with a service account that may
// only list and watch EndpointSlices, and a private LAN whose gateway
// address peerdns answers on. Each scenario deploys its own StatefulSet
// (its own service name) onto it.
type deployment struct {
	client   kubernetes.Interface
	lan      *network
	agentBin string
	dnsAddr  string
	peerdns  *proc
}

// startDeployment starts it all and waits until peerdns is ready. Everything
// is stopped and removed when t ends.
func startDeployment(t *testing.T) *deployment {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs a control plane, peerdns and peeragents in network namespaces")
	}
	requireNetworking(t)
	cp := controlplane.StartT(t, controlplane.Options{})
	peerdnsBin, agentBin := buildBinaries(t)
	d := &deployment{
		client:   kubernetes.NewForConfigOrDie(cp.AdminConfig()),
		lan:      newNetwork(t),
		agentBin: agentBin,
	}

	saConfig, err := cp.ServiceAccountConfig(t.Context(), "peerdns", "peerdns", []rbacv1.PolicyRule{{
		APIGroups: []string{discoveryv1.GroupName},
		Resources: []string{"endpointslices"},
		Verbs:     []string{"list", "watch"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "peerdns.kubeconfig")
	if err := cp.WriteKubeconfig(saConfig, kubeconfig); err != nil {
		t.Fatal(err)
	}
	gw := d.lan.gateway()
	d.dnsAddr = net.JoinHostPort(gw, strconv.Itoa(testtools.FreePort(t, gw)))
	webAddr := net.JoinHostPort(gw, strconv.Itoa(testtools.FreePort(t, gw)))
	d.peerdns = startProc(t, "peerdns", "http://"+webAddr, exec.Command(peerdnsBin,
		"--kubeconfig="+kubeconfig,
		"--dns.listen-address="+d.dnsAddr,
		"--web.listen-address="+webAddr,
		"--dns.zone=cluster.local.",
		"--dns.lame-duck=0s",
	))
	testtools.Eventually(t, "peerdns ready", stepLimit, wantReady(d.peerdns, http.StatusOK))
	t.Cleanup(func() {
		if err := d.peerdns.exited(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// wantReady checks that p's /readyz answers code.
func wantReady(p *proc, code int) func() error {
	return func() error {
		got, body, err := p.get("/readyz")
		if err != nil {
			return err
		}
		if got != code {
			return fmt.Errorf("%s /readyz: %d %s, want %d", p.name, got, body, code)
		}
		return nil
	}
}

// wantMetric checks that p's sample series (as in proc.metric) is want. A
// series not exposed counts as 0, as for a labelled counter or gauge no
// code path has touched yet.
func wantMetric(p *proc, series string, want float64) func() error {
	return func() error {
		v, err := p.metric(series)
		if err != nil && !isNoSample(err) {
			return err
		}
		if v != want {
			return fmt.Errorf("%s: %s = %v, want %v", p.name, series, v, want)
		}
		return nil
	}
}

// since formats a duration measured from start for the logs.
func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }
