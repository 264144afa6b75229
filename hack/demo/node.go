package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
	"github.com/peerdns/peerdns/internal/seed"
)

// imageTag tags the images the demo builds; the rest of the scenario's
// fixed points are package seed's, as test/node's TestSeedOnNode has them.
const imageTag = "demo"

// nodeTrace is what nodeDemo knew of the node, for checking after the
// demo that nothing of it is left.
type nodeTrace struct {
	dir        string
	node       controlplane.NodeInfo
	netns      string   // the node's network namespace, as /proc/<pid>/ns/net reads
	containers []string // IDs of every container the demo saw in a pod's status
}

// nodeScenario is the running demo on a real node.
type nodeScenario struct {
	n      *narrator
	cp     *controlplane.ControlPlane
	client kubernetes.Interface
	env    []string // the commands' environment: KUBECONFIG, helm's homes
	bin    string   // ToolsBin: kubectl and helm
	charts string   // copies of the charts the demo installs
	pods   *podWatch
	// seed's checks, the ones test/node waits on.
	*seed.Cluster
}

// nodeDemo tells the seed's story on a real node. Once the node has
// started, whatever happens next, it stops the node and checks that
// nothing of it is left (a failed start cleans up in controlplane.Start);
// it returns what it checked.
func nodeDemo(ctx context.Context, cfg config, logger *slog.Logger, n *narrator) (trace nodeTrace, err error) {
	n.total = 11
	s := &nodeScenario{n: n, bin: cfg.toolsBin}

	if err := n.title(ctx, "Start a control plane and a real node"); err != nil {
		return trace, err
	}
	n.say("etcd, kube-apiserver, kube-controller-manager and kube-scheduler run on 127.0.0.1; containerd, "+
		"the kubelet and kube-proxy run as node %s in network, PID and mount namespaces of their own, with pods "+
		"on a CNI bridge that this machine reaches through a route. CoreDNS is the cluster DNS at %s, as kubeadm "+
		"installs it, with a stub zone: names under %s go to %s, where peerdns will be. Everything lives in a "+
		"temporary directory and goes when the demo ends. The first start builds the node's images; give it a minute.",
		controlplane.NodeName, controlplane.ClusterDNSIP, seed.StubZone, seed.PeerDNSIP)
	stopTicking := n.ticking("starting the control plane and the node")
	cp, err := controlplane.Start(ctx, controlplane.Options{
		ToolsBin:  cfg.toolsBin,
		Node:      true,
		StubZones: map[string]string{seed.StubZone: seed.PeerDNSIP},
		Logger:    logger.With("component", "controlplane"),
	})
	stopTicking()
	if err != nil {
		return trace, err
	}
	s.cp = cp
	trace.dir = cp.Dir()
	if info, ok := cp.Node(); ok {
		trace.node = info
		trace.netns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", info.InitPID))
	}
	defer func() {
		trace.containers = s.pods.containerIDs()
		err = errors.Join(err, s.stop(trace))
	}()
	n.note("control plane and node ready")
	if err := s.setUp(); err != nil {
		return trace, err
	}
	n.say("The commands below run with the control plane's kubeconfig, as after `export KUBECONFIG=%s`.", cp.Kubeconfig())
	if _, err := s.kubectl(ctx, "get", "nodes", "-o", "wide"); err != nil {
		return trace, err
	}
	if _, err := s.kubectl(ctx, "--namespace", "kube-system", "get", "configmap", "coredns", "-o", "jsonpath={.data.Corefile}"); err != nil {
		return trace, err
	}

	for _, step := range []struct {
		title string
		run   func(context.Context) error
	}{
		{"Build the images and import them into the node", s.loadImages},
		{"Install peerdns with its chart", s.installPeerDNS},
		{"Install the seed: the pods come up in order", s.installSeed},
		{"Ask the cluster DNS from inside a pod", s.digFromPod},
		{"The peer view: what the agents look up", s.peerView},
		{"The agents reach quorum", s.quorum},
		{"kubectl scale to 5, then back to 2: no pod restarts", s.scale},
		{"Delete web-1: it comes back under the same name", s.deletePod},
		{"The seed's database: etcd bootstraps from the peer view", s.etcd},
	} {
		if err := n.title(ctx, step.title); err != nil {
			return trace, err
		}
		if err := step.run(ctx); err != nil {
			return trace, fmt.Errorf("step %d/%d, %s: %w", n.step, n.total, step.title, err)
		}
	}
	if err := n.title(ctx, "Stop everything"); err != nil {
		return trace, err
	}
	return trace, nil
}

