package discovery

import (
	"fmt"
	"slices"
	"testing"
)

// Nodes with a wrong key, a wrong label or a name outside the set try to
// join a cluster; none becomes a member, each is counted by reason, and the
// real member then joins.
func TestRejectsForeignNodes(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	good := newSecretDir(t, map[string][]byte{"primary": key(1)})
	c.configure = func(cfg *Config) {
		cfg.Label = "prod/web"
		cfg.KeyringDir = good.dir
	}
	agents := []*testAgent{c.start("web-0"), c.start("web-1")}
	pair := allAlive("web-0", "web-1")
	eventually(t, "pair converges", wantStates(pair, agents...))

	rejected := func(reason string) float64 {
		sum := 0.0
		for _, a := range agents {
			sum += a.gauge(a.metrics.rejected.WithLabelValues(reason))
		}
		return sum
	}
	for _, tc := range []struct {
		name, reason string
		node         string
		mutate       func(*Config)
	}{
		{
			name: "wrong key", reason: "key", node: "web-2",
			mutate: func(cfg *Config) { cfg.KeyringDir = newSecretDir(t, map[string][]byte{"primary": key(9)}).dir },
		},
		{
			name: "no key", reason: "key", node: "web-2",
			mutate: func(cfg *Config) { cfg.KeyringDir = "" },
		},
		{
			name: "wrong label", reason: "label", node: "web-2",
			mutate: func(cfg *Config) { cfg.Label = "staging/web" },
		},
		{
			// Admitted are ordinals 0 … MaxMembers-1 (64): web-70 is not.
			name: "name outside the admitted set", reason: "unknown_name", node: "web-70",
			mutate: func(cfg *Config) { cfg.MaxMembers = 128 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rejected(tc.reason)
			intruder := runAgent(t, func() Config {
				cfg := c.config(tc.node)
				tc.mutate(&cfg)
				return cfg
			}())
			eventually(t, "rejection counted", func() error {
				if rejected(tc.reason) == before {
					return fmt.Errorf("no %s rejection counted yet", tc.reason)
				}
				return nil
			})
			// Give it a few rounds of lookups, joins and gossip to sneak in.
			lookups := func() float64 { return intruder.gauge(intruder.metrics.lookups.WithLabelValues("SRV", "ok")) }
			start := lookups()
			eventually(t, "intruder keeps looking", func() error {
				if n := lookups() - start; n < 3 {
					return fmt.Errorf("%v SRV lookups since", n)
				}
				return nil
			})
			if err := wantStates(pair, agents...)(); err != nil {
				t.Fatalf("intruder got in: %v", err)
			}
			intruder.kill()
		})
	}

	agents = append(agents, c.start("web-2"))
	eventually(t, "the real web-2 joins", wantStates(allAlive("web-0", "web-1", "web-2"), agents...))
}

// Keys are rotated through the mounted files alone: install the new key
// everywhere, make it primary, remove the old one. The cluster stays whole,
// a newcomer with only the new key joins, one with only the old key does
// not.
func TestKeyRotationWithoutRestart(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 4)
	dirs := map[string]*secretDir{}
	for _, name := range webNames(3) {
		dirs[name] = newSecretDir(t, map[string][]byte{"primary": key(1)})
	}
	var agents []*testAgent
	for _, name := range webNames(3) {
		agents = append(agents, c.start(name, func(cfg *Config) { cfg.KeyringDir = dirs[name].dir }))
	}
	three := allAlive(webNames(3)...)
	eventually(t, "converge with key 1", wantStates(three, agents...))

	step := func(what string, keys map[string][]byte, wantKeys int, wantPrimary []byte) {
		t.Helper()
		for _, d := range dirs {
			d.write(keys)
		}
		eventually(t, what, func() error {
			for _, a := range agents {
				if err := wantKeyring(a, wantKeys, wantPrimary); err != nil {
					return err
				}
			}
			return nil
		})
		if err := wantStates(three, agents...)(); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
	}
	step("install key 2", map[string][]byte{"primary": key(1), "next": key(2)}, 2, key(1))
	step("use key 2", map[string][]byte{"primary": key(2), "old": key(1)}, 2, key(2))
	step("remove key 1", map[string][]byte{"primary": key(2)}, 1, key(2))

	keyRejections := agents[0].gauge(agents[0].metrics.rejected.WithLabelValues("key"))
	stale := runAgent(t, func() Config {
		cfg := c.config("web-3")
		cfg.KeyringDir = newSecretDir(t, map[string][]byte{"primary": key(1)}).dir
		return cfg
	}())
	eventually(t, "old key rejected", func() error {
		if agents[0].gauge(agents[0].metrics.rejected.WithLabelValues("key")) == keyRejections {
			return fmt.Errorf("no key rejection yet")
		}
		return nil
	})
	stale.kill()

	fresh := c.start("web-3", func(cfg *Config) {
		cfg.KeyringDir = newSecretDir(t, map[string][]byte{"primary": key(2)}).dir
	})
	eventually(t, "newcomer with key 2 joins", wantStates(allAlive(webNames(4)...), append(agents, fresh)...))
	for _, a := range agents {
		if got := a.gauge(a.metrics.keyringReloads.WithLabelValues("success")); got != 3 {
			t.Errorf("%s: %v keyring reloads, want 3", a.cfg.NodeName, got)
		}
	}
}

