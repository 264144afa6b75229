package seed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peerdns/peerdns/internal/controlplane"
)

// The seed's database, as test/node/testdata/etcd names it: a headless
// Service and a StatefulSet, both etcd, whose members find each other with
// --discovery-srv EtcdDomain in the peer view.
const (
	// EtcdService is the database's headless Service, with the ports
	// etcd-server (2380) and etcd-client (2379).
	EtcdService = "etcd"
	// EtcdStatefulSet is the database's StatefulSet (Parallel).
	EtcdStatefulSet = "etcd"
	// EtcdReplicas is the chart's default number of members.
	EtcdReplicas = 3
	// EtcdSelector selects the database's pods.
	EtcdSelector = "app=" + EtcdService
	// EtcdDomain is etcd's --discovery-srv: the Service in the peer view.
	EtcdDomain = EtcdService + "." + Namespace + ".peers.peerdns.internal"
	// EtcdClientPort is the port etcd serves clients (and its JSON
	// gateway) on.
	EtcdClientPort = 2379
	// etcdMemberUID owns the members' data directories: the images'
	// user, ociimage.NonRoot.
	etcdMemberUID = 65532
)

// EtcdPodName is the name of the database's member of ordinal i.
func EtcdPodName(i int) string { return fmt.Sprintf("%s-%d", EtcdStatefulSet, i) }

// EtcdImages are the images the database chart runs, given the control
// plane whose etcd it packs.
func EtcdImages(cp *controlplane.ControlPlane) []controlplane.Image {
	return []controlplane.Image{
		cp.EtcdImage(),
		{Ref: controlplane.SRVWaitImage, Package: "./internal/controlplane/cmd/srvwait"},
	}
}

// InstallEtcd is the helm command line (without "helm") that installs
// chart, a copy of test/node/testdata/etcd, with its members' data under
// dataDir (see EtcdDataDirs) and the peeragent image tagged tag.
func InstallEtcd(chart, dataDir, tag string) []string {
	return []string{"install", "etcd", chart, "--namespace", Namespace, "--set", "dataDir=" + dataDir, "--set", "peeragent.image.tag=" + tag}
}

// EtcdQuorum checks that every etcd member's agent counts alive members of
// expected, with quorum, as Quorum does for the web pods.
func (c *Cluster) EtcdQuorum(alive, expected int) Check {
	return c.agentsShowIn(EtcdSelector, alive, quorumSamples(alive, expected))
}

// EtcdDataDirs makes the data directory of each of n members under dir,
// which the chart's PersistentVolumes name, owned by the user etcd runs as.
// dir must be visible in the node's mount namespace (any directory outside
// /run and /var/lib is).
func EtcdDataDirs(dir string, n int) error {
	for i := range n {
		d := filepath.Join(dir, EtcdPodName(i))
		if err := mkdirOwned(d, etcdMemberUID); err != nil {
			return fmt.Errorf("etcd data directory: %w", err)
		}
	}
	return nil
}

func mkdirOwned(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chown(dir, uid, uid)
}

// PodsGone checks that no pod in Namespace matches selector.
func (c *Cluster) PodsGone(selector string) Check {
	return func(ctx context.Context) error {
		pods, err := c.pods(ctx, Namespace, selector)
		if err != nil {
			return err
		}
		if len(pods) > 0 {
			var names []string
			for _, p := range pods {
				names = append(names, p.Name)
			}
			return fmt.Errorf("pods %v still there", names)
		}
		return nil
	}
}

// UpgradeEtcd is the helm command line (without "helm") that upgrades the
// database installed from chart, keeping its values but for sets
// ("partition=2", …).
func UpgradeEtcd(chart string, sets ...string) []string {
	args := []string{"upgrade", "etcd", chart, "--namespace", Namespace, "--reuse-values"}
	for _, kv := range sets {
		args = append(args, "--set", kv)
	}
	return args
}

