package discovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// sizeFile is an expected-size file the test rewrites as a kubelet would
// a ConfigMap volume: a new file renamed into place.
type sizeFile struct {
	t    *testing.T
	path string
}

func newSizeFile(t *testing.T, n int) *sizeFile {
	f := &sizeFile{t: t, path: filepath.Join(t.TempDir(), "replicas")}
	f.set(n)
	return f
}

func (f *sizeFile) set(n int) {
	f.t.Helper()
	if err := writeFileAtomic(f.path, fmt.Appendf(nil, "%d\n", n)); err != nil {
		f.t.Fatal(err)
	}
}

// votersCluster is a test cluster whose size comes from a file, with the
// floor at 3 and a short stabilization time.
func votersCluster(t *testing.T, size *sizeFile) *testCluster {
	c := newTestCluster(t, 3)
	state := t.TempDir()
	c.configure = func(cfg *Config) {
		cfg.StateFile = filepath.Join(state, cfg.NodeName+".json")
		cfg.ExpectedFile = size.path
		cfg.ExpectedFileInterval = 50 * time.Millisecond
		cfg.Stabilization = time.Second
	}
	return c
}

// wantVoters checks that every agent holds exactly voters as its committed
// voting configuration, with no change in flight, and shows them so in
// /members.
func wantVoters(voters []int, agents ...*testAgent) func() error {
	return func() error {
		for _, a := range agents {
			v := a.table.currentVoting()
			if !slices.Equal(v.Current.Voters, voters) || v.Next != nil {
				return fmt.Errorf("%s holds %+v, want voters %v", a.cfg.NodeName, v, voters)
			}
			for _, m := range a.Members() {
				if want := slices.Contains(voters, m.Ordinal); m.Voter != want {
					return fmt.Errorf("%s shows %s voter=%v", a.cfg.NodeName, m.Name, m.Voter)
				}
			}
		}
		return nil
	}
}

// quorumSampler samples agents' quorum every 20ms and keeps the samples
// without it.
type quorumSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	lost []string
	n    int
}

func sampleQuorum(agents ...*testAgent) *quorumSampler {
	s := &quorumSampler{stop: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			s.mu.Lock()
			s.n++
			for _, a := range agents {
				if q := a.Quorum(); !q.Has {
					s.lost = append(s.lost, fmt.Sprintf("%s: %s", a.cfg.NodeName, q))
				}
			}
			s.mu.Unlock()
		}
	})
	return s
}

func (s *quorumSampler) done() (samples int, lost []string) {
	close(s.stop)
	s.wg.Wait()
	return s.n, s.lost
}

// The file goes from 5 to 3 while web-3 and web-4 stop gracefully:
// web-0 … web-2 hold quorum at every sample, and commit the smaller
// voting configuration once both have left.
func TestExpectedFileShrinkKeepsQuorum(t *testing.T) {
	t.Parallel()
	size := newSizeFile(t, 5)
	c := votersCluster(t, size)
	agents := c.startAll(5)
	eventually(t, "all five vote", wantVoters([]int{0, 1, 2, 3, 4}, agents...))
	epoch := agents[0].table.currentVoting().Epoch()

	survivors := agents[:3]
	sampler := sampleQuorum(survivors...)
	size.set(3)
	eventually(t, "the shrink is in flight", func() error {
		for _, a := range survivors {
			if v := a.table.currentVoting(); v.Next == nil {
				return fmt.Errorf("%s: no change in flight: %+v", a.cfg.NodeName, v)
			}
		}
		return nil
	})
	leaving := time.Now()
	for _, a := range agents[3:] {
		c.dns.deleteHost(a.cfg.NodeName + "." + testDomain)
		a.stop()
	}
	eventually(t, "the survivors commit web-0 … web-2", wantVoters([]int{0, 1, 2}, survivors...))
	t.Logf("shrink committed on all three %v after web-3 began to leave", time.Since(leaving).Round(time.Millisecond))
	samples, lost := sampler.done()
	if len(lost) > 0 {
		t.Errorf("quorum lost in %d of %d samples, first: %s", len(lost), samples, lost[0])
	}
	for _, a := range survivors {
		v := a.table.currentVoting()
		if v.Epoch() != epoch+1 {
			t.Errorf("%s: epoch %d, want %d", a.cfg.NodeName, v.Epoch(), epoch+1)
		}
		if got := a.gauge(a.votes.epoch); got != float64(epoch+1) {
			t.Errorf("%s: peeragent_config_epoch = %v", a.cfg.NodeName, got)
		}
		if q := a.Quorum(); q.Expected != 3 || q.Size != 2 {
			t.Errorf("%s: quorum %s, want of 3", a.cfg.NodeName, q)
		}
		saved, err := loadVoting(a.cfg.StateFile, "web")
		if err != nil || saved == nil || !saved.equal(Voting{Current: v.Current}) {
			t.Errorf("%s: saved %+v, %v, want %+v", a.cfg.NodeName, saved, err, v.Current)
		}
	}
	t.Logf("%d samples", samples)
}

