package seed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// podEvent is one change of a seed pod, as a watch saw it.
type podEvent struct {
	typ      watch.EventType
	name     string
	uid      types.UID
	ready    bool
	deleting bool
}

// PodLog records the seed's pod events in the order the API server
// serialised them, so that "created after" and "deleted after" are
// decided without comparing timestamps of second resolution (and a pod's
// Ready time moves when its readiness flaps).
type PodLog struct {
	mu     sync.Mutex
	events []podEvent
	w      watch.Interface
	done   chan struct{}
	ended  bool // the watch ended before Stop: events may be missing
}

// WatchPods starts a PodLog: the current pods first, as Added, then every
// change from the same resource version on, until Stop.
func (c *Cluster) WatchPods(ctx context.Context) (*PodLog, error) {
	opts := metav1.ListOptions{LabelSelector: Selector}
	list, err := c.Client.CoreV1().Pods(Namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	l := &PodLog{done: make(chan struct{})}
	for i := range list.Items {
		l.add(watch.Added, &list.Items[i])
	}
	opts.ResourceVersion = list.ResourceVersion
	if l.w, err = c.Client.CoreV1().Pods(Namespace).Watch(ctx, opts); err != nil {
		return nil, err
	}
	go func() {
		defer close(l.done)
		for ev := range l.w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				l.add(ev.Type, p)
			}
		}
		l.mu.Lock()
		l.ended = true
		l.mu.Unlock()
	}()
	return l, nil
}

func (l *PodLog) add(typ watch.EventType, p *corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, podEvent{typ: typ, name: p.Name, uid: p.UID, ready: !ReadySince(*p).IsZero(), deleting: p.DeletionTimestamp != nil})
}

// Stop ends the watch; an error says it had ended by itself, so the order
// checks may miss events. Later calls return nil.
func (l *PodLog) Stop() error {
	l.mu.Lock()
	ended, w := l.ended, l.w
	l.w = nil
	l.mu.Unlock()
	if w == nil {
		return nil
	}
	w.Stop()
	<-l.done
	if ended {
		return errors.New("the pod watch ended early: the order checks may miss events")
	}
	return nil
}

// index returns the position of the first event matching, or -1.
func (l *PodLog) index(match func(podEvent) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.IndexFunc(l.events, match)
}

// InOrder checks the StatefulSet's OrderedReady policy over a change from
// before to after pods: each pod added (web-before … web-(after-1)) was
// created only after the one below it had been seen Ready, and each pod
// removed began terminating only after the one above it was gone.
func (l *PodLog) InOrder(before, after int) error {
	var errs []error
	for i := max(before, 1); i < after; i++ {
		errs = append(errs, l.createdAfterReady(PodName(i), PodName(i-1)))
	}
	for i := after; i < before-1; i++ {
		errs = append(errs, l.deletedAfterGone(PodName(i), PodName(i+1)))
	}
	return errors.Join(errs...)
}

// createdAfterReady checks that pod name was first added only after a pod
// named prev had been seen Ready (OrderedReady creation).
func (l *PodLog) createdAfterReady(name, prev string) error {
	created := l.index(func(e podEvent) bool { return e.name == name && e.typ == watch.Added })
	ready := l.index(func(e podEvent) bool { return e.name == prev && e.ready && !e.deleting })
	if created < 0 || ready < 0 || created < ready {
		return fmt.Errorf("%s created at event %d, %s first Ready at event %d: not in order", name, created, prev, ready)
	}
	return nil
}

// deletedAfterGone checks that pod name began terminating only after pod
// next was gone (OrderedReady scale-down, highest ordinal first).
func (l *PodLog) deletedAfterGone(name, next string) error {
	deleting := l.index(func(e podEvent) bool { return e.name == name && (e.deleting || e.typ == watch.Deleted) })
	gone := l.index(func(e podEvent) bool { return e.name == next && e.typ == watch.Deleted })
	if deleting < 0 || gone < 0 || deleting < gone {
		return fmt.Errorf("%s began terminating at event %d, %s gone at event %d: not in order", name, deleting, next, gone)
	}
	return nil
}
