// Command coredns is upstream CoreDNS, built from the module proxy with only
// the plugins a Kubernetes cluster DNS uses (the kubeadm and kube-dns-style
// Corefiles, the stub-domain forward, and what the tests, the benchmarks and
// docs/integration.md configure). Leaving out the cloud back ends (route53,
// azure, clouddns), tracing and dnstap keeps the cold build about half the
// size; every plugin kept is upstream's code at the pinned version, so a
// Corefile using only these behaves exactly as in a full CoreDNS.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() { coremain.Run() }
