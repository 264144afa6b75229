package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/peerdns/peerdns/discovery"
	"github.com/peerdns/peerdns/internal/cli"
)

// config is everything the flags set.
type config struct {
	nodeName      string
	nodeVersion   string
	nodeZone      string
	expected      int
	ordinalStart  int
	label         string
	source        string
	expectedFile  string
	statefulSet   string
	kubeconfig    string
	maxMembers    int
	stabilization time.Duration
	stateFile     string

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
	onChangeGrace   time.Duration
	settle          time.Duration
	peersFile       string

	requireQuorum bool
	webAddr       string
	webConfigFile string
}

// newFlags binds the command line to cfg, with the defaults set.
func newFlags(cfg *config) *cli.App {
	def := discovery.DefaultConfig()
	lan := discovery.LANTiming()
	app := cli.New("peeragent", "peeragent runs beside each member of a StatefulSet: it finds the peers through their DNS names, forms membership with memberlist and reports quorum.")

	app.Flag("node.name", "This member's stable name, the pod name ending in -<ordinal>. Empty: the hostname up to its first dot.").
		Envar("POD_NAME").StringVar(&cfg.nodeName)
	app.Flag("node.version", "Application version this member runs (the database's image tag), gossiped to the others and shown in /members and peeragent_members_by_version.").
		Envar("NODE_VERSION").StringVar(&cfg.nodeVersion)
	app.Flag("node.zone", "Failure zone this member runs in, gossiped and shown in /members.").
		Envar("NODE_ZONE").StringVar(&cfg.nodeZone)
	app.Flag("cluster.expected", "Floor and bootstrap size of the voting configuration: the target size never drops below N whatever the size source says, and an agent without a saved configuration (--cluster.state-file) holds <set>-start … <set>-(start+N-1) as voters until the source first reports, then the whole target set. Quorum is a strict majority of the voters. Required.").
		Default("0").IntVar(&cfg.expected)
	app.Flag("cluster.ordinal-start", "The StatefulSet's .spec.ordinals.start: members are admitted from <set>-start up to <set>-(start+max-members-1).").
		Default("0").IntVar(&cfg.ordinalStart)
	app.Flag("cluster.source", "Where the target size comes from, live: kubernetes (the StatefulSet's spec.replicas, watched), file (--cluster.expected-file), flag (--cluster.expected only) or auto: file when --cluster.expected-file is set, else kubernetes when running in a pod ($KUBERNETES_SERVICE_HOST set), else flag. The last size read is kept through any error.").
		Default("auto").EnumVar(&cfg.source, "auto", "kubernetes", "file", "flag")
	app.Flag("cluster.expected-file", "File holding the target size as a decimal number (a ConfigMap key mounted as a volume), re-read every 2s.").
		StringVar(&cfg.expectedFile)
	app.Flag("cluster.statefulset", "StatefulSet watched for the target size with --cluster.source=kubernetes, in $POD_NAMESPACE; it needs get, list and watch on that one object. Empty: the node name without its ordinal.").
		StringVar(&cfg.statefulSet)
	app.Flag("kubeconfig", "kubeconfig file for --cluster.source=kubernetes. Empty: the pod's service account.").
		StringVar(&cfg.kubeconfig)
	app.Flag("cluster.max-members", "Sanity cap on admission: names with an ordinal from start to start+max-members-1 gossip (outside the voting configuration as learners); others are rejected. Also the largest size a source may ask for.").
		Default(strconv.Itoa(def.MaxMembers)).IntVar(&cfg.maxMembers)
	app.Flag("cluster.stabilization-time", "How long a learner of the target set must have been alive, without interruption, before it becomes a voter.").
		Default(def.Stabilization.String()).DurationVar(&cfg.stabilization)
	app.Flag("cluster.state-file", "File the committed voting configuration is saved to (on the pod's persistent volume), so that a restarted agent resumes it instead of the bootstrap one. Empty: not saved.").
		StringVar(&cfg.stateFile)
	app.Flag("cluster.label", "Cluster label carried by every gossip packet; traffic with another label is dropped and counted. Not a secret: it keeps clusters apart when pod IPs are reused. Empty: <$POD_NAMESPACE>/<set> (the node name without its ordinal) when $POD_NAMESPACE is set, else no label.").
		StringVar(&cfg.label)

	app.Flag("gossip.listen-address", "host:port memberlist listens on, TCP and UDP. The host must be an IP or empty (all addresses).").
		Default(def.BindAddr).StringVar(&cfg.listen)
	app.Flag("gossip.advertise-address", "IP or IP:port other members reach this one at. Empty: the listen address's IP, else a private IP of this host.").
		Envar("POD_IP").StringVar(&cfg.advertise)
	app.Flag("gossip.profile", "memberlist timing profile: "+strings.Join(discovery.Profiles, ", ")+". lan is memberlist's LAN defaults; local is faster, for one host or a very reliable network; wan is slower.").
		Default("lan").EnumVar(&cfg.profile, discovery.Profiles...)
	app.Flag("gossip.probe-interval", fmt.Sprintf("How often a member is probed. 0: the profile's (lan: %s).", lan.ProbeInterval)).
		Default("0s").DurationVar(&cfg.probeInterval)
	app.Flag("gossip.probe-timeout", fmt.Sprintf("How long a probe waits for an ack. 0: the profile's (lan: %s).", lan.ProbeTimeout)).
		Default("0s").DurationVar(&cfg.probeTimeout)
	app.Flag("gossip.interval", fmt.Sprintf("How often queued gossip is sent. 0: the profile's (lan: %s).", lan.GossipInterval)).
		Default("0s").DurationVar(&cfg.gossipInterval)
	app.Flag("gossip.suspicion-mult", fmt.Sprintf("A suspect member has suspicion-mult × probe-interval (scaled up past 10 members) to refute before it is declared dead. 0: the profile's (lan: %d).", lan.SuspicionMult)).
		Default("0").IntVar(&cfg.suspicionMult)
	app.Flag("gossip.suspect-timeout", fmt.Sprintf("A member silent to this agent's probes this long is shown suspect and no longer counts towards quorum, at the end of the next probe round (up to probe-interval + probe-timeout later). 0: 2 × probe-interval + probe-timeout (lan: %s).", lan.SuspectTimeout)).
		Default("0s").DurationVar(&cfg.suspectTimeout)
	app.Flag("gossip.dead-node-reclaim-time", "How long after a member is declared dead its name may rejoin from a new address (a restarted pod with a new IP); until then it is a name conflict.").
		Default(lan.DeadNodeReclaimTime.String()).DurationVar(&cfg.deadNodeReclaim)
	app.Flag("gossip.leave-timeout", "Bound on the leave at shutdown: announcing it, memberlist's leave and the wait for joins in flight. The whole shutdown takes at most --gossip.probe-timeout (a probe in flight) + --on-change.shutdown-grace (a running hook) + this + 5s (HTTP requests in flight); keep that below the pod's terminationGracePeriodSeconds.").
		Default(def.LeaveTimeout.String()).DurationVar(&cfg.leaveTimeout)
	app.Flag("gossip.keyring-dir", "Directory of gossip encryption keys (a mounted Secret): one base64 16/24/32-byte key per file. Re-read while running. Empty: no encryption.").
		StringVar(&cfg.keyringDir)
	app.Flag("gossip.primary-key", "File in --gossip.keyring-dir holding the key used to encrypt; the other files' keys are only accepted.").
		Default(def.PrimaryKeyName).StringVar(&cfg.primaryKey)
	app.Flag("gossip.keyring-reload-interval", "How often --gossip.keyring-dir is read for changes.").
		Default(def.KeyringReloadInterval.String()).DurationVar(&cfg.keyringReload)

	app.Flag("peers.srv", "SRV name listing the peers, e.g. _gossip._tcp.web.default.svc.cluster.local; looked up as an absolute name (no search list); a target's first label is the peer's name, the record's port its gossip port.").
		StringVar(&cfg.peersSRV)
	app.Flag("peers.domain", "Domain of the per-ordinal names: peers are looked up as <set>-<ordinal>.<domain>, absolute (no search list), e.g. web.default.svc.cluster.local.").
		StringVar(&cfg.peersDomain)
	app.Flag("peers.port", "Gossip port of peers found through --peers.domain. 0: this agent's own port.").
		Default("0").IntVar(&cfg.peersPort)
	app.Flag("peers.dns-server", "host:port to send peer lookups to directly (no cache in between). Empty: the system resolver (resolv.conf's servers; names are absolute, so not its search list).").
		StringVar(&cfg.dnsServer)
	app.Flag("peers.refresh-interval", "How often peers are looked up and missing ones rejoined once all are present (±20% jitter).").
		Default(def.RefreshInterval.String()).DurationVar(&cfg.refreshInterval)
	app.Flag("peers.refresh-min-interval", "First retry delay while expected peers are missing; it doubles up to a quarter of --peers.refresh-interval.").
		Default(def.RefreshMinInterval.String()).DurationVar(&cfg.refreshMinInterval)
	app.Flag("peers.lookup-timeout", "Bound on one DNS query.").
		Default(def.LookupTimeout.String()).DurationVar(&cfg.lookupTimeout)

	app.Flag("on-change", "Absolute path of an executable run (no shell, no arguments) when the member list or quorum settles on a new value; stdin is the list, one DNS name per line in ordinal order; PEERAGENT_* variables carry the quorum. It runs in its own process group, killed when it exits or times out (processes that left the group, with setsid, are not; as PID 1 the agent reaps them once they exit); the last 4 KiB of its output are logged. Failures are logged and counted; exiting 0 while a process it left holds its output open is a success, with a warning.").
		StringVar(&cfg.onChange)
	app.Flag("on-change.timeout", "Bound on one --on-change run; then its whole process group is killed.").
		Default(def.OnChangeTimeout.String()).DurationVar(&cfg.onChangeTimeout)
	app.Flag("on-change.shutdown-grace", "How long an --on-change run in progress at shutdown may go on (within --on-change.timeout) before its process group is killed; the leave waits for it. 0: killed at once.").
		Default(def.OnChangeShutdownGrace.String()).DurationVar(&cfg.onChangeGrace)
	app.Flag("on-change.settle", "How long the member list and quorum must stay unchanged before --on-change and --peers-file see them; at least --gossip.suspect-timeout. 0: the suspect timeout.").
		Default(def.SettleTime.String()).DurationVar(&cfg.settle)
	app.Flag("peers-file", "File rewritten atomically with the settled member list, one DNS name per line. Empty: none.").
		StringVar(&cfg.peersFile)

	app.Flag("readyz.require-quorum", "/readyz fails while quorum is lost. Default: /readyz waits for the first join and fails while the node name is duplicated.").
		Default("false").BoolVar(&cfg.requireQuorum)
	app.Flag("web.listen-address", "Address to serve /metrics, /healthz, /startupz, /readyz and /members on.").
		Default(":9470").StringVar(&cfg.webAddr)
	app.Flag("web.config.file", "Path to a web configuration file (the Prometheus exporter-toolkit format) enabling TLS and basic auth on every web path, probes included. Empty: plain HTTP.").
		StringVar(&cfg.webConfigFile)
	return app
}