// web-5 started while the file says 5 runs as a learner: it gossips, is
// probed and does not count; when the file says 6 it becomes a voter.
func TestExpectedFileLearnerBecomesVoter(t *testing.T) {
	t.Parallel()
	size := newSizeFile(t, 5)
	c := votersCluster(t, size)
	agents := c.startAll(5)
	five := []int{0, 1, 2, 3, 4}
	eventually(t, "all five vote", wantVoters(five, agents...))

	learner := c.start("web-5")
	all := append(slices.Clone(agents), learner)
	eventually(t, "web-5 is alive everywhere", wantStates(allAlive(webNames(6)...), all...))
	// Once every agent has held web-5 alive for longer than the
	// stabilization time, it is still not a voter.
	stable := time.Now().Add(c.config("web-5").Stabilization + time.Second)
	eventually(t, "web-5 stays a learner past the stabilization time", func() error {
		if err := wantVoters(five, all...)(); err != nil {
			return fmt.Errorf("%w (it must stay a learner)", err)
		}
		if time.Now().Before(stable) {
			return fmt.Errorf("not past the stabilization time yet")
		}
		return nil
	})
	if err := wantVoters(five, all...)(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "five of five, the learner not counted", func() error {
		for _, a := range all {
			if q := a.Quorum(); q.Expected != 5 || q.Alive != 5 {
				return fmt.Errorf("%s counts %s, want 5 of 5 (the learner does not count)", a.cfg.NodeName, q)
			}
		}
		return nil
	})
	if q := learner.Quorum(); q.Voter || !q.Has {
		t.Errorf("web-5's own standing %+v, want a learner seeing quorum", q)
	}
	if got := learner.gauge(learner.votes.voter); got != 0 {
		t.Errorf("web-5: peeragent_voter = %v, want 0", got)
	}
	if got := learner.ReadyStatus(); got[:7] != "learner" {
		t.Errorf("web-5: ready status %q, want a learner", got)
	}

	size.set(6)
	grown := time.Now()
	eventually(t, "web-5 becomes a voter", wantVoters([]int{0, 1, 2, 3, 4, 5}, all...))
	t.Logf("web-5 a voter on all six %v after the file said 6", time.Since(grown).Round(time.Millisecond))
	eventually(t, "six of six", func() error {
		for _, a := range all {
			if q := a.Quorum(); q.Expected != 6 || q.Alive != 6 || !q.Has {
				return fmt.Errorf("%s: quorum %s, want 6 of 6", a.cfg.NodeName, q)
			}
		}
		return nil
	})
	if got := learner.gauge(learner.votes.voter); got != 1 {
		t.Errorf("web-5: peeragent_voter = %v, want 1", got)
	}
	// The epoch is gossiped in node metadata: each agent sees the others'.
	eventually(t, "every member gossips the same epoch", func() error {
		for _, a := range all {
			own := a.table.currentVoting().Epoch()
			for _, m := range a.Members() {
				if m.Epoch != own {
					return fmt.Errorf("%s sees %s at epoch %d, its own is %d", a.cfg.NodeName, m.Name, m.Epoch, own)
				}
			}
			if got := a.gauge(a.votes.disagreement); got != 0 {
				return fmt.Errorf("%s: peeragent_config_epoch_disagreement = %v", a.cfg.NodeName, got)
			}
		}
		return nil
	})
	select {
	case err := <-learner.done:
		t.Fatalf("web-5 exited: %v", err)
	default:
	}
}

