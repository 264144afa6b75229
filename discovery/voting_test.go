package discovery

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVotingStep(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const stable = 10 * time.Second
	cfg := func(epoch uint64, voters ...int) VotingConfig { return VotingConfig{Epoch: epoch, Voters: voters} }
	// alive: ordinals alive for longer than the stabilization time.
	// fresh: ordinals alive for less.
	tests := []struct {
		name   string
		start  int
		floor  int
		old    Voting
		target int
		alive  []int
		fresh  []int
		gone   []int

		want       Voting
		wantQuorum bool
	}{
		{
			name: "steady, a majority alive", floor: 1,
			old: Voting{Current: cfg(4, 0, 1, 2)}, target: 3, alive: []int{0, 2},
			want: Voting{Current: cfg(4, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "steady, a minority alive", floor: 1,
			old: Voting{Current: cfg(4, 0, 1, 2)}, target: 3, alive: []int{1},
			want: Voting{Current: cfg(4, 0, 1, 2)}, wantQuorum: false,
		},
		{
			name: "bootstrap at the floor counts the floor's ordinals", floor: 3,
			old: VotingRules{Floor: 3}.Bootstrap(), target: 0, alive: []int{0, 1},
			want: Voting{Current: cfg(0, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "grow 3 to 5: new ordinals still starting stay learners", floor: 1,
			old: Voting{Current: cfg(2, 0, 1, 2)}, target: 5, alive: []int{0, 1, 2}, fresh: []int{3, 4},
			want: Voting{Current: cfg(2, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "grow 3 to 7 in one step with the new pods not up: quorum kept", floor: 1,
			old: Voting{Current: cfg(2, 0, 1, 2)}, target: 7, alive: []int{0, 1},
			want: Voting{Current: cfg(2, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "grow: a stable learner becomes a voter, one epoch", floor: 1,
			old: Voting{Current: cfg(2, 0, 1, 2)}, target: 5, alive: []int{0, 1, 2, 3}, fresh: []int{4},
			want: Voting{Current: cfg(3, 0, 1, 2, 3)}, wantQuorum: true,
		},
		{
			name: "grow: two stable learners, one epoch each", floor: 1,
			old: Voting{Current: cfg(2, 0, 1, 2)}, target: 5, alive: []int{0, 1, 2, 3, 4},
			want: Voting{Current: cfg(4, 0, 1, 2, 3, 4)}, wantQuorum: true,
		},
		{
			name: "grow: an ordinal beyond the target never votes", floor: 1,
			old: Voting{Current: cfg(2, 0, 1, 2)}, target: 3, alive: []int{0, 1, 2, 5},
			want: Voting{Current: cfg(2, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "grow from start ordinal 3", start: 3, floor: 1,
			old: Voting{Current: cfg(0, 3)}, target: 2, alive: []int{3, 4, 0},
			want: Voting{Current: cfg(1, 3, 4)}, wantQuorum: true,
		},
		{
			name: "shrink 5 to 3, all alive: joint, not committed", floor: 1,
			old: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, target: 3, alive: []int{0, 1, 2, 3, 4},
			want:       Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2}}},
			wantQuorum: true,
		},
		{
			name: "shrink 5 to 3, one removed left: still joint, survivors hold both majorities", floor: 1,
			old: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, target: 3, alive: []int{0, 1, 2}, gone: []int{4},
			want:       Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2}}},
			wantQuorum: true,
		},
		{
			name: "shrink 5 to 3, both removed left: committed", floor: 1,
			old: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, target: 3, alive: []int{0, 1, 2}, gone: []int{3, 4},
			want: Voting{Current: cfg(8, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "shrink 5 to 3 under a partition, web-1 and web-2's side: no quorum", floor: 1,
			old: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, target: 3, alive: []int{1, 2},
			want:       Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2}}},
			wantQuorum: false,
		},
		{
			name: "shrink 5 to 3 under a partition, web-0, 3 and 4's side on the old size: quorum", floor: 1,
			old: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, target: 5, alive: []int{0, 3, 4},
			want: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, wantQuorum: true,
		},
		{
			name: "shrink 5 to 3, a removed voter crashed (not confirmed): no commit", floor: 1,
			old: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, target: 3, alive: []int{0, 1, 2}, gone: []int{3},
			want:       Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2}}},
			wantQuorum: true,
		},
		{
			name: "shrink 5 to 2: only a minority of 5 removed in the first step", floor: 1,
			old: Voting{Current: cfg(1, 0, 1, 2, 3, 4)}, target: 2, alive: []int{0, 1, 2, 3, 4},
			want:       Voting{Current: cfg(1, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 2, Voters: []int{0, 1, 2}}},
			wantQuorum: true,
		},
		{
			name: "shrink 5 to 2, three gone: first step commits, the second is in flight", floor: 1,
			old: Voting{Current: cfg(1, 0, 1, 2, 3, 4)}, target: 2, alive: []int{0, 1}, gone: []int{3, 4},
			want:       Voting{Current: cfg(2, 0, 1, 2), Next: &VotingConfig{Epoch: 3, Voters: []int{0, 1}}},
			wantQuorum: true,
		},
		{
			name: "shrink 5 to 2, all three gone: two epochs", floor: 1,
			old: Voting{Current: cfg(1, 0, 1, 2, 3, 4)}, target: 2, alive: []int{0, 1}, gone: []int{2, 3, 4},
			want: Voting{Current: cfg(3, 0, 1)}, wantQuorum: true,
		},
		{
			name: "shrink below the floor stops at the floor", floor: 3,
			old: Voting{Current: cfg(1, 0, 1, 2, 3, 4)}, target: 1, alive: []int{0, 1, 2}, gone: []int{3, 4},
			want: Voting{Current: cfg(2, 0, 1, 2)}, wantQuorum: true,
		},
		{
			name: "shrink 2 to 1: the survivor has no quorum until the other is gone", floor: 1,
			old: Voting{Current: cfg(1, 0, 1)}, target: 1, alive: []int{0},
			want:       Voting{Current: cfg(1, 0, 1), Next: &VotingConfig{Epoch: 2, Voters: []int{0}}},
			wantQuorum: false,
		},
		{
			name: "shrink 2 to 1, the other left: committed", floor: 1,
			old: Voting{Current: cfg(1, 0, 1)}, target: 1, alive: []int{0}, gone: []int{1},
			want: Voting{Current: cfg(2, 0)}, wantQuorum: true,
		},
		{
			name: "a shrink in flight is dropped when the target comes back", floor: 1,
			old:    Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2}}},
			target: 5, alive: []int{0, 1, 2, 3, 4},
			want: Voting{Current: cfg(7, 0, 1, 2, 3, 4)}, wantQuorum: true,
		},
		{
			name: "a shrink in flight follows a target that moves", floor: 1,
			old:    Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2}}},
			target: 4, alive: []int{0, 1, 2, 3, 4},
			want:       Voting{Current: cfg(7, 0, 1, 2, 3, 4), Next: &VotingConfig{Epoch: 8, Voters: []int{0, 1, 2, 3}}},
			wantQuorum: true,
		},
		{
			name: "a learner that left is not promoted", floor: 1,
			old: Voting{Current: cfg(2, 0, 1, 2)}, target: 4, alive: []int{0, 1, 2, 3}, gone: []int{3},
			want: Voting{Current: cfg(2, 0, 1, 2)}, wantQuorum: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := VotingRules{Start: tt.start, Floor: tt.floor, Stabilization: stable}
			o := Observation{Now: t0, Target: tt.target, AliveSince: map[int]time.Time{}, Gone: map[int]bool{}}
			for _, x := range tt.alive {
				o.AliveSince[x] = t0.Add(-stable)
			}
			for _, x := range tt.fresh {
				o.AliveSince[x] = t0.Add(-stable + time.Second)
			}
			for _, x := range tt.gone {
				o.Gone[x] = true
			}
			got := r.Step(tt.old, o)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Step (-want +got):\n%s", diff)
			}
			_, _, has := got.Tally(func(x int) bool { _, ok := o.AliveSince[x]; return ok })
			if has != tt.wantQuorum {
				t.Errorf("quorum = %v, want %v", has, tt.wantQuorum)
			}
		})
	}
}