// EtcdRunning checks that each member named in images is Ready, not
// terminating, with its etcd container running the image given for it.
func (c *Cluster) EtcdRunning(images map[string]string) Check {
	return func(ctx context.Context) error {
		pods, err := c.pods(ctx, Namespace, EtcdSelector)
		if err != nil {
			return err
		}
		seen := 0
		for _, p := range pods {
			want, ok := images[p.Name]
			if !ok {
				continue
			}
			seen++
			if !IsReady(p) {
				return fmt.Errorf("%s: %s, not Ready", p.Name, PodStatus(p))
			}
			i := slices.IndexFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == "etcd" })
			if i < 0 || p.Spec.Containers[i].Image != want {
				return fmt.Errorf("%s does not run %s yet", p.Name, want)
			}
		}
		if seen != len(images) {
			return fmt.Errorf("%d of the %d members exist", seen, len(images))
		}
		return nil
	}
}

// EtcdHealthyCount is how many of the database's pods answer
// /health?serializable=true true now: up, and serving their own copy of
// the data. Not the plain /health, which also wants a leader: when the
// leader's pod is the one replaced, every member answers false for the
// election's length (about a second), which says nothing about how many
// members the roll took down.
func (c *Cluster) EtcdHealthyCount(ctx context.Context) (int, error) {
	pods, err := c.pods(ctx, Namespace, EtcdSelector)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pods {
		if p.DeletionTimestamp == nil && etcdHealth(ctx, p, "/health?serializable=true") == nil {
			n++
		}
	}
	return n, nil
}

// SliceLabelsCopied checks that every EndpointSlice of Service service in
// Namespace carries each of the Service's labels: the EndpointSlice
// controller copies them, which lets peerdns, reading slices only, see
// what a Service asks for through its labels.
func (c *Cluster) SliceLabelsCopied(service string) Check {
	return func(ctx context.Context) error {
		svc, err := c.Client.CoreV1().Services(Namespace).Get(ctx, service, metav1.GetOptions{})
		if err != nil {
			return err
		}
		list, err := c.Client.DiscoveryV1().EndpointSlices(Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("no EndpointSlice of %s", service)
		}
		for _, sl := range list.Items {
			for k, v := range svc.Labels {
				if sl.Labels[k] != v {
					return fmt.Errorf("EndpointSlice %s: label %s=%q, the Service has %q", sl.Name, k, sl.Labels[k], v)
				}
			}
		}
		return nil
	}
}

// EtcdMember is one member in etcd's member list.
type EtcdMember struct {
	ID       string   `json:"ID"` // the gateway writes uint64 as a string
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
}

// EtcdMembers is the member list as pod's etcd answers it, by name.
func (c *Cluster) EtcdMembers(ctx context.Context, pod corev1.Pod) ([]EtcdMember, error) {
	var resp struct {
		Members []EtcdMember `json:"members"`
	}
	if err := etcdCall(ctx, pod, "/v3/cluster/member/list", map[string]any{}, &resp); err != nil {
		return nil, err
	}
	slices.SortFunc(resp.Members, func(a, b EtcdMember) int {
		if OrdinalLess(a.Name, b.Name) {
			return -1
		}
		return 1
	})
	return resp.Members, nil
}

