package seed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/peerdns/peerdns/internal/controlplane"
)

// Check is one step of the scenario checked once: nil when it holds, else
// an error saying what was seen. test/node waits on it with
// testtools.Eventually, the demo with its narrator.
type Check func(context.Context) error

// Cluster is the running scenario as the checks see it.
type Cluster struct {
	CP     *controlplane.ControlPlane
	Client kubernetes.Interface
	// Dig is the path of dig, run in a pod's network namespace.
	Dig string
}

// Pods lists the seed's pods, terminating ones included, by ordinal.
func (c *Cluster) Pods(ctx context.Context) ([]corev1.Pod, error) {
	return c.pods(ctx, Namespace, Selector)
}

func (c *Cluster) pods(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return OrdinalLess(pods[i].Name, pods[j].Name) })
	return pods, nil
}

// DigIn runs dig in pod's network namespace against the cluster DNS and
// returns the answer section, one record a line with its fields separated
// by one space, sorted.
func (c *Cluster) DigIn(ctx context.Context, pod *corev1.Pod, qtype, name string) ([]string, error) {
	cmd, err := c.CP.PodNetworkCommand(ctx, pod, c.Dig, "@"+controlplane.ClusterDNSIP, "+noall", "+answer", "+tries=1", "+time=2", qtype, name)
	if err != nil {
		return nil, err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dig %s %s: %w: %s", qtype, name, err, out)
	}
	var records []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], ";") {
			records = append(records, strings.Join(f, " "))
		}
	}
	sort.Strings(records)
	return records, nil
}

// PodsReady checks that exactly n pods match selector in ns, all Ready.
func (c *Cluster) PodsReady(ns, selector string, n int) Check {
	return func(ctx context.Context) error {
		pods, err := c.pods(ctx, ns, selector)
		if err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods, want %d", len(pods), n)
		}
		for _, p := range pods {
			if !IsReady(p) {
				return fmt.Errorf("%s: %s, not Ready", p.Name, PodStatus(p))
			}
		}
		return nil
	}
}

// Rollout checks that StatefulSet web has rolled out to n pods web-0 … web-(n-1), all
// Ready, those from ordinal partition on at the update revision, those
// below at the current one, none terminating.
func (c *Cluster) Rollout(n, partition int) Check {
	return func(ctx context.Context) error {
		sts, err := c.Client.AppsV1().StatefulSets(Namespace).Get(ctx, StatefulSet, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if sts.Status.ObservedGeneration != sts.Generation {
			return fmt.Errorf("generation %d not observed yet", sts.Generation)
		}
		pods, err := c.Pods(ctx)
		if err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods, want %d", len(pods), n)
		}
		for i, p := range pods {
			want := sts.Status.UpdateRevision
			if i < partition {
				want = sts.Status.CurrentRevision
			}
			switch {
			case p.Name != PodName(i):
				return fmt.Errorf("pod %s, want %s", p.Name, PodName(i))
			case p.DeletionTimestamp != nil:
				return fmt.Errorf("%s terminating", p.Name)
			case p.Labels["controller-revision-hash"] != want:
				return fmt.Errorf("%s at revision %s, want %s", p.Name, p.Labels["controller-revision-hash"], want)
			case !IsReady(p):
				return fmt.Errorf("%s: %s, not Ready", p.Name, PodStatus(p))
			}
		}
		return nil
	}
}

// from returns the first seed pod that is Ready, to ask DNS from.
func (c *Cluster) from(ctx context.Context) (*corev1.Pod, error) {
	pods, err := c.Pods(ctx)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if IsReady(pods[i]) {
			return &pods[i], nil
		}
	}
	return nil, errors.New("no seed pod is Ready to ask from")
}

// digWants asks qtype name from a Ready seed pod and compares the answer
// with want (sorted records as DigIn returns them).
func (c *Cluster) digWants(ctx context.Context, qtype, name string, want []string) error {
	pod, err := c.from(ctx)
	if err != nil {
		return err
	}
	got, err := c.DigIn(ctx, pod, qtype, name)
	if err != nil {
		return err
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		return fmt.Errorf("dig %s %s from %s (-want +got):\n%s", qtype, name, pod.Name, diff)
	}
	return nil
}

// ServiceSRV checks that the cluster DNS answers SRV for the Service with each of the
// n pods and each of its ports (web 80, gossip 7946).
func (c *Cluster) ServiceSRV(n int) Check {
	return func(ctx context.Context) error {
		var want []string
		for i := range n {
			for _, port := range []int{GossipPort, WebPort} {
				want = append(want, fmt.Sprintf("%s. 5 IN SRV 0 %d %d %s.%s.", SvcName, 100/n, port, PodName(i), SvcName))
			}
		}
		return c.digWants(ctx, "SRV", SvcName+".", want)
	}
}

// WebSRV checks that the svc view's SRV for port web lists exactly web-0 … web-(n-1),
// the ready members.
func (c *Cluster) WebSRV(n int) Check {
	return func(ctx context.Context) error {
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("_web._tcp.%s. 5 IN SRV 0 %d %d %s.%s.", SvcName, 100/n, WebPort, PodName(i), SvcName))
		}
		return c.digWants(ctx, "SRV", "_web._tcp."+SvcName+".", want)
	}
}

