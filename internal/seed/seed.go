// Package seed is the mission's scenario on a real node, as both the
// end-to-end test (test/node) and the demo (hack/demo) install it: peerdns
// from charts/peerdns behind a fixed Service address that the cluster DNS's
// stub zone forwards to, and the seed's headless Service nginx and
// StatefulSet web (test/node/testdata/seed) with charts/peeragent as its
// subchart, running this checkout's images.
package seed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/promcheck"
	"github.com/peerdns/peerdns/internal/testtools"
)

const (
	// PeerDNSIP is peerdns's Service address, fixed through the chart's
	// service.clusterIP so the cluster DNS's stub zone can forward to it.
	PeerDNSIP = "10.96.0.53"
	// StubZone is the zone peerdns serves and the cluster DNS forwards.
	StubZone = "peerdns.internal."
	// Namespace is where the seed runs.
	Namespace = "default"
	// PeerDNSNamespace is where charts/peerdns is installed.
	PeerDNSNamespace = "peerdns"
	// PeerDNSSelector selects peerdns's pods.
	PeerDNSSelector = "app.kubernetes.io/name=peerdns"

	// PeerDNSImage names this checkout's peerdns image, imported into the
	// node's containerd: no registry is reachable.
	PeerDNSImage = "localhost/peerdns/peerdns"
	// PeeragentImage names this checkout's peeragent image, imported the
	// same way.
	PeeragentImage = "localhost/peerdns/peeragent"

	// Service is the seed's headless Service, as test/node/testdata/seed
	// names it: the same as the kwok mode's (controlplane.SeedObjects).
	Service = controlplane.SeedService
	// StatefulSet is the seed's StatefulSet, named the same way.
	StatefulSet = controlplane.SeedStatefulSet
	// Selector selects the seed's pods.
	Selector = "app=" + Service
	// SvcName is the seed's Service in the stub zone's ready view.
	SvcName = Service + "." + Namespace + ".svc.peerdns.internal"
	// PeersName is the seed's Service in the peer view, which lists every
	// pod with an address, ready or not.
	PeersName = Service + "." + Namespace + ".peers.peerdns.internal"
	// WebPort is the Service's port web.
	WebPort = 80
	// GossipPort is the Service's port gossip, the agents'.
	GossipPort = 7946
	// AgentPort serves the agents' /metrics and /members.
	AgentPort = "9470"
)

// PodName is the name of the seed's pod of ordinal i.
func PodName(i int) string { return fmt.Sprintf("%s-%d", StatefulSet, i) }

// InstallSeed is the helm command line (without "helm") that installs
// chart, a copy of test/node/testdata/seed, with the peeragent image
// tagged tag.
func InstallSeed(chart, tag string) []string {
	return []string{"install", "seed", chart, "--namespace", Namespace, "--set", "peeragent.image.tag=" + tag}
}

// UpgradeSeed is the helm command line (without "helm") that upgrades the
// seed installed from chart, keeping its values but for sets
// ("replicas=5", …).
func UpgradeSeed(chart string, sets ...string) []string {
	args := []string{"upgrade", "seed", chart, "--namespace", Namespace, "--reuse-values"}
	for _, kv := range sets {
		args = append(args, "--set", kv)
	}
	return args
}

// Images are this checkout's peerdns and peeragent images, tagged tag.
func Images(tag string) []controlplane.Image {
	return []controlplane.Image{
		{Ref: PeerDNSImage + ":" + tag, Package: "./cmd/peerdns", Version: tag},
		{Ref: PeeragentImage + ":" + tag, Package: "./cmd/peeragent", Version: tag},
	}
}

// CopyCharts copies charts/peerdns to dir/peerdns, and the seed chart with
// charts/peeragent as its subchart to dir/seed, as a user would vendor it.
func CopyCharts(dir string) error {
	root, err := testtools.RepoRoot()
	if err != nil {
		return err
	}
	for src, dst := range map[string]string{
		filepath.Join(root, "charts", "peerdns"):                filepath.Join(dir, "peerdns"),
		filepath.Join(root, "test", "node", "testdata", "seed"): filepath.Join(dir, "seed"),
		filepath.Join(root, "charts", "peeragent"):              filepath.Join(dir, "seed", "charts", "peeragent"),
	} {
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			return fmt.Errorf("copy chart: %w", err)
		}
	}
	return nil
}

// HelmEnv is the environment for helm with its cache, configuration and
// data under dir, so nothing of it stays in $HOME.
func HelmEnv(dir string) []string {
	return append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HELM_DATA_HOME="+filepath.Join(dir, "data"))
}

// InstallPeerDNS is the helm command line (without "helm") that installs
// chart, a copy of charts/peerdns, with the image tagged tag: one replica
// behind PeerDNSIP.
func InstallPeerDNS(chart, tag string) []string {
	return []string{"install", "peerdns", chart, "--namespace", PeerDNSNamespace, "--create-namespace",
		"--set", "image.repository=" + PeerDNSImage, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=Never",
		"--set", "service.clusterIP=" + PeerDNSIP, "--set", "replicaCount=1"}
}

// Scrape reads the metrics of the agent at ip.
func Scrape(ctx context.Context, ip string) (promcheck.Samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return promcheck.Scrape(ctx, http.DefaultClient, "http://"+ip+":"+AgentPort+"/metrics")
}
