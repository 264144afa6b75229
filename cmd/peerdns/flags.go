package main

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/cli"
	"github.com/peerdns/peerdns/resolver"
)

// config is everything the flags set.
type config struct {
	kubeconfig      string
	namespace       string
	dnsAddr         string
	zones           zoneList
	nsAddrs         zoneList // not zones, but the same repeatable list
	ttl             uint
	negativeTTL     uint
	udpSize         uint
	maxUDPSize      int
	maxTCPConns     int
	maxTCPPerClient int
	tcpIdle         time.Duration
	lameDuck        time.Duration
	webAddr         string
	webConfigFile   string
	transfer        transferFlags // transfer.go
}

// zoneList is a repeatable --dns.zone; each value may be comma-separated.
// kingpin sets the default only when the flag is not given, so the first
// --dns.zone replaces the default rather than adding to it.
type zoneList []string

func (z *zoneList) String() string { return strings.Join(*z, ",") }

func (z *zoneList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*z = append(*z, s)
		}
	}
	return nil
}

// IsCumulative tells kingpin the flag may be repeated.
func (z *zoneList) IsCumulative() bool { return true }

// newFlags binds the command line to cfg, with the defaults set.
func newFlags(cfg *config) *cli.App {
	def := resolver.DefaultConfig()
	app := cli.New("peerdns", "peerdns answers DNS for the headless services of a Kubernetes cluster, from their EndpointSlices.")
	app.Flag("kubeconfig", "Path to a kubeconfig file. Empty: the in-cluster service account, then $KUBECONFIG, then ~/.kube/config.").
		StringVar(&cfg.kubeconfig)
	app.Flag("kube.namespace", "Watch only this namespace (needs only a Role there). Empty: all namespaces.").
		StringVar(&cfg.namespace)
	app.Flag("dns.listen-address", "Address to answer DNS on, UDP and TCP.").
		Default(":53").StringVar(&cfg.dnsAddr)
	app.Flag("dns.zone", "Zone to answer for, forward (cluster.local.) or reverse (10.in-addr.arpa.). Repeatable or comma-separated; names outside every zone are REFUSED. A forward zone has at most 56 characters, so the longest names below it fit in 255 octets.").
		Default(def.Zones...).SetValue(&cfg.zones)
	app.Flag("dns.ns-address", "IP address of this server, served as the A/AAAA records of the zones' NS target ns.dns.<zone> (for reverse zones, in the first forward zone). Repeatable or comma-separated. Empty: $POD_IP, else the --dns.listen-address IP; with neither the NS target has no address.").
		SetValue(&cfg.nsAddrs)
	app.Flag("dns.ttl", "TTL in seconds of positive answers.").
		Default(strconv.FormatUint(uint64(def.TTL), 10)).UintVar(&cfg.ttl)
	app.Flag("dns.negative-ttl", "TTL in seconds of negative answers (NXDOMAIN, NODATA) and the SOA minimum: how long caches in front may hide a name that appears.").
		Default(strconv.FormatUint(uint64(def.NegativeTTL), 10)).UintVar(&cfg.negativeTTL)
	app.Flag("dns.udp-size", "EDNS UDP payload size advertised to clients.").
		Default(strconv.FormatUint(uint64(def.UDPSize), 10)).UintVar(&cfg.udpSize)
	app.Flag("dns.max-udp-size", "Largest UDP response whatever the client advertises; a larger answer is cut, with TC (the client retries over TCP) when answer records, not only additional ones, are left out.").
		Default(strconv.Itoa(def.MaxUDPSize)).IntVar(&cfg.maxUDPSize)
	app.Flag("dns.max-tcp-connections", "Most DNS TCP connections open at once; a new one then closes the longest-idle one, or is closed at once when none is idle.").
		Default("1000").IntVar(&cfg.maxTCPConns)
	app.Flag("dns.max-tcp-connections-per-client", "Most DNS TCP connections open at once from one client address, enforced the same way, so one client cannot lock others out. Keep it above the TCP queries one forwarding DNS replica has in flight.").
		Default("100").IntVar(&cfg.maxTCPPerClient)
	app.Flag("dns.tcp-idle-timeout", "Close a DNS TCP connection idle this long.").
		Default("10s").DurationVar(&cfg.tcpIdle)
	app.Flag("dns.lame-duck", "On SIGTERM, keep answering this long with /readyz failing, so traffic moves away before the server stops.").
		Default("5s").DurationVar(&cfg.lameDuck)
	addTransferFlags(app, &cfg.transfer) // transfer.go
	app.Flag("web.listen-address", "Address to serve /metrics, /healthz and /readyz on.").
		Default(":9153").StringVar(&cfg.webAddr)
	app.Flag("web.config.file", "Path to a web configuration file (the Prometheus exporter-toolkit format) enabling TLS and basic auth on every web path, probes included. Empty: plain HTTP.").
		StringVar(&cfg.webConfigFile)
	return app
}

// resolverConfig checks the flags the resolver's own checks would not
// name, and returns the resolver's Config.
func (cfg *config) resolverConfig() (resolver.Config, error) {
	const maxTTL = 1<<31 - 1 // RFC 2181 section 8
	if cfg.ttl > maxTTL {
		return resolver.Config{}, cli.Invalid("dns.ttl", "%d seconds: at most %d", cfg.ttl, maxTTL)
	}
	if cfg.negativeTTL > maxTTL {
		return resolver.Config{}, cli.Invalid("dns.negative-ttl", "%d seconds: at most %d", cfg.negativeTTL, maxTTL)
	}
	if cfg.udpSize < dns.MinMsgSize || cfg.udpSize > dns.MaxMsgSize {
		return resolver.Config{}, cli.Invalid("dns.udp-size", "%d: not in [%d, %d]", cfg.udpSize, dns.MinMsgSize, dns.MaxMsgSize)
	}
	if cfg.maxUDPSize < dns.MinMsgSize || cfg.maxUDPSize > dns.MaxMsgSize {
		return resolver.Config{}, cli.Invalid("dns.max-udp-size", "%d: not in [%d, %d]", cfg.maxUDPSize, dns.MinMsgSize, dns.MaxMsgSize)
	}
	ns, err := nsAddresses(cfg.nsAddrs, os.Getenv("POD_IP"), cfg.dnsAddr)
	if err != nil {
		return resolver.Config{}, err
	}
	return resolver.Config{
		Zones:       cfg.zones,
		NSAddresses: ns,
		TTL:         uint32(cfg.ttl),
		NegativeTTL: uint32(cfg.negativeTTL),
		UDPSize:     uint16(cfg.udpSize),
		MaxUDPSize:  cfg.maxUDPSize,
	}, nil
}