// Revoking two keys in one update revokes both: once the members report
// the new ring, a node whose only key is one of the revoked ones cannot
// join.
func TestRevokedKeyCannotJoin(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3)
	p, ka, kb, kc := key(1), key(2), key(3), key(4)
	dirs := map[string]*secretDir{}
	var agents []*testAgent
	for _, name := range webNames(2) {
		dirs[name] = newSecretDir(t, map[string][]byte{"primary": p, "a": ka, "b": kb, "c": kc})
		agents = append(agents, c.start(name, func(cfg *Config) { cfg.KeyringDir = dirs[name].dir }))
	}
	pair := allAlive(webNames(2)...)
	eventually(t, "pair converges", wantStates(pair, agents...))

	for _, d := range dirs {
		d.write(map[string][]byte{"primary": p, "c": kc})
	}
	eventually(t, "rotation applied", func() error {
		for _, a := range agents {
			if got := a.gauge(a.metrics.keyringReloads.WithLabelValues("success")); got != 1 {
				return fmt.Errorf("%s: %v keyring reloads", a.cfg.NodeName, got)
			}
			if err := wantKeyring(a, 2, p, p, kc); err != nil {
				return err
			}
		}
		return nil
	})

	rejected := func() float64 {
		sum := 0.0
		for _, a := range agents {
			sum += a.gauge(a.metrics.rejected.WithLabelValues("key"))
		}
		return sum
	}
	before := rejected()
	revoked := runAgent(t, func() Config {
		cfg := c.config("web-2")
		cfg.KeyringDir = newSecretDir(t, map[string][]byte{"primary": kb}).dir
		return cfg
	}())
	eventually(t, "revoked key rejected", func() error {
		if rejected() == before {
			return fmt.Errorf("no key rejection counted yet")
		}
		return nil
	})
	lookups := func() float64 { return revoked.gauge(revoked.metrics.lookups.WithLabelValues("SRV", "ok")) }
	start := lookups()
	eventually(t, "the node with the revoked key keeps trying", func() error {
		if n := lookups() - start; n < 3 {
			return fmt.Errorf("%v SRV lookups since", n)
		}
		return nil
	})
	if err := wantStates(pair, agents...)(); err != nil {
		t.Fatalf("a node holding only a revoked key got in: %v", err)
	}
	if err := revoked.Startup(); err == nil {
		t.Fatal("the node holding only a revoked key joined")
	}
}

// wantKeyring checks what an agent's metrics report of its keyring: n keys
// (their fingerprints too, when keys are given) and the primary.
func wantKeyring(a *testAgent, n int, primary []byte, keys ...[]byte) error {
	mfs, err := a.reg.Gather()
	if err != nil {
		return err
	}
	var count float64
	var gotPrimary string
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "peeragent_keyring_keys":
				count = m.GetGauge().GetValue()
			case "peeragent_keyring_primary_key_info":
				gotPrimary = m.GetLabel()[0].GetValue()
			case "peeragent_keyring_key_info":
				got = append(got, m.GetLabel()[0].GetValue())
			}
		}
	}
	if count != float64(n) || len(got) != n {
		return fmt.Errorf("%s reports %v keys and %d key fingerprints, want %d", a.cfg.NodeName, count, len(got), n)
	}
	if gotPrimary != fingerprint(primary) {
		return fmt.Errorf("%s: primary %s, want %s", a.cfg.NodeName, gotPrimary, fingerprint(primary))
	}
	if len(keys) > 0 {
		var want []string
		for _, k := range keys {
			if !slices.Contains(want, fingerprint(k)) {
				want = append(want, fingerprint(k))
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s reports keys %v, want %v", a.cfg.NodeName, got, want)
		}
	}
	return nil
}
