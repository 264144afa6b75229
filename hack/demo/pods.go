package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podWatch follows the pods of a selector by polling (each wait polls it)
// and prints what happens to them: created, an address, Ready,
// terminating, gone.
type podWatch struct {
	client              kubernetes.Interface
	namespace, selector string
	n                   *narrator

	last map[string]podState // by pod name: what was printed last
	// readyAt is when each pod (by UID) first became Ready, from its Ready
	// condition as first seen: a later flap must not move it.
	readyAt    map[string]time.Time
	containers map[string]bool // IDs of every container seen, for the leftover check
	// onUnready, when set, is called with the first pod seen with an
	// address but not Ready, and a Ready pod to look from.
	onUnready func(ctx context.Context, unready corev1.Pod, from *corev1.Pod)
}

type podState struct {
	uid         string
	ip          string
	ready       bool
	terminating bool
}

// poll lists the pods, prints what changed since the last poll, and
// returns the pods that are not terminating, sorted by name.
func (w *podWatch) poll(ctx context.Context) ([]corev1.Pod, error) {
	list, err := w.client.CoreV1().Pods(w.namespace).List(ctx, metav1.ListOptions{LabelSelector: w.selector})
	if err != nil {
		return nil, err
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return ordinalLess(pods[i].Name, pods[j].Name) })
	if w.last == nil {
		w.last = map[string]podState{}
	}
	seen := map[string]bool{}
	var live []corev1.Pod
	for _, p := range pods {
		seen[p.Name] = true
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if id, ok := strings.CutPrefix(cs.ContainerID, "containerd://"); ok {
				w.containers[id] = true
			}
		}
		if at := readySince(p); !at.IsZero() && w.readyAt[string(p.UID)].IsZero() {
			w.readyAt[string(p.UID)] = at
		}
		now := podState{uid: string(p.UID), ip: p.Status.PodIP, ready: isReady(p), terminating: p.DeletionTimestamp != nil}
		before, known := w.last[p.Name]
		if known && before.uid != now.uid {
			w.n.note("%s gone", p.Name)
			known = false
		}
		switch {
		case !known:
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
		if !now.terminating {
			live = append(live, p)
		}
	}
	for name := range w.last {
		if !seen[name] {
			w.n.note("%s gone", name)
			delete(w.last, name)
		}
	}
	if w.onUnready != nil {
		var unready, from *corev1.Pod
		for i := range live {
			switch {
			case live[i].Status.PodIP != "" && !isReady(live[i]) && unready == nil:
				unready = &live[i]
			case isReady(live[i]) && from == nil:
				from = &live[i]
			}
		}
		if unready != nil && from != nil {
			w.onUnready(ctx, *unready, from)
		}
	}
	return live, nil
}

// checkOrdered fails unless web-i was created no earlier than web-(i-1)
// first became Ready, for the first replicas pods (timestamps have second
// resolution).
func (w *podWatch) checkOrdered(ctx context.Context, replicas int) error {
	pods, err := w.poll(ctx)
	if err != nil {
		return err
	}
	byName := map[string]corev1.Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	for i := 1; i < replicas; i++ {
		prev, cur := byName[fmt.Sprintf("web-%d", i-1)], byName[fmt.Sprintf("web-%d", i)]
		ready := w.readyAt[string(prev.UID)]
		if ready.IsZero() || cur.CreationTimestamp.Time.Before(ready) {
			return fmt.Errorf("not in order: %s created at %v, %s Ready at %v", cur.Name, cur.CreationTimestamp.Time, prev.Name, ready)
		}
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

// ordinalLess orders web-2 before web-10.
func ordinalLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func isReady(p corev1.Pod) bool {
	return p.DeletionTimestamp == nil && !readySince(p).IsZero()
}

func readySince(p corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// podStatus is a pod's phase and why it is not Ready, shortly.
func podStatus(p corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(", %s waiting (%s)", cs.Name, cs.State.Waiting.Reason)
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(", %s terminated (%s, exit %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		case !cs.Ready:
			s += ", " + cs.Name + " not ready"
		}
	}
	return s
}