// sizeSource resolves --cluster.source=auto.
func (cfg *config) sizeSource(getenv func(string) string) string {
	if cfg.source != "auto" {
		return cfg.source
	}
	switch {
	case cfg.expectedFile != "":
		return "file"
	case getenv("KUBERNETES_SERVICE_HOST") != "":
		return "kubernetes"
	}
	return "flag"
}

// discoveryConfig turns the flags into the agent's Config, filling the
// node name from the hostname when neither --node.name nor $POD_NAME set
// it. Its errors name the flag at fault; discovery.New checks the rest.
func (cfg *config) discoveryConfig(getenv func(string) string, hostname func() (string, error)) (discovery.Config, error) {
	c := discovery.DefaultConfig()
	c.NodeName = cfg.nodeName
	if c.NodeName == "" {
		h, err := hostname()
		if err != nil {
			return c, cli.Invalid("node.name", "not set and no hostname: %w", err)
		}
		c.NodeName, _, _ = strings.Cut(h, ".")
	}
	if _, err := discovery.ParseIdentity(c.NodeName); err != nil {
		return c, &cli.FlagError{Flag: "node.name", Err: err}
	}
	if cfg.expected < 1 {
		return c, cli.Invalid("cluster.expected", "required, at least 1 (the bootstrap size and floor)")
	}
	if cfg.maxMembers < 1 {
		return c, cli.Invalid("cluster.max-members", "%d: must be at least 1", cfg.maxMembers)
	}
	if cfg.expected > cfg.maxMembers {
		return c, cli.Invalid("cluster.expected", "%d exceeds --cluster.max-members %d", cfg.expected, cfg.maxMembers)
	}
	if cfg.stabilization < 0 {
		return c, cli.Invalid("cluster.stabilization-time", "%s: must not be negative", cfg.stabilization)
	}
	if cfg.source == "file" && cfg.expectedFile == "" {
		return c, cli.Invalid("cluster.expected-file", "required with --cluster.source=file")
	}
	if cfg.expectedFile != "" && cfg.source != "file" && cfg.source != "auto" {
		return c, cli.Invalid("cluster.expected-file", "set, but --cluster.source is %s", cfg.source)
	}
	if cfg.ordinalStart < 0 {
		return c, cli.Invalid("cluster.ordinal-start", "%d: must not be negative", cfg.ordinalStart)
	}
	if cfg.peersSRV == "" && cfg.peersDomain == "" {
		if cfg.expected > 1 {
			return c, cli.Invalid("peers.srv", "a cluster of %d needs peers: set --peers.srv or --peers.domain", cfg.expected)
		}
		if src := cfg.sizeSource(getenv); src != "flag" {
			return c, cli.Invalid("peers.srv", "a size from --cluster.source=%s needs peers: set --peers.srv or --peers.domain", src)
		}
	}
	if cfg.peersPort < 0 || cfg.peersPort > 65535 {
		return c, cli.Invalid("peers.port", "%d: not in [0, 65535]", cfg.peersPort)
	}
	for flag, d := range map[string]time.Duration{
		"gossip.probe-interval": cfg.probeInterval, "gossip.probe-timeout": cfg.probeTimeout,
		"gossip.interval": cfg.gossipInterval, "gossip.suspect-timeout": cfg.suspectTimeout,
		"gossip.dead-node-reclaim-time": cfg.deadNodeReclaim,
	} {
		if d < 0 {
			return c, cli.Invalid(flag, "%s: must not be negative", d)
		}
	}
	for flag, d := range map[string]time.Duration{
		"gossip.leave-timeout": cfg.leaveTimeout, "gossip.keyring-reload-interval": cfg.keyringReload,
		"peers.refresh-interval": cfg.refreshInterval, "peers.refresh-min-interval": cfg.refreshMinInterval,
		"peers.lookup-timeout": cfg.lookupTimeout, "on-change.timeout": cfg.onChangeTimeout,
	} {
		if d <= 0 {
			return c, cli.Invalid(flag, "%s: must be positive", d)
		}
	}
	if cfg.settle < 0 {
		return c, cli.Invalid("on-change.settle", "%s: must not be negative", cfg.settle)
	}
	if cfg.onChangeGrace < 0 {
		return c, cli.Invalid("on-change.shutdown-grace", "%s: must not be negative", cfg.onChangeGrace)
	}
	if cfg.suspicionMult < 0 {
		return c, cli.Invalid("gossip.suspicion-mult", "%d: must not be negative", cfg.suspicionMult)
	}
	c.Expected = cfg.expected
	c.OrdinalStart = cfg.ordinalStart
	c.MaxMembers = cfg.maxMembers
	c.Stabilization = cfg.stabilization
	c.StateFile = cfg.stateFile
	if cfg.sizeSource(getenv) == "file" {
		c.ExpectedFile = cfg.expectedFile
	}
	c.Label = cfg.label
	if c.Label == "" {
		// The StatefulSet's name is the node name without its ordinal.
		if ns := getenv("POD_NAMESPACE"); ns != "" {
			if parsed, err := discovery.ParseIdentity(c.NodeName); err == nil {
				c.Label = ns + "/" + parsed.Set
			}
		}
	}
	c.Version = cfg.nodeVersion
	c.Zone = cfg.nodeZone
	c.BindAddr = cfg.listen
	c.AdvertiseAddr = cfg.advertise

	t, err := discovery.Profile(cfg.profile)
	if err != nil {
		return c, &cli.FlagError{Flag: "gossip.profile", Err: err}
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
	if t.ProbeTimeout > t.ProbeInterval {
		return c, cli.Invalid("gossip.probe-timeout", "%s exceeds the probe interval %s", t.ProbeTimeout, t.ProbeInterval)
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
	c.OnChangeShutdownGrace = cfg.onChangeGrace
	c.SettleTime = cfg.settle
	c.PeersFile = cfg.peersFile
	c.RequireQuorumForReady = cfg.requireQuorum
	return c, nil
}
