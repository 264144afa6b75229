package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	childproc "github.com/peerdns/peerdns/internal/proc"
	"github.com/peerdns/peerdns/internal/testtools"
)

// A pod's resolv.conf: the cluster DNS, its search list, ndots:5.
const podResolvConf = `nameserver 127.0.0.1
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5 timeout:1 attempts:1
`

// With the system resolver and a pod's search list, the SRV name answering
// SERVFAIL (peerdns unsynced, or unreachable behind the cluster DNS's
// forward) while its search-suffixed variants answer NXDOMAIN (the cluster
// DNS) must keep the last good peers: only the configured name's rcode
// counts. CoreDNS plays the cluster DNS, forwarding peerdns.internal to a
// second CoreDNS that plays peerdns and is then stopped.
func TestSystemResolverKeepsPeersWhenTheNameFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	coredns := testtools.Path(t, "coredns")
	ns := newNetns(t, "srv", podResolvConf)
	dir := t.TempDir()
	const srvName = "_gossip._tcp.web.default.svc.peerdns.internal"
	gossip := map[string]int{"web-0": 7946, "web-1": 7947}

	write := func(name, body string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The pinned CoreDNS has no file plugin: templates serve the records.
	var srvAnswers string
	for name, port := range gossip {
		srvAnswers += fmt.Sprintf("    answer \"{{ .Name }} 5 IN SRV 0 10 %d %s.web.default.svc.peerdns.internal.\"\n", port, name)
	}
	upstream := startCoreDNS(t, ns, coredns, "peerdns", write("Corefile.peerdns", `peerdns.internal:5300 {
  bind 127.0.0.1
  template IN SRV {
    match ^_gossip\._tcp\.web\.default\.svc\.peerdns\.internal\.$
`+srvAnswers+`  }
  template IN A {
    match ^web-[01]\.web\.default\.svc\.peerdns\.internal\.$
    answer "{{ .Name }} 5 IN A 127.0.0.1"
  }
}
`))
	startCoreDNS(t, ns, coredns, "cluster-dns", write("Corefile.cluster", `peerdns.internal:53 {
  bind 127.0.0.1
  forward . 127.0.0.1:5300
}
cluster.local:53 {
  bind 127.0.0.1
  template ANY ANY {
    rcode NXDOMAIN
  }
}
`))
	eventually(t, "the cluster DNS answers the SRV name", wantRcode(ns, srvName, dns.RcodeSuccess))

	procs := map[string]*proc{}
	for name, port := range gossip {
		p := startCommand(t, name, ns.command(binary,
			"--node.name="+name,
			"--cluster.expected=2",
			"--cluster.label=test/web",
			fmt.Sprintf("--gossip.listen-address=127.0.0.1:%d", port),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port+1000),
			"--peers.srv="+srvName,
			"--peers.refresh-interval=500ms",
			"--peers.refresh-min-interval=50ms",
			"--gossip.profile=local",
			"--log.level=debug",
		))
		p.client = ns.httpClient()
		procs[name] = p
	}
	obs := procs["web-0"]
	eventually(t, "web-0 sees both", wantMembers(obs, map[string]string{"web-0": "alive", "web-1": "alive"}))
	eventually(t, "web-0 resolved web-1", wantMetric(obs, "peeragent_peers_resolved", 1))

	if err := upstream.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// What the resolver now gets: SERVFAIL for the name, NXDOMAIN for the
	// names the search list makes of it.
	eventually(t, "the SRV name answers SERVFAIL", wantRcode(ns, srvName, dns.RcodeServerFailure))
	eventually(t, "a search-suffixed name answers NXDOMAIN", wantRcode(ns, srvName+".default.svc.cluster.local", dns.RcodeNameError))

	const failed = `peeragent_dns_lookups_total{result="error",type="SRV"}`
	const notFound = `peeragent_dns_lookups_total{result="not_found",type="SRV"}`
	before, _ := obs.metric(failed)
	eventually(t, "web-0 looked the SRV name up during the outage", func() error {
		if n, _ := obs.metric(notFound); n > 0 {
			return nil // the failure under test; reported below
		}
		if n, _ := obs.metric(failed); n < before+2 {
			return fmt.Errorf("%s = %v, want at least %v", failed, n, before+2)
		}
		return nil
	})
	if n, _ := obs.metric(notFound); n > 0 {
		t.Errorf("%s = %v: a SERVFAIL for the name was taken for NXDOMAIN", notFound, n)
	}
	if err := wantMetric(obs, "peeragent_peers_resolved", 1)(); err != nil {
		t.Errorf("after the SRV name failed: %v; want the last good answer kept", err)
	}
}

// startCoreDNS runs CoreDNS with corefile in ns until t ends.
func startCoreDNS(t *testing.T, ns *netns, coredns, name, corefile string) *childproc.Process {
	t.Helper()
	cmd := ns.command(coredns, "-conf", corefile)
	p, err := childproc.Start(name, cmd.Path, cmd.Args[1:], filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.Tail(40))
		}
	})
	return p
}

// wantRcode checks the rcode 127.0.0.1:53 in ns answers for SRV name.
func wantRcode(ns *netns, name string, rcode int) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := ns.dial(ctx, "udp", "127.0.0.1:53")
		if err != nil {
			return err
		}
		conn := &dns.Conn{Conn: c}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
		if err := conn.WriteMsg(q); err != nil {
			return err
		}
		resp, err := conn.ReadMsg()
		if err != nil {
			return err
		}
		if resp.Rcode != rcode {
			return fmt.Errorf("SRV %s: %s, want %s", name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[rcode])
		}
		return nil
	}
}
