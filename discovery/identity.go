package discovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoOrdinal is returned for a node name that does not end in -<ordinal>.
var ErrNoOrdinal = errors.New("node name has no -<ordinal> suffix")

// Identity is a StatefulSet pod's stable name split into the set's name and
// the pod's ordinal: "web-2" is set "web", ordinal 2.
type Identity struct {
	Set     string
	Ordinal int
}

// ParseIdentity splits name at its last '-'. The ordinal must be a decimal
// number without sign or leading zeros, as the StatefulSet controller writes it.
func ParseIdentity(name string) (Identity, error) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return Identity{}, fmt.Errorf("%q: %w", name, ErrNoOrdinal)
	}
	digits := name[i+1:]
	if len(digits) > 1 && digits[0] == '0' {
		return Identity{}, fmt.Errorf("%q: %w", name, ErrNoOrdinal)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || digits[0] == '+' || digits[0] == '-' {
		return Identity{}, fmt.Errorf("%q: %w", name, ErrNoOrdinal)
	}
	return Identity{Set: name[:i], Ordinal: n}, nil
}

// Name is the pod name: set-ordinal.
func (id Identity) Name() string { return id.Set + "-" + strconv.Itoa(id.Ordinal) }

// ExpectedSet is the names a cluster of N members may have: set-start … set-(start+N-1).
type ExpectedSet struct {
	Set   string
	Start int
	N     int
}

// Contains reports whether name belongs to the set, returning its ordinal.
func (e ExpectedSet) Contains(name string) (int, bool) {
	id, err := ParseIdentity(name)
	if err != nil || id.Set != e.Set || id.Ordinal < e.Start || id.Ordinal >= e.Start+e.N {
		return 0, false
	}
	return id.Ordinal, true
}

// Names lists the set's names in ordinal order.
func (e ExpectedSet) Names() []string {
	names := make([]string, 0, e.N)
	for o := e.Start; o < e.Start+e.N; o++ {
		names = append(names, Identity{Set: e.Set, Ordinal: o}.Name())
	}
	return names
}

// Ordinals lists the set's ordinals in order.
func (e ExpectedSet) Ordinals() []int {
	o := make([]int, 0, e.N)
	for i := e.Start; i < e.Start+e.N; i++ {
		o = append(o, i)
	}
	return o
}
