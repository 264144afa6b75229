// Command srvwait exits 0 once the SRV name --srv lists --count targets and
// each of them resolves to an address, asking the resolver of
// /etc/resolv.conf every --interval; it exits 1 after --timeout.
//
// It is the seed etcd's init container on the test node: etcd
// --discovery-srv skips a target that does not resolve yet and bootstraps a
// partial cluster that never heals, so etcd must not start before every
// member's name resolves. It stands in for the peeragent sidecar's startup
// gate for "every expected member", which does not exist yet (issue 17).
// It waits on a restart too, where etcd would not need it: a member that
// comes back while another is missing waits for it.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	srv := flag.String("srv", "", "SRV name to ask, such as _etcd-server._tcp.etcd.default.peers.peerdns.internal.")
	count := flag.Int("count", 0, "Targets the SRV answer must list, each resolving.")
	interval := flag.Duration("interval", 500*time.Millisecond, "Time between two attempts.")
	timeout := flag.Duration("timeout", 5*time.Minute, "Time after which to give up.")
	flag.Parse()
	if *srv == "" || *count < 1 {
		fmt.Fprintln(os.Stderr, "srvwait: --srv and --count (at least 1) are required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := wait(ctx, net.DefaultResolver, *srv, *count, *interval, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "srvwait:", err)
		os.Exit(1)
	}
}

// wait returns nil once name's SRV answer lists count targets that each
// resolve, asking r every interval, and an error saying what its last
// whole attempt saw when ctx ends first. It writes to out what it sees each
// time that changes.
func wait(ctx context.Context, r *net.Resolver, name string, count int, interval time.Duration, out io.Writer) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := ""
	for {
		seen, n := attempt(ctx, r, name, count)
		if cutShort(ctx) {
			return fmt.Errorf("gave up: %s", cmp.Or(last, seen))
		}
		if seen != last {
			fmt.Fprintln(out, "srvwait:", seen)
			last = seen
		}
		if n >= count {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up: %s", last)
		case <-tick.C:
		}
	}
}

// cutShort reports whether ctx has ended or its deadline has passed: the
// resolver times a query out at ctx's deadline, which may be a moment
// before ctx says it is done.
func cutShort(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

// attempt asks name's SRV and each target's address once, and says what it
// saw: the targets that resolve and those that do not, both sorted; n is
// how many resolve.
func attempt(ctx context.Context, r *net.Resolver, name string, count int) (seen string, n int) {
	_, srvs, err := r.LookupSRV(ctx, "", "", name)
	if err != nil {
		return fmt.Sprintf("0 of %d targets resolve: %v", count, err), 0
	}
	var ok, not []string
	for _, s := range srvs {
		target := strings.TrimSuffix(s.Target, ".")
		if _, err := r.LookupHost(ctx, s.Target); err != nil {
			not = append(not, target)
		} else {
			ok = append(ok, target)
		}
	}
	slices.Sort(ok)
	slices.Sort(not)
	ok, not = slices.Compact(ok), slices.Compact(not)
	seen = fmt.Sprintf("%d of %d targets resolve: %v", len(ok), count, ok)
	if len(not) > 0 {
		seen += fmt.Sprintf("; listed, not resolving: %v", not)
	}
	return seen, len(ok)
}
