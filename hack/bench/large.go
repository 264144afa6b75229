package main

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// largeEDNS is the UDP size the large SRV queries advertise: the DNS flag
// day 2020 default, so their answers truncate (TC) and clients retry over
// TCP.
const largeEDNS = 1232

// mixedEDNS are the sizes the mixed-size workload's queries advertise in
// turn, a normal mix of clients: none (512 bytes, stub resolvers without
// EDNS), 1232 (forwarders after DNS flag day 2020), 4096 (dig).
var mixedEDNS = []uint16{0, 1232, 4096}

// largeAnswer is what a server sends for a large SRV query over TCP.
type largeAnswer struct {
	server string
	bytes  int
	srv    int
	glue   int
}

// largeResult is SRV queries on the 100- and 1,000-endpoint services, UDP
// with EDNS 1232 (truncated) and TCP, and on the 100-endpoint service with
// mixed EDNS sizes.
type largeResult struct {
	workloads []*workload
	answers   map[string][]largeAnswer // by service
	// fixedSize and mixedSizes are the 100-endpoint UDP workloads with EDNS
	// 1232 alone and with mixedEDNS, for their ratio.
	fixedSize, mixedSizes *workload
}

func (b *bench) large(ctx context.Context) (*largeResult, error) {
	res := &largeResult{answers: map[string][]largeAnswer{}}
	for _, svc := range []string{svcMedium, svcLarge} {
		for _, s := range []*dnsServer{b.peerdns, b.coredns} {
			m, size, err := queryTCP(s.addr, srvName(benchNamespace, svc), dns.TypeSRV, 5*time.Second)
			if err != nil {
				return nil, err
			}
			targets, glue := srvTargets(m)
			res.answers[svc] = append(res.answers[svc], largeAnswer{server: s.name, bytes: size, srv: len(targets), glue: glue})
		}
	}
	for _, c := range []struct {
		svc, file string
		tcp       bool
		mixed     bool
	}{
		{svcMedium, b.srv100File, false, false},
		{svcMedium, b.srv100MixedFile, false, true},
		{svcMedium, b.srv100File, true, false},
		{svcLarge, b.srv1000File, false, false},
		{svcLarge, b.srv1000File, true, false},
	} {
		transport := "UDP, EDNS 1232 → TC"
		switch {
		case c.tcp:
			transport = "TCP"
		case c.mixed:
			transport = "UDP, EDNS none / 1232 / 4096 in turn → TC"
		}
		spec := perfSpec{data: c.file, binary: true, tcp: c.tcp, clients: b.cfg.clients, duration: b.cfg.largeDuration}
		if c.tcp && c.svc == svcLarge {
			transport = "TCP (hack/bench's TCP client, not dnsperf)"
			q := new(dns.Msg)
			q.SetQuestion(srvName(benchNamespace, c.svc), dns.TypeSRV)
			q.RecursionDesired = false
			q.SetEdns0(largeEDNS, false)
			wire, err := q.Pack()
			if err != nil {
				return nil, err
			}
			spec.tcpQuery = wire
		}
		w, err := b.runRounds(ctx, fmt.Sprintf("SRV %s, %s", c.svc, transport), b.dnsTargets(), spec)
		if err != nil {
			return nil, err
		}
		res.workloads = append(res.workloads, w)
		if c.svc == svcMedium && !c.tcp {
			if c.mixed {
				res.mixedSizes = w
			} else {
				res.fixedSize = w
			}
		}
	}
	return res, nil
}

// answerBytes is the size of server's whole TCP answer for svc.
func (r *largeResult) answerBytes(svc, server string) int {
	for _, a := range r.answers[svc] {
		if a.server == server {
			return a.bytes
		}
	}
	return 0
}