// setUp prepares the commands' environment, the API client and the charts.
func (s *nodeScenario) setUp() error {
	dir := s.cp.Dir()
	// helm keeps its cache and repositories in the demo's directory, so
	// nothing of it stays in $HOME.
	s.env = append(seed.HelmEnv(filepath.Join(dir, "helm")), "KUBECONFIG="+s.cp.Kubeconfig())
	var err error
	if s.client, err = kubernetes.NewForConfig(s.cp.AdminConfig()); err != nil {
		return err
	}
	s.Cluster = &seed.Cluster{CP: s.cp, Client: s.client, Dig: "dig"}
	s.pods = &podWatch{cluster: s.Cluster, n: s.n, containers: map[string]bool{}}
	s.charts = filepath.Join(dir, "charts")
	return seed.CopyCharts(s.charts)
}

// kubectl runs and shows `kubectl args...`.
func (s *nodeScenario) kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "kubectl"), args...)
	cmd.Env = s.env
	return s.n.run(cmd, shownArgs(cmd.Args))
}

// helm runs and shows `helm args...` in the charts' directory.
func (s *nodeScenario) helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "helm"), args...)
	cmd.Env = s.env
	cmd.Dir = s.charts
	return s.n.run(cmd, shownArgs(cmd.Args))
}

// shell runs and shows a shell command line (curl piped into grep).
func (s *nodeScenario) shell(ctx context.Context, line string) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Env = s.env
	return s.n.run(cmd, line)
}

// digIn runs and shows dig in pod's network namespace, asking the cluster
// DNS.
func (s *nodeScenario) digIn(ctx context.Context, pod *corev1.Pod, args ...string) (string, error) {
	cmd, err := s.cp.PodNetworkCommand(ctx, pod, "dig", append([]string{"@" + controlplane.ClusterDNSIP}, args...)...)
	if err != nil {
		return "", err
	}
	return s.n.run(cmd, shownArgs(cmd.Args))
}

func (s *nodeScenario) loadImages(ctx context.Context) error {
	s.n.say("No registry is reachable from here, so the images are built from this checkout (cmd/peerdns and " +
		"cmd/peeragent, static binaries in images of one layer) and imported into the node's containerd; the " +
		"charts use them with imagePullPolicy Never.")
	stop := s.n.ticking("building and importing")
	err := s.cp.LoadImages(ctx, append(seed.Images(imageTag), seed.EtcdImages(s.cp)...)...)
	stop()
	if err != nil {
		return err
	}
	s.n.note("imported %s:%s, %s:%s, %s (the pinned etcd the control plane runs) and %s",
		seed.PeerDNSImage, imageTag, seed.PeeragentImage, imageTag, controlplane.EtcdImageRef, controlplane.SRVWaitImage)
	return nil
}

// await waits, narrating, until check passes: the pods' changes as they
// happen, and every 5 s what check last saw.
func (s *nodeScenario) await(ctx context.Context, what string, limit time.Duration, check seed.Check) error {
	return s.n.wait(ctx, what, limit, func(ctx context.Context) error {
		if err := s.pods.poll(ctx); err != nil {
			return err
		}
		return check(ctx)
	})
}

// inOrder stops log and tells whether the pods came and went in order.
func (s *nodeScenario) inOrder(log *seed.PodLog, before, after int) error {
	if err := errors.Join(log.Stop(), log.InOrder(before, after)); err != nil {
		return err
	}
	s.n.note("in order: each pod was created only after the one below it was Ready, and removed only after the one above it was gone (from a watch of the pods)")
	return nil
}

