package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peerdns/peerdns/internal/logging"
	"github.com/peerdns/peerdns/resolver"
)

// config is everything the flags set.
type config struct {
	kubeconfig      string
	namespace       string
	dnsAddr         string
	zones           zoneList
	ttl             uint
	negativeTTL     uint
	udpSize         uint
	maxUDPSize      int
	maxTCPConns     int
	maxTCPPerClient int
	tcpIdle         time.Duration
	lameDuck        time.Duration
	webAddr         string
	log             logging.Config
	version         bool
}

// zoneList is a repeatable --dns.zone.
type zoneList struct {
	zones []string
	set   bool
}

func (z *zoneList) String() string { return strings.Join(z.zones, ",") }

func (z *zoneList) Set(v string) error {
	if !z.set {
		z.zones, z.set = nil, true // the first --dns.zone replaces the default
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			z.zones = append(z.zones, s)
		}
	}
	return nil
}

// newFlags binds the command line to cfg, with the defaults set.
func newFlags(cfg *config, out io.Writer) *flag.FlagSet {
	def := resolver.DefaultConfig()
	fs := flag.NewFlagSet("peerdns", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: peerdns [flags]\n\npeerdns answers DNS for the headless services of a Kubernetes cluster, from their EndpointSlices.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cfg.zones.zones = def.Zones
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "Path to a kubeconfig file. Empty: the in-cluster service account, then $KUBECONFIG, then ~/.kube/config.")
	fs.StringVar(&cfg.namespace, "kube.namespace", "", "Watch only this namespace (needs only a Role there). Empty: all namespaces.")
	fs.StringVar(&cfg.dnsAddr, "dns.listen-address", ":53", "Address to answer DNS on, UDP and TCP.")
	fs.Var(&cfg.zones, "dns.zone", "Zone to answer for, forward (cluster.local.) or reverse (10.in-addr.arpa.). Repeatable or comma-separated; names outside every zone are REFUSED.")
	fs.UintVar(&cfg.ttl, "dns.ttl", uint(def.TTL), "TTL in seconds of positive answers.")
	fs.UintVar(&cfg.negativeTTL, "dns.negative-ttl", uint(def.NegativeTTL), "TTL in seconds of negative answers (NXDOMAIN, NODATA) and the SOA minimum: how long caches in front may hide a name that appears.")
	fs.UintVar(&cfg.udpSize, "dns.udp-size", uint(def.UDPSize), "EDNS UDP payload size advertised to clients.")
	fs.IntVar(&cfg.maxUDPSize, "dns.max-udp-size", def.MaxUDPSize, "Largest UDP response whatever the client advertises; larger answers are truncated (TC) and retried over TCP.")
	fs.IntVar(&cfg.maxTCPConns, "dns.max-tcp-connections", 1000, "Most DNS TCP connections open at once; a new one then closes the longest-idle one, or is closed at once when none is idle.")
	fs.IntVar(&cfg.maxTCPPerClient, "dns.max-tcp-connections-per-client", 100, "Most DNS TCP connections open at once from one client address, enforced the same way, so one client cannot lock others out. Keep it above the TCP queries one forwarding DNS replica has in flight.")
	fs.DurationVar(&cfg.tcpIdle, "dns.tcp-idle-timeout", 10*time.Second, "Close a DNS TCP connection idle this long.")
	fs.DurationVar(&cfg.lameDuck, "dns.lame-duck", 5*time.Second, "On SIGTERM, keep answering this long with /readyz failing, so traffic moves away before the server stops.")
	fs.StringVar(&cfg.webAddr, "web.listen-address", ":9153", "Address to serve /metrics, /healthz and /readyz on.")
	cfg.log.RegisterFlags(fs)
	fs.BoolVar(&cfg.version, "version", false, "Print the version and exit.")
	return fs
}

func (cfg *config) resolverConfig() (resolver.Config, error) {
	if cfg.ttl > 1<<31-1 || cfg.negativeTTL > 1<<31-1 {
		return resolver.Config{}, fmt.Errorf("--dns.ttl and --dns.negative-ttl: at most %d seconds", 1<<31-1)
	}
	if cfg.udpSize < 512 || cfg.udpSize > 65535 {
		return resolver.Config{}, fmt.Errorf("--dns.udp-size %d: not in [512, 65535]", cfg.udpSize)
	}
	return resolver.Config{
		Zones:       cfg.zones.zones,
		TTL:         uint32(cfg.ttl),
		NegativeTTL: uint32(cfg.negativeTTL),
		UDPSize:     uint16(cfg.udpSize),
		MaxUDPSize:  cfg.maxUDPSize,
	}, nil
}
