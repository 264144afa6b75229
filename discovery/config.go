package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Agent. Start from DefaultConfig and set at least
// NodeName, Expected and one of PeersSRV or PeersDomain.
type Config struct {
	// NodeName is this member's stable name, the StatefulSet pod name
	// ("web-2"). Its -<ordinal> suffix is required: the members admitted
	// are the name without it followed by -OrdinalStart …
	// -(OrdinalStart+MaxMembers-1).
	NodeName string
	// Expected is the floor and the bootstrap size of the voting
	// configuration: the target size never drops below it, whatever the
	// size source says, and an agent without a saved configuration
	// (StateFile) holds the ordinals OrdinalStart …
	// OrdinalStart+Expected-1 as voters until the source first reports,
	// then the whole target set (see VotingRules.Initial). Required.
	Expected int
	// OrdinalStart is the StatefulSet's .spec.ordinals.start. Default 0.
	OrdinalStart int
	// MaxMembers bounds admission: names with an ordinal from OrdinalStart
	// up to OrdinalStart+MaxMembers-1 gossip and are probed (the voting
	// configuration decides who counts); other names are rejected. It is
	// also the largest size a size source may ask for. Default 64.
	MaxMembers int
	// ExpectedFile is a file holding the target size as a decimal number
	// (a ConfigMap key mounted as a volume), read at start and every
	// ExpectedFileInterval; a missing, unreadable or malformed file keeps
	// the last size read. Default "": no file.
	ExpectedFile string
	// ExpectedFileInterval is how often ExpectedFile is read. Polling
	// survives the symlink swap with which the kubelet updates a ConfigMap
	// volume. Default 2s.
	ExpectedFileInterval time.Duration
	// Size is a source of the target size other than ExpectedFile, for
	// example the StatefulSet's spec.replicas (package discovery/kubesize).
	// At most one of ExpectedFile and Size. Default nil: with neither, the
	// target is Expected.
	Size SizeSource
	// Stabilization is how long a learner in the target set must have been
	// alive, without interruption, before it becomes a voter. Default 10s.
	Stabilization time.Duration
	// StateFile is where the committed voting configuration is saved (a
	// file on the pod's persistent volume), so that a restarted agent
	// resumes it instead of the bootstrap one. Default "": not saved.
	StateFile string
	// Label is memberlist's cluster label: every packet and stream carries
	// it, and traffic with another label is dropped. It is not a secret (use
	// a keyring for that) but it stops two clusters from merging when a pod
	// IP is reused. Default "" (no label).
	Label string
	// Version is the application version this member runs (the database's
	// image tag), gossiped to the others: peeragent_members_by_version and
	// /members show it, so a partitioned rolling update is visible while it
	// runs. Default "". Version and Zone together must fit in memberlist's
	// node metadata (MaxMetaBytes of JSON).
	Version string
	// Zone is the failure zone this member runs in, gossiped and shown in
	// /members. Default "".
	Zone string

	// BindAddr is the host:port memberlist listens on, TCP and UDP. Default
	// ":7946". Port 0 picks a free port (tests).
	BindAddr string
	// AdvertiseAddr is the IP, or IP:port, other members reach this one at.
	// Default "": the BindAddr's host when it is an IP other than the
	// unspecified address, else a private address of this host. It must be
	// an IP: memberlist does not resolve names here.
	AdvertiseAddr string
	// Timing holds memberlist's failure-detection and gossip timings.
	// Default: LANTiming(), memberlist's LAN profile.
	Timing Timing

	// KeyringDir, when set, enables gossip encryption with the keys in that
	// directory: one base64-encoded 16, 24 or 32 byte key per file, names
	// starting with '.' ignored (so a mounted Secret works as it is). The
	// file named PrimaryKeyName holds the key used to encrypt; the others are
	// only accepted. Default "" (no encryption).
	KeyringDir string
	// PrimaryKeyName is the file in KeyringDir holding the primary key.
	// Default "primary".
	PrimaryKeyName string
	// KeyringReloadInterval is how often KeyringDir is read again. A change
	// installs new keys, switches the primary and removes keys whose file
	// is gone, without a restart. Polling survives the symlink swaps with
	// which the kubelet updates a Secret volume. Default 10s.
	KeyringReloadInterval time.Duration

	// PeersSRV is an SRV name whose targets are the peers, for example
	// "_gossip._tcp.web.default.svc.cluster.local". A target's first label
	// is the peer's name; the record's port is its gossip port. It is
	// looked up as an absolute name, with or without its trailing dot.
	PeersSRV string
	// PeersDomain is the domain per-ordinal names live under: peers are
	// looked up as <set>-<ordinal>.<PeersDomain>, for example
	// "web.default.svc.cluster.local", as absolute names. Combined with
	// PeersSRV, a name found both ways takes the address of the per-ordinal
	// lookup.
	PeersDomain string
	// PeersPort is the gossip port of peers found through PeersDomain.
	// Default 0: this agent's own advertised port.
	PeersPort int
	// DNSServer is the host:port lookups are sent to directly, so that a
	// cache in front of it cannot hide a new peer. Default "": the system
	// resolver (net.Resolver, with resolv.conf's servers and options; the
	// names are absolute, so its search list does not apply).
	DNSServer string
	// RefreshInterval is how often peers are looked up again and missing
	// expected peers rejoined once the cluster is complete, ±20% jitter.
	// Default 10s.
	RefreshInterval time.Duration
	// RefreshMinInterval is the first retry delay while expected peers are
	// missing; it doubles up to max(RefreshInterval/4, RefreshMinInterval).
	// Default 250ms.
	RefreshMinInterval time.Duration
	// LookupTimeout bounds one DNS query. Default 2s.
	LookupTimeout time.Duration
	// Resolver overrides the DNS lookups (tests). Default nil: built from
	// DNSServer.
	Resolver Resolver

	// OnChange is the absolute path of an executable run, without a shell
	// and without arguments, after the member list or the quorum settles on
	// a new value. It reads the list on stdin, one DNS name (or node name)
	// per line, and the quorum in its environment (PEERAGENT_*). It runs in
	// its own process group, which is killed once the command has exited;
	// processes that left the group (setsid, daemons) are not killed. The
	// last HookOutputTail bytes of its output are logged. A failure is
	// logged and counted, never fatal. Exiting 0 is a success even when a
	// process it left still holds its output open (logged as a warning).
	// Default "" (none).
	OnChange string
	// OnChangeTimeout bounds one OnChange run; then its whole process group
	// is killed. Default 30s.
	OnChangeTimeout time.Duration
	// OnChangeShutdownGrace is how long an OnChange run in progress when
	// Run's context ends may go on (within its OnChangeTimeout) before its
	// process group is killed; the leave waits for it, so it adds to the
	// shutdown's duration. 0: killed at once. Default 5s.
	OnChangeShutdownGrace time.Duration
	// ReapChildren makes the agent wait for every child of its process
	// that has exited, whenever no OnChange run is in progress, and on
	// Linux makes the process a child subreaper: what a hook leaves outside
	// its process group is re-parented to it and reaped once it exits
	// instead of staying a zombie. Set it only when nothing else in the
	// process waits for children of its own: peeragent sets it when it is
	// PID 1, as in its container. Default false: such processes are
	// re-parented to init (or the nearest subreaper), which reaps them.
	ReapChildren bool
	// PeersFile, when set, is rewritten atomically with the same list as
	// OnChange receives, each time it settles. Default "".
	PeersFile string
	// SettleTime is how long the member list and the quorum must stay
	// unchanged before OnChange and PeersFile see them. It must not be
	// shorter than Timing.SuspectTimeout, so that a member turning suspect
	// (and taking quorum with it) is still seen before it settles. Default
	// 0: Timing.SuspectTimeout.
	SettleTime time.Duration

	// RequireQuorumForReady makes Ready fail while quorum is lost. Default
	// false: Ready only waits for the first join, because taking every pod
	// out of its Service when quorum is lost is seldom what clients want.
	RequireQuorumForReady bool
	// LeaveTimeout bounds the leave on shutdown: the leave announcement,
	// memberlist's leave and the wait for joins in flight together. Run
	// first stops its loops (a probe in flight: up to Timing.ProbeTimeout;
	// a running OnChange: up to OnChangeShutdownGrace), so Run returns at
	// most that plus LeaveTimeout after its context is done. It must fit in
	// the pod's terminationGracePeriodSeconds. Default 5s.
	LeaveTimeout time.Duration

	// Logger receives the agent's and memberlist's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the agent's metrics. Default: a private registry
	// nobody gathers.
	Registerer prometheus.Registerer

	// wrapTransport, when set (tests), wraps memberlist's network transport,
	// for example to cut the link between two members.
	wrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// MaxMetaBytes bounds Version and Zone together, as gossiped.
const MaxMetaBytes = 256

func (c *Config) settleTime() time.Duration {
	if c.SettleTime > 0 {
		return c.SettleTime
	}
	return c.Timing.SuspectTimeout
}

// Timing holds memberlist's timings plus the agent's own suspect detection.
// Shorter timings detect failures sooner and cost more packets.
type Timing struct {
	// ProbeInterval is how often memberlist probes one random member, and
	// how often the agent pings every member to tell suspect from alive.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect member has to refute before
	// memberlist declares it dead: SuspicionMult × max(1, log10(n)) ×
	// ProbeInterval.
	SuspicionMult int
	// SuspicionMaxTimeoutMult caps that timeout when too few members confirm
	// the suspicion.
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often queued broadcasts are gossiped.
	GossipInterval time.Duration
	// GossipNodes is how many members each gossip round goes to.
	GossipNodes int
	// PushPullInterval is how often the full state is exchanged with one
	// random member (anti-entropy).
	PushPullInterval time.Duration
	// TCPTimeout bounds joins, push/pull and reliable sends.
	TCPTimeout time.Duration
	// GossipToTheDeadTime is how long dead members are still gossiped to,
	// and after which they are forgotten.
	GossipToTheDeadTime time.Duration
	// DeadNodeReclaimTime is how long after a member is declared dead its
	// name may come back from another address (a restarted pod with a new
	// IP). Until then the newcomer is a name conflict.
	DeadNodeReclaimTime time.Duration
	// SuspectTimeout is how long a member may go without answering this
	// agent's own probes before the agent shows it as suspect (and stops
	// counting it as alive), ahead of memberlist declaring it dead. It is
	// also how long another process claiming this agent's name is
	// remembered after its last answer.
	SuspectTimeout time.Duration
	// ViewInterval is how often this agent re-broadcasts its view of the
	// membership, besides on every change.
	ViewInterval time.Duration
}

// Profiles names the timing profiles Profile knows.
var Profiles = []string{"lan", "local", "wan"}

// LANTiming is memberlist's DefaultLANConfig: a crashed member of a
// 3-member cluster is suspect within about 2.5s and dead within about 6s.
func LANTiming() Timing {
	return Timing{
		ProbeInterval:           time.Second,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 6,
		GossipInterval:          200 * time.Millisecond,
		GossipNodes:             3,
		PushPullInterval:        30 * time.Second,
		TCPTimeout:              10 * time.Second,
		GossipToTheDeadTime:     30 * time.Second,
		DeadNodeReclaimTime:     5 * time.Second,
		SuspectTimeout:          2*time.Second + 500*time.Millisecond,
		ViewInterval:            10 * time.Second,
	}
}

// LocalTiming is memberlist's DefaultLocalConfig: for members on one host or
// a very reliable network.
func LocalTiming() Timing {
	t := LANTiming()
	t.ProbeTimeout = 200 * time.Millisecond
	t.SuspicionMult = 3
	t.GossipInterval = 100 * time.Millisecond
	t.PushPullInterval = 15 * time.Second
	t.TCPTimeout = time.Second
	t.GossipToTheDeadTime = 15 * time.Second
	t.SuspectTimeout = 2*time.Second + 200*time.Millisecond
	return t
}

// WANTiming is memberlist's DefaultWANConfig: for members across slow or
// lossy links.
func WANTiming() Timing {
	t := LANTiming()
	t.ProbeInterval = 5 * time.Second
	t.ProbeTimeout = 3 * time.Second
	t.SuspicionMult = 6
	t.GossipInterval = 500 * time.Millisecond
	t.GossipNodes = 4
	t.PushPullInterval = 60 * time.Second
	t.TCPTimeout = 30 * time.Second
	t.GossipToTheDeadTime = 60 * time.Second
	t.SuspectTimeout = 13 * time.Second
	return t
}

// Profile returns the named timing profile: "lan", "local" or "wan".
func Profile(name string) (Timing, error) {
	switch name {
	case "lan":
		return LANTiming(), nil
	case "local":
		return LocalTiming(), nil
	case "wan":
		return WANTiming(), nil
	}
	return Timing{}, fmt.Errorf("unknown timing profile %q (want one of %v)", name, Profiles)
}

// DefaultConfig returns a Config with every default set.
func DefaultConfig() Config {
	return Config{
		BindAddr:              ":7946",
		Timing:                LANTiming(),
		PrimaryKeyName:        "primary",
		KeyringReloadInterval: 10 * time.Second,
		RefreshInterval:       10 * time.Second,
		RefreshMinInterval:    250 * time.Millisecond,
		LookupTimeout:         2 * time.Second,
		OnChangeTimeout:       30 * time.Second,
		OnChangeShutdownGrace: 5 * time.Second,
		LeaveTimeout:          5 * time.Second,
		MaxMembers:            64,
		ExpectedFileInterval:  2 * time.Second,
		Stabilization:         10 * time.Second,
	}
}

// ErrConfig wraps every validation error.
var ErrConfig = errors.New("invalid config")

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if _, err := ParseIdentity(c.NodeName); err != nil {
		return bad("node name: %v", err)
	}
	if c.Expected < 1 {
		return bad("expected cluster size must be at least 1, got %d", c.Expected)
	}
	if c.OrdinalStart < 0 {
		return bad("ordinal start must not be negative")
	}
	if c.MaxMembers < 1 {
		return bad("max members must be at least 1, got %d", c.MaxMembers)
	}
	if c.Expected > c.MaxMembers {
		return bad("expected cluster size %d exceeds max members %d", c.Expected, c.MaxMembers)
	}
	if _, ok := c.admitted().Contains(c.NodeName); !ok {
		a := c.admitted()
		return bad("node name %q is outside the admitted set %s-%d … %s-%d (ordinal start %d, max members %d)",
			c.NodeName, a.Set, a.Start, a.Set, a.Start+a.N-1, c.OrdinalStart, c.MaxMembers)
	}
	if c.ExpectedFile != "" && c.Size != nil {
		return bad("both an expected-size file and another size source are set")
	}
	if c.ExpectedFile != "" && c.ExpectedFileInterval <= 0 {
		return bad("expected-file interval must be positive")
	}
	if c.Stabilization < 0 {
		return bad("stabilization time must not be negative")
	}
	if len(c.Label) > 255 {
		return bad("cluster label is longer than 255 bytes")
	}
	if _, _, err := splitBind(c.BindAddr); err != nil {
		return bad("gossip listen address: %v", err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitAdvertise(c.AdvertiseAddr); err != nil {
			return bad("gossip advertise address: %v", err)
		}
	}
	if (c.Expected > 1 || c.ExpectedFile != "" || c.Size != nil) && c.PeersSRV == "" && c.PeersDomain == "" {
		return bad("a cluster of %d needs peers: set the SRV name or the per-ordinal domain", c.Expected)
	}
	if c.PeersPort < 0 || c.PeersPort > 65535 {
		return bad("peers port %d out of range", c.PeersPort)
	}
	t := c.Timing
	for name, d := range map[string]time.Duration{
		"probe interval": t.ProbeInterval, "probe timeout": t.ProbeTimeout,
		"gossip interval": t.GossipInterval, "push/pull interval": t.PushPullInterval,
		"TCP timeout": t.TCPTimeout, "gossip-to-the-dead time": t.GossipToTheDeadTime,
		"suspect timeout": t.SuspectTimeout, "view interval": t.ViewInterval,
		"refresh interval": c.RefreshInterval, "refresh min interval": c.RefreshMinInterval,
		"lookup timeout": c.LookupTimeout,
		"leave timeout":  c.LeaveTimeout, "hook timeout": c.OnChangeTimeout,
	} {
		if d <= 0 {
			return bad("%s must be positive", name)
		}
	}
	if c.SettleTime < 0 {
		return bad("settle time must not be negative")
	}
	if c.OnChangeShutdownGrace < 0 {
		return bad("hook shutdown grace must not be negative")
	}
	if c.SettleTime > 0 && c.SettleTime < t.SuspectTimeout {
		return bad("settle time %s is shorter than the suspect timeout %s: a member turning suspect would settle unseen", c.SettleTime, t.SuspectTimeout)
	}
	if c.OnChange != "" && !filepath.IsAbs(c.OnChange) {
		return bad("on-change %q is not the absolute path of an executable (it runs without a shell)", c.OnChange)
	}
	if meta, _ := json.Marshal(nodeMeta{Version: c.Version, Zone: c.Zone, Epoch: math.MaxUint64}); len(meta) > MaxMetaBytes {
		return bad("version and zone take %d bytes of node metadata, more than %d", len(meta), MaxMetaBytes)
	}
	if t.ProbeTimeout > t.ProbeInterval {
		return bad("probe timeout %s exceeds probe interval %s", t.ProbeTimeout, t.ProbeInterval)
	}
	if t.SuspicionMult < 1 || t.SuspicionMaxTimeoutMult < 1 || t.GossipNodes < 1 {
		return bad("suspicion multipliers and gossip nodes must be at least 1")
	}
	if t.DeadNodeReclaimTime < 0 {
		return bad("dead node reclaim time must not be negative")
	}
	if c.KeyringDir != "" {
		if c.PrimaryKeyName == "" {
			return bad("primary key file name is empty")
		}
		if c.KeyringReloadInterval <= 0 {
			return bad("keyring reload interval must be positive")
		}
	}
	return nil
}

// admitted is the set of names that may gossip: OrdinalStart …
// OrdinalStart+MaxMembers-1.
func (c *Config) admitted() ExpectedSet {
	id, _ := ParseIdentity(c.NodeName)
	return ExpectedSet{Set: id.Set, Start: c.OrdinalStart, N: c.MaxMembers}
}

// splitBind parses memberlist's listen address: host may be empty (all
// addresses) but must otherwise be an IP.
func splitBind(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	if host == "" {
		return "0.0.0.0", p, nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", 0, fmt.Errorf("host %q is not an IP", host)
	}
	return host, p, nil
}

// splitAdvertise parses "IP" or "IP:port"; port 0 means the bound port.
func splitAdvertise(addr string) (string, int, error) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.String(), 0, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is neither an IP nor IP:port", addr)
	}
	return ap.Addr().String(), int(ap.Port()), nil
}