func (s *nodeScenario) installPeerDNS(ctx context.Context) error {
	s.n.say("peerdns goes in its own namespace, behind a Service with the fixed cluster IP %s that the cluster "+
		"DNS's stub zone forwards to. One replica is enough here (the chart's default is 2). The charts are "+
		"copies in %s: charts/peerdns, and the seed (test/node/testdata/seed) with charts/peeragent as its subchart.",
		seed.PeerDNSIP, s.charts)
	if _, err := s.helm(ctx, seed.InstallPeerDNS("./peerdns", imageTag)...); err != nil {
		return err
	}
	if err := s.await(ctx, "peerdns Ready", 90*time.Second, s.PodsReady(seed.PeerDNSNamespace, seed.PeerDNSSelector, 1)); err != nil {
		return err
	}
	_, err := s.kubectl(ctx, "--namespace", seed.PeerDNSNamespace, "get", "pods,services", "-o", "wide")
	return err
}

func (s *nodeScenario) installSeed(ctx context.Context) error {
	s.n.say("The seed is the headless Service nginx and the StatefulSet web: 3 replicas with podManagementPolicy " +
		"OrderedReady, so web-1 is created only once web-0 is Ready, and web-2 once web-1 is. Each pod runs a " +
		"small web server standing in for nginx and peeragent as a native sidecar, from the peeragent chart's " +
		"template; the agents find each other through the peer view and gossip. The lines in brackets are the " +
		"demo watching the pods (seconds since it started).")
	log, err := s.WatchPods(ctx)
	if err != nil {
		return err
	}
	defer log.Stop() //nolint:errcheck // inOrder reports it; this one is for the early returns
	if _, err := s.helm(ctx, seed.InstallSeed("./seed", imageTag)...); err != nil {
		return err
	}
	if err := s.await(ctx, "StatefulSet web: 3 pods Ready", 3*time.Minute, s.Rollout(3, 0)); err != nil {
		return err
	}
	if err := s.inOrder(log, 0, 3); err != nil {
		return err
	}
	_, err = s.kubectl(ctx, "get", "pods", "-o", "wide")
	return err
}

func (s *nodeScenario) digFromPod(ctx context.Context) error {
	pod, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.PodName(0), metav1.GetOptions{})
	if err != nil {
		return err
	}
	if err := s.await(ctx, "the cluster DNS to answer SRV "+seed.SvcName, 30*time.Second, s.ServiceSRV(3)); err != nil {
		return err
	}
	s.n.say("web-0's image holds nothing but its web server, so the demo runs this machine's dig in web-0's "+
		"network namespace (nsenter -n): the query leaves from the pod's address to the cluster DNS at %s, as "+
		"`kubectl exec web-0 -- dig …` would with dig in the image. CoreDNS forwards %s to peerdns. SRV lists "+
		"every ready pod with each port of the service (web 80, gossip 7946), in ordinal order:", controlplane.ClusterDNSIP, seed.StubZone)
	if _, err := s.digIn(ctx, pod, "+noall", "+answer", "SRV", seed.SvcName); err != nil {
		return err
	}
	s.n.say("One port's SRV (_web._tcp) carries the targets' addresses in the additional section; each pod's own " +
		"name is an A record, the address kubectl showed above:")
	if _, err := s.digIn(ctx, pod, "+noall", "+answer", "+additional", "SRV", "_web._tcp."+seed.SvcName); err != nil {
		return err
	}
	if err := s.await(ctx, "each pod's A record to answer its address", 30*time.Second, s.PodAddresses); err != nil {
		return err
	}
	for i := range 3 {
		if _, err := s.digIn(ctx, pod, "+short", "A", seed.PodName(i)+"."+seed.SvcName); err != nil {
			return err
		}
	}
	return nil
}

func (s *nodeScenario) peerView(ctx context.Context) error {
	pod, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.PodName(0), metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.n.say("A clustered database's member is often ready only once it has joined the others, so the members must " +
		"find each other before they are ready. The peer view (the peers tree next to svc) lists every pod with an address, ready or not; " +
		"the agents ask it for the gossip port (--peers.srv). All three pods are ready now, so both views agree; " +
		"step 8 looks at both while a new pod is not ready yet.")
	_, err = s.digIn(ctx, pod, "+noall", "+answer", "SRV", "_gossip._tcp."+seed.PeersName)
	return err
}

