package main

import (
	"cmp"
	"fmt"
	"net"
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
	readServices    bool
	maxStaleness    time.Duration
	staleAfter      time.Duration // not a flag: tests shorten it; 0 is the resolver's default
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
	nsid            string
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
	app.Flag("kube.read-services", "Also list and watch Services, to serve the EndpointSlices of selectorless headless Services (their slices carry no service.kubernetes.io/headless label). Without it only slices with that label are served: those of headless Services with a selector.").
		BoolVar(&cfg.readServices)
	app.Flag("kube.max-staleness", "Fail /readyz once the records served have not been known to match the API server for this long, so a replica whose EndpointSlice watch is broken leaves the Service while another serves. They count as current while every watch stream is open and no request to the API server has failed since, however long an idle watch carries nothing; else since that stopped (the API server unreachable or refusing, a watch not yet reopened, a relist). An API server outage breaks every replica's watch at once. Answers to EDNS queries carry the Extended DNS Error Stale Answer after "+def.StaleAfter.String()+" of this, whatever the flag. 0: readiness does not depend on it.").
		Default("0s").DurationVar(&cfg.maxStaleness)
	app.Flag("dns.listen-address", "Address to answer DNS on, UDP and TCP. On a wildcard address (:53, 0.0.0.0:53, [::]:53) each UDP answer goes out from the address its query was sent to (Linux), so a node-local VIP or a secondary address works.").
		Default(":53").StringVar(&cfg.dnsAddr)
	app.Flag("dns.zone", "Zone to answer for, forward (peerdns.internal.) or reverse (250.10.in-addr.arpa.: only for a range whose addresses are all endpoints of headless services, as every other address in it is NXDOMAIN). Repeatable or comma-separated; names outside every zone are REFUSED. Not the root, and no zone inside another. A forward zone has at most 56 characters, so the longest names below it fit in 255 octets.").
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
	app.Flag("dns.max-tcp-connections", "Most DNS TCP connections open at once; a new one then closes the longest-idle one, or is closed at once when none is idle. NodeLocal DNSCache with force_tcp holds about one per node: 1000 serves about 1000 nodes per replica.").
		Default("1000").IntVar(&cfg.maxTCPConns)
	app.Flag("dns.max-tcp-connections-per-client", "Most DNS TCP connections open at once from one client address, enforced the same way, so one client cannot lock others out. Keep it above the TCP queries one forwarding DNS replica has in flight.").
		Default("100").IntVar(&cfg.maxTCPPerClient)
	app.Flag("dns.tcp-idle-timeout", "Close a DNS TCP connection idle this long; told to clients that send edns-tcp-keepalive (RFC 7828). Keep it above the clients' own reuse limit (10s for CoreDNS forward, NodeLocal DNSCache), so they close idle connections first.").
		Default("30s").DurationVar(&cfg.tcpIdle)
	app.Flag("dns.nsid", "Name of this replica, sent as the NSID option (RFC 5001, dig +nsid) to queries that ask for it and served as the TXT record of id.server. and hostname.bind. in class CH, so an operator can tell which replica answered. At most 255 bytes. Empty: $POD_NAME, else the host name.").
		StringVar(&cfg.nsid)
	app.Flag("dns.lame-duck", "On SIGTERM, keep answering this long with /readyz failing, so traffic moves away before the server stops.").
		Default("5s").DurationVar(&cfg.lameDuck)
	addTransferFlags(app, &cfg.transfer) // transfer.go
	app.Flag("web.listen-address", "Address to serve /metrics, /healthz and /readyz on.").
		Default(":9153").StringVar(&cfg.webAddr)
	app.Flag("web.config.file", "Path to a web configuration file (the Prometheus exporter-toolkit format) enabling TLS and basic auth on every web path, probes included. Empty: plain HTTP.").
		StringVar(&cfg.webConfigFile)
	return app
}

// checkListenAddress checks that addr is host:port with a port number, as
// net.Listen takes it; the host, when not empty, may be a name.
func checkListenAddress(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: not a number in [0, 65535]", port)
	}
	return nil
}

// resolverConfig checks the flags the resolver's own checks would not
// name, and returns the resolver's Config.
func (cfg *config) resolverConfig() (resolver.Config, error) {
	def := resolver.DefaultConfig()
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
	if cfg.maxStaleness < 0 {
		return resolver.Config{}, cli.Invalid("kube.max-staleness", "%s: negative", cfg.maxStaleness)
	}
	if err := resolver.CheckZones(cfg.zones); err != nil {
		return resolver.Config{}, cli.Invalid("dns.zone", "%v", err)
	}
	if err := checkListenAddress(cfg.dnsAddr); err != nil {
		return resolver.Config{}, cli.Invalid("dns.listen-address", "%q: %v", cfg.dnsAddr, err)
	}
	ns, err := nsAddresses(cfg.nsAddrs, os.Getenv("POD_IP"), cfg.dnsAddr)
	if err != nil {
		return resolver.Config{}, err
	}
	nsid := cfg.nsid
	if nsid == "" {
		nsid = os.Getenv("POD_NAME")
	}
	if nsid == "" {
		nsid, _ = os.Hostname() // without one, no NSID
	}
	if len(nsid) > 255 {
		return resolver.Config{}, cli.Invalid("dns.nsid", "%q: %d bytes, at most 255", nsid, len(nsid))
	}
	return resolver.Config{
		Zones:        cfg.zones,
		NSAddresses:  ns,
		TTL:          uint32(cfg.ttl),
		NegativeTTL:  uint32(cfg.negativeTTL),
		UDPSize:      uint16(cfg.udpSize),
		MaxUDPSize:   cfg.maxUDPSize,
		NSID:         nsid,
		StaleAfter:   cmp.Or(cfg.staleAfter, def.StaleAfter),
		MaxStaleness: cfg.maxStaleness,
		ServerLabel:  "dns://" + cfg.dnsAddr,
	}, nil
}