// TestVotingNoTwoMajorities checks the property joint consensus buys:
// while a shrink is in flight, an agent in the joint configuration and an
// agent still on the old one, or one that committed the new one, never
// both hold quorum with disjoint alive sets.
func TestVotingNoTwoMajorities(t *testing.T) {
	old := VotingConfig{Epoch: 1, Voters: []int{0, 1, 2, 3, 4}}
	next := VotingConfig{Epoch: 2, Voters: []int{0, 1, 2}}
	joint := Voting{Current: old, Next: &next}
	others := map[string]Voting{"old": {Current: old}, "new": {Current: next}, "joint": joint}
	for name, other := range others {
		if name == "new" {
			// Committing needs the removed ordinals gone, so an agent on
			// the new configuration never sees 3 or 4 alive; both sides
			// only split the remaining three.
			continue
		}
		for mask := range 1 << 5 {
			in := func(x int) bool { return mask&(1<<x) != 0 }
			out := func(x int) bool { return mask&(1<<x) == 0 }
			_, _, a := joint.Tally(in)
			_, _, b := other.Tally(out)
			if a && b {
				t.Errorf("joint agent with %05b and %s agent with the rest both hold quorum", mask, name)
			}
		}
	}
	// Against the new configuration, with 3 and 4 gone.
	for mask := range 1 << 3 {
		in := func(x int) bool { return x < 3 && mask&(1<<x) != 0 }
		out := func(x int) bool { return x < 3 && mask&(1<<x) == 0 }
		_, _, a := joint.Tally(in)
		_, _, b := Voting{Current: next}.Tally(out)
		if a && b {
			t.Errorf("joint agent with %03b and new agent with the rest both hold quorum", mask)
		}
	}
}

func TestVotingInitial(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		start, floor, target int
		want                 []int
	}{
		{name: "the target set", floor: 1, target: 5, want: []int{0, 1, 2, 3, 4}},
		{name: "raised to the floor", floor: 3, target: 1, want: []int{0, 1, 2}},
		{name: "from the start ordinal", start: 2, floor: 1, target: 2, want: []int{2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := VotingRules{Start: tc.start, Floor: tc.floor}.Initial(tc.target)
			want := Voting{Current: VotingConfig{Voters: tc.want}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Initial (-want +got):\n%s", diff)
			}
		})
	}
}
