package main

import (
	"context"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/peerdns/peerdns/internal/seed"
)

// podWatch follows the seed's pods by polling (each wait polls it) and
// prints what happens to them: created, an address, Ready, terminating,
// gone. It only reports; what the demo checks is package seed's.
type podWatch struct {
	cluster *seed.Cluster
	n       *narrator

	last       map[string]podState // by pod name: what was printed last
	containers map[string]bool     // IDs of every container seen, for the leftover check
	// onUnready, when set, is called with the first pod seen with an
	// address but not Ready while another is Ready.
	onUnready func(ctx context.Context, unready corev1.Pod)
}

type podState struct {
	uid         string
	ip          string
	ready       bool
	terminating bool
}

// poll lists the pods and prints what changed since the last poll.
func (w *podWatch) poll(ctx context.Context) error {
	pods, err := w.cluster.Pods(ctx)
	if err != nil {
		return err
	}
	if w.last == nil {
		w.last = map[string]podState{}
	}
	seen := map[string]bool{}
	var unready *corev1.Pod
	anyReady := false
	for i, p := range pods {
		seen[p.Name] = true
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if id, ok := strings.CutPrefix(cs.ContainerID, "containerd://"); ok {
				w.containers[id] = true
			}
		}
		now := podState{uid: string(p.UID), ip: p.Status.PodIP, ready: seed.IsReady(p), terminating: p.DeletionTimestamp != nil}
		before, known := w.last[p.Name]
		if known && before.uid != now.uid {
			w.n.note("%s gone", p.Name)
			known = false
		}
		if !known {
			w.n.note("%s created", p.Name)
			before = podState{uid: now.uid}
		}
		if now.terminating && !before.terminating {
			w.n.note("%s terminating", p.Name)
		}
		if now.ip != "" && before.ip != now.ip && !now.terminating {
			w.n.note("%s has address %s", p.Name, now.ip)
		}
		if now.ready && !before.ready {
			w.n.note("%s Ready", p.Name)
		}
		w.last[p.Name] = now
		anyReady = anyReady || now.ready
		if now.ip != "" && !now.ready && !now.terminating && unready == nil {
			unready = &pods[i]
		}
	}
	for name := range w.last {
		if !seen[name] {
			w.n.note("%s gone", name)
			delete(w.last, name)
		}
	}
	if w.onUnready != nil && unready != nil && anyReady {
		w.onUnready(ctx, *unready)
	}
	return nil
}

// containerIDs returns every container ID seen so far.
func (w *podWatch) containerIDs() []string {
	if w == nil {
		return nil
	}
	ids := make([]string, 0, len(w.containers))
	for id := range w.containers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