// EtcdHealthy checks that there are n members etcd-0 … etcd-(n-1), each
// answering /health true, and each listing exactly those n members with
// the peer URL of its SRV target, the same list everywhere.
func (c *Cluster) EtcdHealthy(n int) Check {
	return func(ctx context.Context) error {
		pods, err := c.pods(ctx, Namespace, EtcdSelector)
		if err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d etcd pods, want %d", len(pods), n)
		}
		var first []EtcdMember
		for i, p := range pods {
			if p.Name != EtcdPodName(i) || p.Status.PodIP == "" {
				return fmt.Errorf("%s: %s", p.Name, PodStatus(p))
			}
			if err := etcdHealth(ctx, p, "/health"); err != nil {
				return err
			}
			members, err := c.EtcdMembers(ctx, p)
			if err != nil {
				return err
			}
			var names, urls []string
			for _, m := range members {
				names = append(names, m.Name)
				urls = append(urls, m.PeerURLs...)
			}
			var wantNames, wantURLs []string
			for j := range n {
				wantNames = append(wantNames, EtcdPodName(j))
				wantURLs = append(wantURLs, "http://"+EtcdPodName(j)+"."+EtcdDomain+":2380")
			}
			if diff := cmp.Diff(wantNames, names); diff != "" {
				return fmt.Errorf("%s lists members (-want +got):\n%s", p.Name, diff)
			}
			if diff := cmp.Diff(wantURLs, urls); diff != "" {
				return fmt.Errorf("%s lists peer URLs (-want +got):\n%s", p.Name, diff)
			}
			if first == nil {
				first = members
			} else if diff := cmp.Diff(first, members); diff != "" {
				return fmt.Errorf("%s and %s list different members (-%s +%s):\n%s", pods[0].Name, p.Name, pods[0].Name, p.Name, diff)
			}
		}
		return nil
	}
}

// EtcdPut writes key=value through pod's etcd.
func (c *Cluster) EtcdPut(ctx context.Context, pod corev1.Pod, key, value string) error {
	return etcdCall(ctx, pod, "/v3/kv/put", map[string]any{"key": b64(key), "value": b64(value)}, nil)
}

// EtcdHas checks that the member named pod reads key as value (a
// linearizable read, which needs quorum).
func (c *Cluster) EtcdHas(pod, key, value string) Check {
	return func(ctx context.Context) error {
		p, err := c.Client.CoreV1().Pods(Namespace).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var resp struct {
			KVs []struct {
				Value string `json:"value"`
			} `json:"kvs"`
		}
		if err := etcdCall(ctx, *p, "/v3/kv/range", map[string]any{"key": b64(key)}, &resp); err != nil {
			return err
		}
		if len(resp.KVs) != 1 {
			return fmt.Errorf("%s: %d values of %s, want 1", pod, len(resp.KVs), key)
		}
		got, err := base64.StdEncoding.DecodeString(resp.KVs[0].Value)
		if err != nil {
			return err
		}
		if string(got) != value {
			return fmt.Errorf("%s: %s = %q, want %q", pod, key, got, value)
		}
		return nil
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// etcdHealth asks pod's etcd path: /health, which is true only with a
// leader, or /health?serializable=true, true while the member serves its
// own data.
func etcdHealth(ctx context.Context, pod corev1.Pod, path string) error {
	var resp struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := etcdDo(ctx, pod, http.MethodGet, path, nil, &resp); err != nil {
		return err
	}
	if resp.Health != "true" {
		return fmt.Errorf("%s: %s %s %s", pod.Name, path, resp.Health, resp.Reason)
	}
	return nil
}

// etcdCall posts body to pod's etcd JSON gateway at path: the etcd Go
// client is not a dependency of this module.
func etcdCall(ctx context.Context, pod corev1.Pod, path string, body, out any) error {
	return etcdDo(ctx, pod, http.MethodPost, path, body, out)
}

func etcdDo(ctx context.Context, pod corev1.Pod, method, path string, body, out any) error {
	if pod.Status.PodIP == "" {
		return fmt.Errorf("%s has no address yet", pod.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	url := "http://" + pod.Status.PodIP + ":" + strconv.Itoa(EtcdClientPort) + path
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", pod.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", pod.Name, method, path, err)
	}
	// /health answers 503 with its reason in the body.
	if resp.StatusCode != http.StatusOK && !(path == "/health" && resp.StatusCode == http.StatusServiceUnavailable) {
		return fmt.Errorf("%s: %s %s: %s: %s", pod.Name, method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: %s %s: %w", pod.Name, method, path, err)
	}
	return nil
}
