package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/internal/logging"
)

// config is everything the flags set.
type config struct {
	nodeName     string
	nodeVersion  string
	nodeZone     string
	expected     int
	ordinalStart int
	label        string

	listen          string
	advertise       string
	profile         string
	probeInterval   time.Duration
	probeTimeout    time.Duration
	gossipInterval  time.Duration
	suspicionMult   int
	suspectTimeout  time.Duration
	deadNodeReclaim time.Duration
	leaveTimeout    time.Duration
	keyringDir      string
	primaryKey      string
	keyringReload   time.Duration

	peersSRV           string
	peersDomain        string
	peersPort          int
	dnsServer          string
	refreshInterval    time.Duration
	refreshMinInterval time.Duration
	lookupTimeout      time.Duration

	onChange        string
	onChangeTimeout time.Duration
	settle          time.Duration
	peersFile       string

	requireQuorum bool
	webAddr       string
	log           logging.Config
	version       bool
}

// newFlags binds the command line to cfg, with the defaults set.
func newFlags(cfg *config, out io.Writer) *flag.FlagSet {
	def := discovery.DefaultConfig()
	lan := discovery.LANTiming()
	fs := flag.NewFlagSet("peeragent", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: peeragent [flags]\n\npeeragent runs beside each member of a StatefulSet: it finds the peers through their DNS names, forms membership with memberlist and reports quorum.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	fs.StringVar(&cfg.nodeName, "node.name", "", "This member's stable name, the pod name ending in -<ordinal>. Empty: $POD_NAME, else the hostname.")
	fs.StringVar(&cfg.nodeVersion, "node.version", "", "Application version this member runs (the database's image tag), gossiped to the others and shown in /members and peeragent_members_by_version. Empty: $NODE_VERSION.")
	fs.StringVar(&cfg.nodeZone, "node.zone", "", "Failure zone this member runs in, gossiped and shown in /members. Empty: $NODE_ZONE.")
	fs.IntVar(&cfg.expected, "cluster.expected", 0, "Expected cluster size N (the StatefulSet's replicas); quorum is floor(N/2)+1 alive members. Required.")
	fs.IntVar(&cfg.ordinalStart, "cluster.ordinal-start", 0, "The StatefulSet's .spec.ordinals.start: the expected set is <set>-start … <set>-(start+N-1).")
	fs.StringVar(&cfg.label, "cluster.label", "", "Cluster label carried by every gossip packet; traffic with another label is dropped and counted. Not a secret: it keeps clusters apart when pod IPs are reused. Empty: <$POD_NAMESPACE>/<set> (the node name without its ordinal) when $POD_NAMESPACE is set, else no label.")

	fs.StringVar(&cfg.listen, "gossip.listen-address", def.BindAddr, "host:port memberlist listens on, TCP and UDP. The host must be an IP or empty (all addresses).")
	fs.StringVar(&cfg.advertise, "gossip.advertise-address", "", "IP or IP:port other members reach this one at. Empty: $POD_IP, else the listen address's IP, else a private IP of this host.")
	fs.StringVar(&cfg.profile, "gossip.profile", "lan", "memberlist timing profile: "+strings.Join(discovery.Profiles, ", ")+". lan is memberlist's LAN defaults; local is faster, for one host or a very reliable network; wan is slower.")
	fs.DurationVar(&cfg.probeInterval, "gossip.probe-interval", 0, fmt.Sprintf("How often a member is probed. 0: the profile's (lan: %s).", lan.ProbeInterval))
	fs.DurationVar(&cfg.probeTimeout, "gossip.probe-timeout", 0, fmt.Sprintf("How long a probe waits for an ack. 0: the profile's (lan: %s).", lan.ProbeTimeout))
	fs.DurationVar(&cfg.gossipInterval, "gossip.interval", 0, fmt.Sprintf("How often queued gossip is sent. 0: the profile's (lan: %s).", lan.GossipInterval))
	fs.IntVar(&cfg.suspicionMult, "gossip.suspicion-mult", 0, fmt.Sprintf("A suspect member has suspicion-mult × probe-interval (scaled up past 10 members) to refute before it is declared dead. 0: the profile's (lan: %d).", lan.SuspicionMult))
	fs.DurationVar(&cfg.suspectTimeout, "gossip.suspect-timeout", 0, fmt.Sprintf("A member silent to this agent's probes this long is shown suspect and no longer counts towards quorum. 0: 2 × probe-interval + probe-timeout (lan: %s).", lan.SuspectTimeout))
	fs.DurationVar(&cfg.deadNodeReclaim, "gossip.dead-node-reclaim-time", lan.DeadNodeReclaimTime, "How long after a member is declared dead its name may rejoin from a new address (a restarted pod with a new IP); until then it is a name conflict.")
	fs.DurationVar(&cfg.leaveTimeout, "gossip.leave-timeout", def.LeaveTimeout, "Bound on the graceful leave at shutdown; keep it below the pod's terminationGracePeriodSeconds.")
	fs.StringVar(&cfg.keyringDir, "gossip.keyring-dir", "", "Directory of gossip encryption keys (a mounted Secret): one base64 16/24/32-byte key per file. Re-read while running. Empty: no encryption.")
	fs.StringVar(&cfg.primaryKey, "gossip.primary-key", def.PrimaryKeyName, "File in --gossip.keyring-dir holding the key used to encrypt; the other files' keys are only accepted.")
	fs.DurationVar(&cfg.keyringReload, "gossip.keyring-reload-interval", def.KeyringReloadInterval, "How often --gossip.keyring-dir is read for changes.")

	fs.StringVar(&cfg.peersSRV, "peers.srv", "", "SRV name listing the peers, e.g. _gossip._tcp.web.default.svc.cluster.local; a target's first label is the peer's name, the record's port its gossip port.")
	fs.StringVar(&cfg.peersDomain, "peers.domain", "", "Domain of the per-ordinal names: peers are looked up as <set>-<ordinal>.<domain>, e.g. web.default.svc.cluster.local.")
	fs.IntVar(&cfg.peersPort, "peers.port", 0, "Gossip port of peers found through --peers.domain. 0: this agent's own port.")
	fs.StringVar(&cfg.dnsServer, "peers.dns-server", "", "host:port to send peer lookups to directly (no search path, no cache in between). Empty: the system resolver.")
	fs.DurationVar(&cfg.refreshInterval, "peers.refresh-interval", def.RefreshInterval, "How often peers are looked up and missing ones rejoined once all are present (±20% jitter).")
	fs.DurationVar(&cfg.refreshMinInterval, "peers.refresh-min-interval", def.RefreshMinInterval, "First retry delay while expected peers are missing; it doubles up to a quarter of --peers.refresh-interval.")
	fs.DurationVar(&cfg.lookupTimeout, "peers.lookup-timeout", def.LookupTimeout, "Bound on one DNS query.")

	fs.StringVar(&cfg.onChange, "on-change", "", "Absolute path of an executable run (no shell, no arguments) when the member list or quorum settles on a new value; stdin is the list, one DNS name per line in ordinal order; PEERAGENT_* variables carry the quorum. It runs in its own process group, killed when it exits or times out; the last 4 KiB of its output are logged. Failures are logged and counted.")
	fs.DurationVar(&cfg.onChangeTimeout, "on-change.timeout", def.OnChangeTimeout, "Bound on one --on-change run; then its whole process group is killed.")
	fs.DurationVar(&cfg.settle, "on-change.settle", def.SettleTime, "How long the member list and quorum must stay unchanged before --on-change and --peers-file see them; at least --gossip.suspect-timeout. 0: the suspect timeout.")
	fs.StringVar(&cfg.peersFile, "peers-file", "", "File rewritten atomically with the settled member list, one DNS name per line. Empty: none.")

	fs.BoolVar(&cfg.requireQuorum, "readyz.require-quorum", false, "/readyz fails while quorum is lost. Default: /readyz waits for the first join and fails while the node name is duplicated.")
	fs.StringVar(&cfg.webAddr, "web.listen-address", ":9470", "Address to serve /metrics, /healthz, /startupz, /readyz and /members on.")
	cfg.log.RegisterFlags(fs)
	fs.BoolVar(&cfg.version, "version", false, "Print the version and exit.")
	return fs
}

// discoveryConfig turns the flags into the agent's Config, filling the
// environment-derived defaults.
func (cfg *config) discoveryConfig(getenv func(string) string, hostname func() (string, error)) (discovery.Config, error) {
	c := discovery.DefaultConfig()
	c.NodeName = cfg.nodeName
	if c.NodeName == "" {
		c.NodeName = getenv("POD_NAME")
	}
	if c.NodeName == "" {
		h, err := hostname()
		if err != nil {
			return c, fmt.Errorf("--node.name not set and no hostname: %w", err)
		}
		c.NodeName, _, _ = strings.Cut(h, ".")
	}
	if cfg.expected < 1 {
		return c, fmt.Errorf("--cluster.expected is required (the StatefulSet's replicas)")
	}
	c.Expected = cfg.expected
	c.OrdinalStart = cfg.ordinalStart
	c.Label = cfg.label
	if c.Label == "" {
		// The StatefulSet's name is the node name without its ordinal.
		if ns, id := getenv("POD_NAMESPACE"), c.NodeName; ns != "" {
			if parsed, err := discovery.ParseIdentity(id); err == nil {
				c.Label = ns + "/" + parsed.Set
			}
		}
	}
	c.Version = cfg.nodeVersion
	if c.Version == "" {
		c.Version = getenv("NODE_VERSION")
	}
	c.Zone = cfg.nodeZone
	if c.Zone == "" {
		c.Zone = getenv("NODE_ZONE")
	}
	c.BindAddr = cfg.listen
	c.AdvertiseAddr = cfg.advertise
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = getenv("POD_IP")
	}

	t, err := discovery.Profile(cfg.profile)
	if err != nil {
		return c, fmt.Errorf("--gossip.profile: %w", err)
	}
	if cfg.probeInterval > 0 {
		t.ProbeInterval = cfg.probeInterval
	}
	if cfg.probeTimeout > 0 {
		t.ProbeTimeout = cfg.probeTimeout
	}
	if cfg.probeInterval > 0 || cfg.probeTimeout > 0 {
		t.SuspectTimeout = 2*t.ProbeInterval + t.ProbeTimeout
	}
	if cfg.suspectTimeout > 0 {
		t.SuspectTimeout = cfg.suspectTimeout
	}
	if cfg.gossipInterval > 0 {
		t.GossipInterval = cfg.gossipInterval
	}
	if cfg.suspicionMult > 0 {
		t.SuspicionMult = cfg.suspicionMult
	}
	t.DeadNodeReclaimTime = cfg.deadNodeReclaim
	c.Timing = t
	c.LeaveTimeout = cfg.leaveTimeout
	c.KeyringDir = cfg.keyringDir
	c.PrimaryKeyName = cfg.primaryKey
	c.KeyringReloadInterval = cfg.keyringReload

	c.PeersSRV = cfg.peersSRV
	c.PeersDomain = cfg.peersDomain
	c.PeersPort = cfg.peersPort
	c.DNSServer = cfg.dnsServer
	c.RefreshInterval = cfg.refreshInterval
	c.RefreshMinInterval = cfg.refreshMinInterval
	c.LookupTimeout = cfg.lookupTimeout

	c.OnChange = cfg.onChange
	c.OnChangeTimeout = cfg.onChangeTimeout
	c.SettleTime = cfg.settle
	c.PeersFile = cfg.peersFile
	c.RequireQuorumForReady = cfg.requireQuorum
	return c, nil
}