func (s *nodeScenario) quorum(ctx context.Context) error {
	s.n.say("Each agent counts the members of the expected set web-0 … web-(N-1) (N is the chart's replicas, " +
		"--cluster.expected) that answer its own probes; quorum is ⌊N/2⌋+1 of them. They publish it " +
		"on port agent-web (9470), which the peeragent chart's PodMonitor (podMonitor.enabled) has Prometheus scrape; here curl reads it, " +
		"this machine reaching the pods through the node.")
	if err := s.await(ctx, "every agent to count 3 of 3 alive, with quorum", 2*time.Minute, s.Quorum(3, 3)); err != nil {
		return err
	}
	pods, err := s.Pods(ctx)
	if err != nil {
		return err
	}
	if _, err := s.shell(ctx, "curl -s http://"+pods[0].Status.PodIP+":"+seed.AgentPort+"/members"); err != nil {
		return err
	}
	return s.showQuorum(ctx, pods)
}

// showQuorum shows each pod's quorum metrics.
func (s *nodeScenario) showQuorum(ctx context.Context, pods []corev1.Pod) error {
	for _, p := range pods {
		s.n.note("%s:", p.Name)
		line := fmt.Sprintf(`curl -s http://%s:%s/metrics | grep -E '^peeragent_(members\{state="alive"\}|expected_members|voters|quorum_size|has_quorum) '`,
			p.Status.PodIP, seed.AgentPort)
		if _, err := s.shell(ctx, line); err != nil {
			return err
		}
	}
	return nil
}

func (s *nodeScenario) scale(ctx context.Context) error {
	s.n.say("Nothing in the pod template depends on the cluster's size: each agent reads the StatefulSet's " +
		"spec.replicas (a Role for that one object), so `kubectl scale` is all it takes, and no pod is rolled or " +
		"restarted. web-3 and web-4 join as learners, gossiping but not counted, and become voters once they " +
		"have been alive for the stabilization time; on the way down the removed ordinals leave the voting set " +
		"once the StatefulSet reports them gone, and until then a majority of the old and of the new set is " +
		"needed. While a new pod is not ready yet the demo asks both views.")
	s.pods.onUnready = s.compareViews
	defer func() { s.pods.onUnready = nil }()
	for _, replicas := range []int{5, 2} {
		pods, err := s.Pods(ctx)
		if err != nil {
			return err
		}
		log, err := s.WatchPods(ctx)
		if err != nil {
			return err
		}
		defer log.Stop() //nolint:errcheck // inOrder reports it; this one is for the early returns
		if _, err := s.kubectl(ctx, "scale", "statefulset", seed.StatefulSet, "--replicas="+strconv.Itoa(replicas)); err != nil {
			return err
		}
		if err := s.await(ctx, fmt.Sprintf("StatefulSet web: %d pods Ready", replicas), 5*time.Minute, s.Rollout(replicas, 0)); err != nil {
			return err
		}
		if err := s.inOrder(log, len(pods), replicas); err != nil {
			return err
		}
		if err := s.NotRestarted(pods, replicas)(ctx); err != nil {
			return fmt.Errorf("scaled to %d: %w", replicas, err)
		}
		if _, err := s.kubectl(ctx, "get", "pods", "-o", "wide"); err != nil {
			return err
		}
		if err := s.await(ctx, fmt.Sprintf("SRV to list %d pods", replicas), 30*time.Second, s.WebSRV(replicas)); err != nil {
			return err
		}
		web0, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.PodName(0), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, err := s.digIn(ctx, web0, "+short", "SRV", "_web._tcp."+seed.SvcName); err != nil {
			return err
		}
		if err := s.await(ctx, fmt.Sprintf("every agent to count %d of %d alive, with quorum", replicas, replicas), 2*time.Minute, s.Quorum(replicas, replicas)); err != nil {
			return err
		}
		if err := s.showQuorum(ctx, []corev1.Pod{*web0}); err != nil {
			return err
		}
	}
	return nil
}

// compareViews asks the ready view and the peer view about unready, a
// pod not Ready yet, once: the peer view should list it, the ready view
// not.
func (s *nodeScenario) compareViews(ctx context.Context, unready corev1.Pod) {
	s.pods.onUnready = nil
	s.n.note("%s is not Ready yet; asking both views:", unready.Name)
	if err := s.PeerViewOnly(unready.Name)(ctx); err != nil {
		s.n.note("%v (it may have become Ready meanwhile)", err)
		return
	}
	s.n.note("%s is in the peer view and not in the ready view", unready.Name)
}

