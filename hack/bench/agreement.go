package main

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// compareAnswers asks peerdns and CoreDNS every distinct query of the
// workloads and returns how their answers differ in substance: rcode,
// truncation, addresses, SRV targets and ports, glue. Priorities, weights,
// TTLs and order are each server's choice and are not compared.
func (b *bench) compareAnswers() []string {
	type ask struct {
		q    query
		edns uint16
		tcp  bool
	}
	var asks []ask
	seen := map[query]bool{}
	for _, q := range queryMix() {
		if !seen[q] {
			seen[q] = true
			asks = append(asks, ask{q: q})
		}
	}
	for _, svc := range []string{svcMedium, svcLarge} {
		q := query{srvName(benchNamespace, svc), dns.TypeSRV}
		asks = append(asks, ask{q: q, edns: largeEDNS}, ask{q: q, tcp: true})
	}
	var diffs []string
	probers := map[string]*prober{}
	for _, s := range []*dnsServer{b.peerdns, b.coredns} {
		p, err := newProber(s.addr)
		if err != nil {
			return []string{err.Error()}
		}
		defer p.close()
		probers[s.name] = p
	}
	for _, a := range asks {
		var got [2]string
		for i, s := range []*dnsServer{b.peerdns, b.coredns} {
			var m *dns.Msg
			var err error
			if a.tcp {
				m, _, err = queryTCP(s.addr, a.q.name, a.q.qtype, 5*time.Second)
			} else {
				m, err = probers[s.name].query(a.q.name, a.q.qtype, a.edns, 2*time.Second)
			}
			if err != nil {
				got[i] = err.Error()
				continue
			}
			got[i] = answerSummary(m)
		}
		if got[0] != got[1] {
			transport := "udp"
			if a.tcp {
				transport = "tcp"
			}
			diffs = append(diffs, fmt.Sprintf("%s %s (%s, EDNS %d): peerdns %s; CoreDNS %s",
				a.q.name, dns.TypeToString[a.q.qtype], transport, a.edns, got[0], got[1]))
		}
	}
	return diffs
}

// answerSummary is the substance of an answer, for comparison.
func answerSummary(m *dns.Msg) string {
	s := dns.RcodeToString[m.Rcode]
	if m.Truncated {
		return s + " TC"
	}
	if addrs := addrsOf(m); len(addrs) > 0 {
		s += fmt.Sprintf(" A×%d %v…%v", len(addrs), addrs[0], addrs[len(addrs)-1])
	}
	if targets, glue := srvTargets(m); len(targets) > 0 {
		h := fnv.New32a()
		h.Write([]byte(strings.Join(targets, ",")))
		s += fmt.Sprintf(" SRV×%d (%s…%s, set %08x) glue A×%d", len(targets), targets[0], targets[len(targets)-1], h.Sum32(), glue)
	}
	return s
}
