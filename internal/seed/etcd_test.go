package seed_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/seed"
	"github.com/peerdns/peerdns/internal/testtools"
)

// The database chart (test/node/testdata/etcd) holds the names the checks
// of package seed ask about: the Service's port names are the SRV names
// etcd asks, its --discovery-srv is EtcdDomain, and there is one
// PersistentVolume pre-bound to each member's claim, under dataDir.
func TestEtcdChartIsTheSeedsDatabase(t *testing.T) {
	helm := testtools.Path(t, "helm")
	dir := t.TempDir()
	if err := seed.CopyCharts(dir); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"template"}, seed.InstallEtcd(filepath.Join(dir, "etcd"), "/data", "e2e")[1:]...)
	cmd := exec.CommandContext(t.Context(), helm, args...)
	cmd.Env = seed.HelmEnv(filepath.Join(dir, ".helm"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var svc corev1.Service
	var sts appsv1.StatefulSet
	var pvs []string
	for _, doc := range strings.Split(string(out), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Service":
			err = yaml.Unmarshal([]byte(doc), &svc)
		case "StatefulSet":
			err = yaml.Unmarshal([]byte(doc), &sts)
		case "PersistentVolume":
			var pv corev1.PersistentVolume
			err = yaml.Unmarshal([]byte(doc), &pv)
			pvs = append(pvs, pv.Spec.ClaimRef.Namespace+"/"+pv.Spec.ClaimRef.Name+" "+pv.Spec.HostPath.Path)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ports := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p.Port
	}
	if diff := cmp.Diff(map[string]int32{"etcd-server": 2380, "etcd-client": seed.EtcdClientPort, "gossip": seed.GossipPort}, ports); diff != "" {
		t.Errorf("Service ports (-want +got):\n%s", diff)
	}
	got := []string{svc.Name, sts.Name, sts.Spec.ServiceName, "app=" + svc.Spec.Selector["app"], string(sts.Spec.PodManagementPolicy)}
	want := []string{seed.EtcdService, seed.EtcdStatefulSet, seed.EtcdService, seed.EtcdSelector, string(appsv1.ParallelPodManagement)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Service, StatefulSet, its serviceName, selector, pod management (-want +got):\n%s", diff)
	}
	if n := int(*sts.Spec.Replicas); n != seed.EtcdReplicas {
		t.Errorf("replicas %d, want %d", n, seed.EtcdReplicas)
	}
	if len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want etcd alone", len(sts.Spec.Template.Spec.Containers))
	}
	if args := sts.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--discovery-srv="+seed.EtcdDomain) {
		t.Errorf("etcd's args %v lack --discovery-srv=%s", args, seed.EtcdDomain)
	}
	var wantPVs []string
	for i := range seed.EtcdReplicas {
		wantPVs = append(wantPVs, seed.Namespace+"/data-"+seed.EtcdPodName(i)+" /data/"+seed.EtcdPodName(i))
	}
	if diff := cmp.Diff(wantPVs, pvs); diff != "" {
		t.Errorf("PersistentVolumes' claims and paths (-want +got):\n%s", diff)
	}
}
