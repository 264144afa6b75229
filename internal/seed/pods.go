package seed

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// OrdinalLess orders web-2 before web-10; names without an ordinal by
// name.
func OrdinalLess(a, b string) bool {
	ai, aok := ordinal(a)
	bi, bok := ordinal(b)
	if aok && bok && a[:strings.LastIndexByte(a, '-')] == b[:strings.LastIndexByte(b, '-')] {
		return ai < bi
	}
	return a < b
}

func ordinal(name string) (int, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	return n, err == nil
}

// IsReady reports whether p is Ready and not terminating.
func IsReady(p corev1.Pod) bool {
	return p.DeletionTimestamp == nil && !ReadySince(p).IsZero()
}

// ReadySince is when p last became Ready, or zero when it is not.
func ReadySince(p corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// PodStatus is a pod's phase and why it is not Ready, shortly.
func PodStatus(p corev1.Pod) string {
	s := string(p.Status.Phase)
	if p.DeletionTimestamp != nil {
		s += ", terminating"
	}
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
