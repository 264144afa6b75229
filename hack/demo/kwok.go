package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/testtools"
)

// kwokDemo is the demo without a node: a control plane whose fake node
// (kwok) marks the seed's pods Running and Ready without running them, so
// the endpointslice controller publishes them, and bin/peerdns on this
// machine answering for them. With cfg.hold it stays up until ctx ends.
func kwokDemo(ctx context.Context, cfg config, logger *slog.Logger, n *narrator, stderr io.Writer) (err error) {
	if _, err := os.Stat(cfg.peerdns); err != nil {
		return fmt.Errorf("%s not found: run `make build` first (or `make demo`, which builds it)", cfg.peerdns)
	}
	peerdnsPath, err := filepath.Abs(cfg.peerdns)
	if err != nil {
		return err
	}
	n.total = 4

	if err := n.title(ctx, "Start a control plane with a fake node"); err != nil {
		return err
	}
	n.say("etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run on 127.0.0.1, in a " +
		"temporary directory. kwok's node marks pods Running and Ready without running anything: the " +
		"StatefulSet controller and the endpointslice controller behave as in any cluster, which is all " +
		"peerdns watches.")
	cp, err := controlplane.Start(ctx, controlplane.Options{
		ToolsBin:    cfg.toolsBin,
		Controllers: true,
		Logger:      logger.With("component", "controlplane"),
	})
	if err != nil {
		return err
	}
	dir := cp.Dir()
	defer func() {
		if stopErr := cp.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
			return
		}
		fmt.Fprintf(n.out, "\nStopped the control plane and removed %s.\n", dir)
	}()
	n.note("control plane ready; its kubeconfig is %s", cp.Kubeconfig())

	if err := n.title(ctx, "Load the seed"); err != nil {
		return err
	}
	n.say("The seed is the headless Service nginx and the StatefulSet web with 2 replicas: pods web-0 and web-1, " +
		"whose per-pod names are the point of a headless service.")
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return err
	}
	if err := controlplane.LoadSeed(ctx, admin, metav1.NamespaceDefault); err != nil {
		return err
	}
	kubectl := filepath.Join(cfg.toolsBin, "kubectl")
	if _, err := os.Stat(kubectl); err == nil {
		cmd := exec.CommandContext(ctx, kubectl, "get", "statefulsets,pods,endpointslices", "-o", "wide")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig())
		if _, err := n.run(cmd, "kubectl get statefulsets,pods,endpointslices -o wide"); err != nil {
			return err
		}
	} else {
		n.note("loaded Service %s and StatefulSet %s (pods web-0, web-1) in namespace default",
			controlplane.SeedService, controlplane.SeedStatefulSet)
	}

	if err := n.title(ctx, "Start peerdns"); err != nil {
		return err
	}
	n.say("bin/peerdns runs here with a service account that may only list and watch EndpointSlices, " +
		"which is all it is given in a cluster too.")
	// peerdns gets what it is given in a cluster: list and watch
	// EndpointSlices, nothing more.
	saConfig, err := cp.ServiceAccountConfig(ctx, "peerdns", "peerdns", []rbacv1.PolicyRule{{
		APIGroups: []string{discoveryv1.GroupName},
		Resources: []string{"endpointslices"},
		Verbs:     []string{"list", "watch"},
	}})
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "peerdns.kubeconfig")
	if err := cp.WriteKubeconfig(saConfig, kubeconfig); err != nil {
		return err
	}
	ports, err := testtools.FreePorts("127.0.0.1", 2) // DNS (UDP and TCP), web
	if err != nil {
		return err
	}
	dnsPort, webPort := ports[0], ports[1]
	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))
	webAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
	// Unattended, peerdns's log would interleave with the story: it goes to
	// a file in the directory. With --hold, to the terminal, to watch.
	logPath := filepath.Join(dir, "peerdns.log")
	if cfg.hold {
		logPath = ""
	}
	p, err := startPeerdns(peerdnsPath, kubeconfig, dnsAddr, webAddr, logPath, stderr)
	if err != nil {
		return err
	}
	defer func() {
		// --dns.lame-duck=0s: it stops at once.
		if stopErr := p.Stop(30 * time.Second); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err := p.waitReady(ctx); err != nil {
		return err
	}
	n.note("peerdns is ready (its /readyz passes once it has listed the EndpointSlices): DNS on %s, metrics on http://%s/metrics", dnsAddr, webAddr)

	if err := n.title(ctx, "Ask peerdns"); err != nil {
		return err
	}
	n.say("SRV lists every ready pod of the service with its port, in ordinal order; each pod has its own A record.")
	srv := "nginx.default.svc.peerdns.internal" // the default zone
	answer, err := query(ctx, dnsAddr, srv, dns.TypeSRV)
	if err != nil {
		return fmt.Errorf("peerdns is up but did not answer SRV %s: %w", srv, err)
	}
	port := strconv.Itoa(dnsPort)
	if dig, err := exec.LookPath("dig"); err == nil {
		for _, q := range [][]string{{"SRV", srv}, {"A", "web-0." + srv}, {"A", "web-1." + srv}} {
			cmd := exec.CommandContext(ctx, dig, "@127.0.0.1", "-p", port, "+noall", "+answer", q[0], q[1])
			if _, err := n.run(cmd, shownArgs(cmd.Args)); err != nil {
				return err
			}
		}
	} else {
		n.note("dig is not installed; peerdns answered SRV %s with:\n%s", srv, answer)
	}
	if !cfg.hold {
		n.say("That is the kwok mode. On a machine that can run a node (root, `make controlplane`), `make demo` " +
			"runs the seed for real: containers, the peeragent sidecar, the cluster DNS's stub zone and quorum.")
		return nil
	}

	fmt.Fprintf(n.out, `
peerdns answers on %s (UDP and TCP). Try:
  dig @127.0.0.1 -p %s SRV %s
  dig @127.0.0.1 -p %s A web-0.%s
  dig @127.0.0.1 -p %s A web-1.%s
  curl -s http://%s/metrics | grep ^peerdns_
  kubectl --kubeconfig %s get endpointslices,pods   # if you have kubectl

Change the seed and watch the answers follow, e.g. scale to 3 replicas:
  kubectl --kubeconfig %s scale statefulset web --replicas 3

Ctrl-C stops everything.
`, dnsAddr, port, srv, port, srv, port, srv, webAddr, cp.Kubeconfig(), cp.Kubeconfig())

	select {
	case <-ctx.Done():
		fmt.Fprintln(n.out, "\nInterrupted.")
		return nil
	case <-p.Done():
		return fmt.Errorf("peerdns exited: %v", p.Err()) //nolint:errorlint // nil after a clean exit: %v prints <nil>, %w would print %!w(<nil>)
	}
}

// query asks the DNS server at addr for name and returns the answer
// section, one record a line.
func query(ctx context.Context, addr, name string, qtype uint16) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := new(dns.Client).ExchangeContext(ctx, m, addr)
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return "", fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	var b strings.Builder
	for _, rr := range r.Answer {
		fmt.Fprintf(&b, "  %s\n", rr)
	}
	return b.String(), nil
}
