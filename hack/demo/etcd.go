package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peerdns/peerdns/internal/seed"
)

// etcd installs the seed's database (test/node/testdata/etcd) and tells
// its bootstrap from the peer view, a key read on another member, and a
// member deleted and rejoining with its data: the checks TestEtcdOnNode
// waits on.
func (s *nodeScenario) etcd(ctx context.Context) error {
	s.n.say("The seed's database is etcd, the same pinned etcd the control plane runs, in an image of its own: "+
		"a headless Service etcd with ports etcd-server (2380) and etcd-client (2379), and a StatefulSet of 3 with "+
		"podManagementPolicy Parallel. Each member starts with --discovery-srv %s: it asks the cluster DNS for "+
		"_etcd-server._tcp under that name, in the peer view, which lists members before they are ready, and finds "+
		"itself among the targets by its --initial-advertise-peer-urls. A target that does not resolve yet would be "+
		"skipped and a partial cluster would bootstrap, so an init container (srvwait) holds etcd until all 3 targets "+
		"resolve. Each member keeps its data on a PersistentVolume (a directory on the node) pre-bound to its claim, "+
		"and runs the peeragent sidecar.", seed.EtcdDomain)
	dataDir := filepath.Join(s.cp.Dir(), "etcd-data")
	if err := seed.EtcdDataDirs(dataDir, seed.EtcdReplicas); err != nil {
		return err
	}
	start := time.Now()
	if _, err := s.helm(ctx, seed.InstallEtcd("./etcd", dataDir, imageTag)...); err != nil {
		return err
	}
	if err := s.await(ctx, "3 etcd members healthy, each listing the same 3", 3*time.Minute, s.EtcdHealthy(seed.EtcdReplicas)); err != nil {
		return err
	}
	s.n.note("install to a healthy 3-member etcd: %v", time.Since(start).Round(100*time.Millisecond))
	if _, err := s.kubectl(ctx, "get", "pods,pvc", "--selector", seed.EtcdSelector, "-o", "wide"); err != nil {
		return err
	}
	if _, err := s.kubectl(ctx, "logs", seed.EtcdPodName(0), "--container", "srvwait"); err != nil {
		return err
	}
	etcd0, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.EtcdPodName(0), metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.n.say("What etcd asked, from etcd-0's network namespace:")
	if _, err := s.digIn(ctx, etcd0, "+noall", "+answer", "+additional", "SRV", "_etcd-server._tcp."+seed.EtcdDomain); err != nil {
		return err
	}
	s.n.say("etcd's JSON gateway on the client port, from this machine: the member list, and a key written through etcd-0 and read through etcd-2.")
	gateway := "http://" + etcd0.Status.PodIP + ":" + strconv.Itoa(seed.EtcdClientPort)
	if _, err := s.shell(ctx, "curl -s -X POST -d '{}' "+gateway+"/v3/cluster/member/list"); err != nil {
		return err
	}
	if err := s.EtcdPut(ctx, *etcd0, "seed", "v1"); err != nil {
		return err
	}
	if err := s.await(ctx, "etcd-2 to read seed=v1", 30*time.Second, s.EtcdHas(seed.EtcdPodName(2), "seed", "v1")); err != nil {
		return err
	}
	s.n.note("seed=v1, written through etcd-0, read through etcd-2")
	if err := s.await(ctx, "the etcd members' agents to count 3 of 3 alive, with quorum", 2*time.Minute, s.EtcdQuorum(seed.EtcdReplicas, seed.EtcdReplicas)); err != nil {
		return err
	}
	s.n.say("Delete etcd-1: the StatefulSet recreates it under the same name on the same claim; it restarts from its " +
		"data as the member it was and rejoins.")
	name := seed.EtcdPodName(1)
	old, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if _, err := s.kubectl(ctx, "delete", "pod", name); err != nil {
		return err
	}
	back := func(ctx context.Context) error {
		return errors.Join(s.Recreated(name, old.UID)(ctx), s.EtcdHealthy(seed.EtcdReplicas)(ctx))
	}
	if err := s.await(ctx, fmt.Sprintf("%s back, 3 members healthy", name), 3*time.Minute, back); err != nil {
		return err
	}
	if err := s.await(ctx, name+" to read seed=v1", 30*time.Second, s.EtcdHas(name, "seed", "v1")); err != nil {
		return err
	}
	s.n.note("%s reads seed=v1 again", name)
	_, err = s.shell(ctx, "curl -s -X POST -d '{}' "+gateway+"/v3/cluster/member/list")
	return err
}