// A committed configuration is saved, and an agent started with the file
// resumes it instead of the bootstrap one; a corrupt file or one of
// another set stops New.
func TestVotingStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "voting.json")
	c := VotingConfig{Epoch: 7, Voters: []int{0, 1, 2, 3, 4}}
	if err := saveVoting(path, "web", c); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Expected, cfg.PeersSRV, cfg.StateFile = "web-1", 3, testSRV, path
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := a.table.currentVoting(); v.Epoch() != 7 || !slices.Equal(v.Current.Voters, c.Voters) {
		t.Errorf("resumed %+v, want %+v", v, c)
	}
	if q := a.Quorum(); q.Expected != 5 || q.Size != 3 {
		t.Errorf("quorum %s, want of 5", q)
	}
	for name, content := range map[string]string{
		"corrupt":       "{",
		"another set":   `{"set":"db","current":{"epoch":1,"voters":[0]}}`,
		"empty voters":  `{"set":"web","current":{"epoch":1,"voters":[]}}`,
		"unsorted list": `{"set":"web","current":{"epoch":1,"voters":[2,1]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := New(cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("New = %v, want ErrConfig", err)
			}
		})
	}
}

// chanSize is a size source the test drives.
type chanSize chan Target

func (c chanSize) Run(ctx context.Context, update func(Target), _ func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-c:
			update(t)
		}
	}
}

// Until the size source first reports, an agent without a saved
// configuration holds no quorum, even if its floor would give it one;
// then it takes the whole target set as its voters.
func TestNoQuorumUntilSized(t *testing.T) {
	t.Parallel()
	size := make(chanSize)
	c := newTestCluster(t, 1)
	a := c.start("web-0", func(cfg *Config) { cfg.Size = size })
	eventually(t, "web-0 alive to itself", wantStates(map[string]MemberState{"web-0": StateAlive}, a))
	if q := a.Quorum(); q.Has || !q.Unsized {
		t.Fatalf("quorum %s before the source reported, want none", q)
	}
	size <- Target{Replicas: 3}
	eventually(t, "voters from the first target", wantVoters([]int{0, 1, 2}, a))
	if q := a.Quorum(); q.Has || q.Unsized || q.Expected != 3 {
		t.Fatalf("quorum %s, want 1 of 3 and sized", q)
	}
	size1 := make(chanSize)
	b := c.start("web-1", func(cfg *Config) { cfg.Size = size1 })
	size1 <- Target{Replicas: 3}
	eventually(t, "two of three", func() error {
		for _, x := range []*testAgent{a, b} {
			if q := x.Quorum(); !q.Has || q.Alive != 2 {
				return fmt.Errorf("%s: %s", x.cfg.NodeName, q)
			}
		}
		return nil
	})
}

// The shrink under a partition from issue 16: web-0, web-3 and web-4 are
// cut off from web-1 and web-2, and only web-1 and web-2 are told N=3
// (their ConfigMap updated first). Joint consensus keeps web-1 and web-2
// without quorum, since web-3 and web-4 are not confirmed gone, so at no
// sample do both sides hold it.
func TestShrinkUnderPartitionHasOneMajority(t *testing.T) {
	t.Parallel()
	sideA, sideB := newSizeFile(t, 5), newSizeFile(t, 5)
	c := newTestCluster(t, 1)
	cuts := map[string]*cutTransport{}
	var agents []*testAgent
	for i, name := range webNames(5) {
		cut := &cutTransport{}
		cuts[name] = cut
		size := sideA
		if i == 1 || i == 2 {
			size = sideB
		}
		agents = append(agents, c.start(name, func(cfg *Config) {
			cfg.wrapTransport = cut.wrap
			cfg.ExpectedFile = size.path
			cfg.ExpectedFileInterval = 50 * time.Millisecond
			cfg.Stabilization = time.Second
		}))
	}
	eventually(t, "all five vote", wantVoters([]int{0, 1, 2, 3, 4}, agents...))
	a := []*testAgent{agents[0], agents[3], agents[4]}
	b := []*testAgent{agents[1], agents[2]}
	for _, x := range a {
		for _, y := range b {
			cuts[x.cfg.NodeName].set(addrOf(y), true)
			cuts[y.cfg.NodeName].set(addrOf(x), true)
		}
	}
	eventually(t, "each side stops counting the other", func() error {
		for _, x := range a {
			for _, y := range b {
				if x.member(y.cfg.NodeName).State == StateAlive || y.member(x.cfg.NodeName).State == StateAlive {
					return fmt.Errorf("%s and %s still count each other", x.cfg.NodeName, y.cfg.NodeName)
				}
			}
		}
		return nil
	})
	sideB.set(3)
	eventually(t, "web-1 and web-2 hold the shrink in flight", func() error {
		for _, y := range b {
			if v := y.table.currentVoting(); v.Next == nil || !slices.Equal(v.Next.Voters, []int{0, 1, 2}) {
				return fmt.Errorf("%s holds %+v", y.cfg.NodeName, v)
			}
		}
		return nil
	})
	has := func(group []*testAgent) bool {
		for _, x := range group {
			if x.Quorum().Has {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(3 * time.Second)
	samples, both, aHeld := 0, 0, 0
	for time.Now().Before(deadline) {
		ha, hb := has(a), has(b)
		samples++
		if ha && hb {
			both++
		}
		if ha {
			aHeld++
		}
		time.Sleep(20 * time.Millisecond) // the sampling period, not a wait for a condition
	}
	if both > 0 {
		t.Errorf("both sides held quorum in %d of %d samples", both, samples)
	}
	if aHeld != samples {
		t.Errorf("web-0, web-3 and web-4 (3 of 5 on N=5) held quorum in %d of %d samples, want all", aHeld, samples)
	}
	for _, y := range b {
		if q := y.Quorum(); q.Has || !q.Joint {
			t.Errorf("%s: %+v, want a joint configuration without quorum", y.cfg.NodeName, q)
		}
	}
	t.Logf("%d samples", samples)
}