func (s *nodeScenario) deletePod(ctx context.Context) error {
	s.n.say("A StatefulSet pod keeps its name, not its address. Deleting web-1 makes its agent leave; web-0 then " +
		"counts 1 of the 2 it expects and loses quorum until the StatefulSet recreates web-1 (same name, perhaps a new " +
		"address) and the agents readmit it. The demo follows web-0's view while this happens.")
	web1 := seed.PodName(1)
	old, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, web1, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if _, err := s.kubectl(ctx, "delete", "pod", web1); err != nil {
		return err
	}
	web0, err := s.client.CoreV1().Pods(seed.Namespace).Get(ctx, seed.PodName(0), metav1.GetOptions{})
	if err != nil {
		return err
	}
	view := ""
	follow := func(ctx context.Context) error {
		if m, err := seed.Scrape(ctx, web0.Status.PodIP); err == nil {
			v := fmt.Sprintf("web-0: %v of %v members alive, has_quorum %v",
				m[`peeragent_members{state="alive"}`], m["peeragent_expected_members"], m["peeragent_has_quorum"])
			if v != view {
				s.n.note("%s", v)
				view = v
			}
		}
		return errors.Join(s.Recreated(web1, old.UID)(ctx), s.Quorum(2, 2)(ctx))
	}
	if err := s.await(ctx, "web-1 back and readmitted", 3*time.Minute, follow); err != nil {
		return err
	}
	if _, err := s.kubectl(ctx, "get", "pods", "-o", "wide"); err != nil {
		return err
	}
	if err := s.await(ctx, "web-1's A record to answer its address", 30*time.Second, s.PodAddresses); err != nil {
		return err
	}
	if _, err := s.digIn(ctx, web0, "+short", "A", web1+"."+seed.SvcName); err != nil {
		return err
	}
	_, err = s.shell(ctx, "curl -s http://"+web0.Status.PodIP+":"+seed.AgentPort+"/members")
	return err
}

// stop stops the control plane and checks that nothing of the node is
// left, whatever Stop returned: both go into the error.
func (s *nodeScenario) stop(trace nodeTrace) error {
	stopErr := s.cp.Stop()
	if left := leftovers(trace); len(left) > 0 {
		return errors.Join(stopErr, fmt.Errorf("left behind after stop: %s", strings.Join(left, "; ")))
	}
	fmt.Fprintf(s.n.out, "\nStopped the control plane and the node. Nothing is left: no process in the node's namespaces, "+
		"no link %s, no route to %s, no mount under and no directory %s, no cgroup of the %d containers seen.\n",
		trace.node.Link, trace.node.PodCIDR, trace.dir, len(trace.containers))
	if stopErr != nil {
		fmt.Fprintf(s.n.out, "But stopping reported an error: %v\n", stopErr)
	}
	return stopErr
}

// leftovers returns what of the node exists after the control plane has
// stopped, or nothing.
func leftovers(trace nodeTrace) []string {
	var left []string
	if trace.netns != "" {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/net"); l == trace.netns {
				left = append(left, "process "+e.Name()+" in the node's network namespace")
			}
		}
	}
	if trace.node.Link != "" {
		if out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput(); err != nil || strings.Contains(string(out), trace.node.Link) {
			left = append(left, fmt.Sprintf("link %s (ip: %v)", trace.node.Link, err))
		}
	}
	if trace.node.PodCIDR != "" {
		if out, err := exec.Command("ip", "route", "show", trace.node.PodCIDR).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			left = append(left, fmt.Sprintf("route %q (ip: %v)", strings.TrimSpace(string(out)), err))
		}
	}
	if trace.dir != "" {
		if mounts, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(mounts), trace.dir) {
			left = append(left, fmt.Sprintf("mounts under %s (read: %v)", trace.dir, err))
		}
		if _, err := os.Stat(trace.dir); !errors.Is(err, os.ErrNotExist) {
			left = append(left, fmt.Sprintf("directory %s (stat: %v)", trace.dir, err))
		}
	}
	// runc (cgroupfs, no parent from the kubelet) puts each container in
	// /k8s.io/<id> of every hierarchy.
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		for _, id := range trace.containers {
			if _, err := os.Stat(filepath.Join(h, "k8s.io", id)); err == nil {
				left = append(left, "cgroup "+filepath.Join(h, "k8s.io", id))
			}
		}
	}
	return left
}