// PodAddresses checks that each seed pod's name answers A with the pod's address.
func (c *Cluster) PodAddresses(ctx context.Context) error {
	pods, err := c.Pods(ctx)
	if err != nil {
		return err
	}
	for _, p := range pods {
		host := p.Name + "." + SvcName + "."
		if err := c.digWants(ctx, "A", host, []string{fmt.Sprintf("%s 5 IN A %s", host, p.Status.PodIP)}); err != nil {
			return err
		}
	}
	return nil
}

// PeerViewOnly checks that the peer view's gossip SRV lists pod, and the svc view's
// web SRV does not.
func (c *Cluster) PeerViewOnly(pod string) Check {
	return func(ctx context.Context) error {
		from, err := c.from(ctx)
		if err != nil {
			return err
		}
		peers, err := c.DigIn(ctx, from, "SRV", "_gossip._tcp."+PeersName+".")
		if err != nil {
			return err
		}
		target := " " + pod + "." + PeersName + "."
		if !slices.ContainsFunc(peers, func(r string) bool { return strings.HasSuffix(r, target) }) {
			return fmt.Errorf("the peer view lacks %s: %v", pod, peers)
		}
		svc, err := c.DigIn(ctx, from, "SRV", "_web._tcp."+SvcName+".")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(svc, func(r string) bool { return strings.Contains(r, " "+pod+".") }) {
			return fmt.Errorf("the svc view lists %s: %v", pod, svc)
		}
		return nil
	}
}

// Quorum checks that there are alive seed pods, and every one's agent counts alive
// members, a target size of expected, expected voters (every learner
// promoted, every removed ordinal gone) and quorum.
func (c *Cluster) Quorum(alive, expected int) Check {
	return c.agentsShow(alive, quorumSamples(alive, expected))
}

func quorumSamples(alive, expected int) map[string]float64 {
	return map[string]float64{
		`peeragent_members{state="alive"}`: float64(alive),
		`peeragent_expected_members`:       float64(expected),
		`peeragent_voters`:                 float64(expected),
		`peeragent_has_quorum`:             1,
	}
}

// ByVersion checks that every agent's peeragent_members_by_version has the given
// values (0 for a version that must be gone).
func (c *Cluster) ByVersion(want map[string]float64) Check {
	series := map[string]float64{}
	for v, n := range want {
		series[fmt.Sprintf(`peeragent_members_by_version{version="%s"}`, v)] = n
	}
	return c.agentsShow(-1, series)
}

// agentsShow: there are n seed pods (any number for -1), and every one's
// agent has the samples want (a missing sample counts as 0).
func (c *Cluster) agentsShow(n int, want map[string]float64) Check {
	return c.agentsShowIn(Selector, n, want)
}

// agentsShowIn is agentsShow for the pods in Namespace matching selector.
func (c *Cluster) agentsShowIn(selector string, n int, want map[string]float64) Check {
	return func(ctx context.Context) error {
		pods, err := c.pods(ctx, Namespace, selector)
		if err != nil {
			return err
		}
		if n >= 0 && len(pods) != n {
			return fmt.Errorf("%d pods, want %d", len(pods), n)
		}
		for _, p := range pods {
			m, err := Scrape(ctx, p.Status.PodIP)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			for _, k := range slices.Sorted(maps.Keys(want)) {
				if m[k] != want[k] {
					return fmt.Errorf("%s: %s = %v, want %v", p.Name, k, m[k], want[k])
				}
			}
		}
		return nil
	}
}

// Recreated checks that pod name exists again under another UID than old, and is
// Ready.
func (c *Cluster) Recreated(name string, old types.UID) Check {
	return func(ctx context.Context) error {
		p, err := c.Client.CoreV1().Pods(Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("%s not recreated yet", name)
		case err != nil:
			return err
		case p.UID == old:
			return fmt.Errorf("%s is still the old pod (%s)", name, PodStatus(*p))
		case !IsReady(*p):
			return fmt.Errorf("%s recreated, %s", name, PodStatus(*p))
		}
		return nil
	}
}

// Gone checks that pod name does not exist.
func (c *Cluster) Gone(name string) Check {
	return func(ctx context.Context) error {
		_, err := c.Client.CoreV1().Pods(Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("%s still there", name)
	}
}

// NotRestarted checks that each pod of before with an ordinal below n is
// still the same pod (its UID) and that none of its containers, the
// sidecar included, restarted since: a change of size rolled and restarted
// nothing.
func (c *Cluster) NotRestarted(before []corev1.Pod, n int) Check {
	return func(ctx context.Context) error {
		now, err := c.Pods(ctx)
		if err != nil {
			return err
		}
		byName := map[string]corev1.Pod{}
		for _, p := range now {
			byName[p.Name] = p
		}
		for _, old := range before {
			if i, ok := ordinal(old.Name); !ok || i >= n {
				continue
			}
			p, ok := byName[old.Name]
			switch {
			case !ok:
				return fmt.Errorf("%s is gone", old.Name)
			case p.UID != old.UID:
				return fmt.Errorf("%s was replaced (UID %s, was %s)", old.Name, p.UID, old.UID)
			case restarts(p) != restarts(old):
				return fmt.Errorf("%s restarted: %d container restarts, was %d", old.Name, restarts(p), restarts(old))
			}
		}
		return nil
	}
}

// restarts is the restart count of every container of p, init and sidecar
// containers included.
func restarts(p corev1.Pod) int32 {
	var n int32
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		n += s.RestartCount
	}
	return n
}
