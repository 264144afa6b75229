package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// peer is an expected member's address as DNS gives it.
type peer struct {
	Name    string
	Addr    netip.AddrPort
	DNSName string // without the trailing dot
}

// peerFinder looks peers up by name through an SRV record and/or
// per-ordinal names, and remembers the last good answer per name: a name
// that does not exist or has no record of the type (ErrNotFound) removes
// its peers (not there yet, or gone); any other failure (a timeout, an
// rcode other than NOERROR and NXDOMAIN) keeps what was known, so a DNS
// outage does not empty the peer list. Every name is looked up absolute
// (rooted), so that only that name's answer counts: through the system
// resolver, a relative name would also be tried with each resolv.conf
// search suffix, and the last one's NXDOMAIN reported instead.
type peerFinder struct {
	srvName string
	domain  string
	admit   ExpectedSet
	// names lists the members looked up by their per-ordinal names: the
	// voters and the target set.
	names   func() []string
	self    string
	r       Resolver
	timeout time.Duration
	metrics *metrics
	log     *slog.Logger

	// Set once memberlist has bound: the family to look up and the port
	// per-ordinal names use.
	ipv6 bool
	port uint16

	mu       sync.Mutex
	fromSRV  map[string]peer
	fromName map[string]peer
	// suffix is the domain member names live under: PeersDomain, or what
	// follows the first label of the SRV targets once they are known.
	suffix string
}

func newPeerFinder(cfg *Config, r Resolver, m *metrics, log *slog.Logger) *peerFinder {
	f := &peerFinder{
		srvName:  strings.TrimSuffix(cfg.PeersSRV, "."),
		domain:   strings.Trim(cfg.PeersDomain, "."),
		admit:    cfg.admitted(),
		self:     cfg.NodeName,
		r:        r,
		timeout:  cfg.LookupTimeout,
		metrics:  m,
		log:      log,
		port:     uint16(cfg.PeersPort),
		fromSRV:  map[string]peer{},
		fromName: map[string]peer{},
		suffix:   strings.Trim(cfg.PeersDomain, "."),
	}
	return f
}

// observe times a lookup and counts its result.
func (f *peerFinder) observe(qtype string, start time.Time, err error) {
	f.metrics.lookupDuration.WithLabelValues(qtype).Observe(time.Since(start).Seconds())
	result := "ok"
	switch {
	case errors.Is(err, ErrNotFound):
		result = "not_found"
	case err != nil:
		result = "error"
	}
	f.metrics.lookups.WithLabelValues(qtype, result).Inc()
}

func (f *peerFinder) addrType() string {
	if f.ipv6 {
		return "AAAA"
	}
	return "A"
}

// lookupHost resolves one host to a single address (the lowest, so every
// agent picks the same one).
func (f *peerFinder) lookupHost(ctx context.Context, host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	addrs, err := f.r.LookupAddrs(ctx, rooted(host), f.ipv6)
	f.observe(f.addrType(), start, err)
	if err != nil {
		return netip.Addr{}, err
	}
	return f.pick(addrs)
}

func (f *peerFinder) pick(addrs []netip.Addr) (netip.Addr, error) {
	var ok []netip.Addr
	for _, a := range addrs {
		if a.Is6() == f.ipv6 {
			ok = append(ok, a)
		}
	}
	if len(ok) == 0 {
		return netip.Addr{}, ErrNotFound
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Less(ok[j]) })
	return ok[0], nil
}

// refresh looks every peer up again and returns the peers known by name,
// this agent excluded.
func (f *peerFinder) refresh(ctx context.Context) map[string]peer {
	var wg sync.WaitGroup
	if f.srvName != "" {
		wg.Go(func() { f.refreshSRV(ctx) })
	}
	var names []string
	if f.domain != "" {
		names = f.names()
		for _, name := range names {
			if name == f.self {
				continue
			}
			wg.Go(func() { f.refreshName(ctx, name) })
		}
	}
	wg.Wait()
	if f.domain != "" {
		f.forgetNames(names)
	}
	return f.peers()
}

// forgetNames drops the per-ordinal answers of names no longer looked up
// (ordinals that left the voters and the target set).
func (f *peerFinder) forgetNames(names []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range f.fromName {
		if !slices.Contains(names, n) {
			delete(f.fromName, n)
		}
	}
}

func (f *peerFinder) refreshName(ctx context.Context, name string) {
	host := name + "." + f.domain
	addr, err := f.lookupHost(ctx, host)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		f.fromName[name] = peer{Name: name, Addr: netip.AddrPortFrom(addr, f.port), DNSName: host}
	case errors.Is(err, ErrNotFound):
		delete(f.fromName, name)
	default:
		f.log.Debug("peer lookup failed; keeping the last answer", "name", host, "err", err)
	}
}

func (f *peerFinder) refreshSRV(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, f.timeout)
	start := time.Now()
	recs, err := f.r.LookupSRV(lctx, rooted(f.srvName))
	cancel()
	f.observe("SRV", start, err)
	if errors.Is(err, ErrNotFound) {
		f.mu.Lock()
		f.fromSRV = map[string]peer{}
		f.mu.Unlock()
		return
	}
	if err != nil {
		f.log.Debug("SRV lookup failed; keeping the last answer", "name", f.srvName, "err", err)
		return
	}
	f.mu.Lock()
	old := f.fromSRV
	f.mu.Unlock()
	next := map[string]peer{}
	var nmu sync.Mutex
	var wg sync.WaitGroup
	for _, rec := range recs {
		target := strings.TrimSuffix(rec.Target, ".")
		name, suffix, _ := strings.Cut(target, ".")
		if _, ok := f.admit.Contains(name); !ok {
			continue
		}
		f.mu.Lock()
		if f.suffix == "" {
			f.suffix = suffix
		}
		f.mu.Unlock()
		if name == f.self {
			continue
		}
		wg.Go(func() {
			addr, err := f.pick(rec.Addrs)
			if err != nil {
				addr, err = f.lookupHost(ctx, target)
			}
			nmu.Lock()
			defer nmu.Unlock()
			switch {
			case err == nil:
				next[name] = peer{Name: name, Addr: netip.AddrPortFrom(addr, rec.Port), DNSName: target}
			case errors.Is(err, ErrNotFound):
			default:
				if p, ok := old[name]; ok {
					next[name] = p
				}
			}
		})
	}
	wg.Wait()
	f.mu.Lock()
	f.fromSRV = next
	f.mu.Unlock()
}

// peers merges both sources; a per-ordinal answer wins over the SRV one.
func (f *peerFinder) peers() map[string]peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]peer, len(f.fromSRV)+len(f.fromName))
	for n, p := range f.fromSRV {
		out[n] = p
	}
	for n, p := range f.fromName {
		out[n] = p
	}
	f.metrics.peersResolved.Set(float64(len(out)))
	return out
}

// named reports whether members' DNS names are known: with only an SRV
// name, not before its first answer.
func (f *peerFinder) named() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suffix != "" || (f.srvName == "" && f.domain == "")
}

// dnsName is the name hooks show for a member: name.<domain> once the
// domain is known, else the node name.
func (f *peerFinder) dnsName(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.suffix == "" {
		return name
	}
	return name + "." + f.suffix
}

// rooted is name made absolute, with the trailing dot that keeps a
// resolver from applying a search list to it.
func rooted(name string) string {
	return strings.TrimSuffix(name, ".") + "."
}

func (p peer) String() string {
	return p.Name + "@" + p.Addr.String()
}
