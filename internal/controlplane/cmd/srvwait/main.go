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
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	srv := flag.String("srv", "", "SRV name to ask, such as _etcd-server._tcp.etcd.default.peers.peers.internal.")
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
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	last := ""
	for {
		targets, err := resolved(ctx, *srv)
		seen := fmt.Sprintf("%d of %d targets resolve: %v", len(targets), *count, targets)
		if err != nil {
			seen += ": " + err.Error()
		}
		if seen != last {
			fmt.Println("srvwait:", seen)
			last = seen
		}
		if len(targets) >= *count {
			return
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "srvwait: gave up:", seen)
			os.Exit(1)
		case <-tick.C:
		}
	}
}

// resolved returns the sorted targets of name's SRV answer that resolve to
// an address, and the first error seen.
func resolved(ctx context.Context, name string) ([]string, error) {
	_, srvs, err := net.DefaultResolver.LookupSRV(ctx, "", "", name)
	if err != nil {
		return nil, err
	}
	var targets []string
	var errs []error
	for _, s := range srvs {
		if _, err := net.DefaultResolver.LookupHost(ctx, s.Target); err != nil {
			errs = append(errs, err)
			continue
		}
		targets = append(targets, strings.TrimSuffix(s.Target, "."))
	}
	slices.Sort(targets)
	return slices.Compact(targets), errors.Join(errs...)
}
