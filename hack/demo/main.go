// Command demo is `make run`, the first thing to try: it starts a local
// Kubernetes control plane (etcd, kube-apiserver, controllers, scheduler and
// kwok's fake node, all on loopback), loads the seed (the headless Service
// nginx and the StatefulSet web with pods web-0 and web-1), runs bin/peerdns
// against it with a service account that may only list and watch
// EndpointSlices, and prints the dig commands to try. Ctrl-C stops
// everything and removes the temporary directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	peerdns  string // path of the peerdns binary
	toolsBin string
	logLevel slog.Level
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.peerdns, "peerdns", "bin/peerdns", "Path of the peerdns binary (`make build` makes bin/peerdns).")
	fs.StringVar(&cfg.toolsBin, "tools-bin", "", "Directory of etcd, kube-apiserver, ... Empty: $PEERDNS_TOOLS_BIN, else .cache/bin in the repository (`make controlplane`).")
	fs.TextVar(&cfg.logLevel, "log.level", slog.LevelInfo, "Log level of the demo itself: debug, info, warn, error.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	// Ctrl-C reaches only this process: the control plane and peerdns run
	// in process groups of their own, so they are stopped here, in order.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := demo(ctx, cfg, logger, stdout, stderr)
	switch {
	case err != nil && ctx.Err() != nil:
		// Interrupted while starting: what failed was the cancellation.
		logger.Info("interrupted", "err", err)
		return 1
	case err != nil:
		logger.Error("demo", "err", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, cfg config, logger *slog.Logger, stdout, stderr io.Writer) (err error) {
	if _, err := os.Stat(cfg.peerdns); err != nil {
		return fmt.Errorf("%s not found: run `make build` first (or `make run`, which builds it)", cfg.peerdns)
	}
	peerdnsPath, err := filepath.Abs(cfg.peerdns)
	if err != nil {
		return err
	}

	fmt.Fprintln(stdout, "Starting a local control plane (etcd, kube-apiserver, controllers, kwok) on 127.0.0.1 ...")
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
		fmt.Fprintf(stdout, "Stopped the control plane and removed %s.\n", dir)
	}()

	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return err
	}
	if err := controlplane.LoadSeed(ctx, admin, metav1.NamespaceDefault); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Loaded the seed: Service %s and StatefulSet %s (pods web-0, web-1) in namespace default.\n",
		controlplane.SeedService, controlplane.SeedStatefulSet)

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

	dnsPort, err := freeDNSPort()
	if err != nil {
		return err
	}
	webPort, err := freePort()
	if err != nil {
		return err
	}
	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))
	webAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
	p, err := startPeerdns(peerdnsPath, kubeconfig, dnsAddr, webAddr, stderr)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping peerdns (it keeps answering through its lame-duck period first) ...")
		// peerdns keeps answering through its lame-duck period (5 s by
		// default) before it stops.
		if stopErr := p.stop(30 * time.Second); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err := p.waitReady(ctx); err != nil {
		return err
	}

	srv := "nginx.default.svc.cluster.local"
	answer, err := query(ctx, dnsAddr, srv, dns.TypeSRV)
	if err != nil {
		return fmt.Errorf("peerdns is up but did not answer SRV %s: %w", srv, err)
	}
	port := strconv.Itoa(dnsPort)
	fmt.Fprintf(stdout, `
peerdns answers on %s (UDP and TCP). It says:

%s
Try:
  dig @127.0.0.1 -p %s SRV %s
  dig @127.0.0.1 -p %s A web-0.%s
  dig @127.0.0.1 -p %s A web-1.%s
  curl -s http://%s/metrics | grep ^peerdns_
  kubectl --kubeconfig %s get endpointslices,pods   # if you have kubectl

Change the seed and watch the answers follow, e.g. scale to 3 replicas:
  kubectl --kubeconfig %s scale statefulset web --replicas 3

Ctrl-C stops everything.
`, dnsAddr, answer, port, srv, port, srv, port, srv, webAddr, cp.Kubeconfig(), cp.Kubeconfig())

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nInterrupted.")
		return nil
	case <-p.done:
		return fmt.Errorf("peerdns exited: %v", p.waitErr) //nolint:errorlint // nil after a clean exit: %v prints <nil>, %w would print %!w(<nil>)
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
