package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// testKeyringRotation: a StatefulSet keys of 3 gossiping encrypted, each
// member with its own copy of the Secret (a volume the kubelet updates
// atomically, one pod after another), rotated in the documented three
// steps: add the new key, make it primary, remove the old one. Throughout,
// every member sees every other alive with quorum and their views agree,
// and until the old key is removed no member drops a message it cannot
// decrypt.
func testKeyringRotation(t *testing.T, d *deployment) {
	oldKey, newKey := gossipKey(t), gossipKey(t)
	s := d.newStatefulSet(t, "keys", 3, "--gossip.keyring-reload-interval=250ms")
	volumes := make([]*secretVolume, s.n)
	for i := range volumes {
		volumes[i] = newSecretVolume(t, map[string]string{"primary": oldKey})
	}
	s.memberArgs = func(i int) []string { return []string{"--gossip.keyring-dir=" + volumes[i].dir} }
	s.startAll(t)
	testtools.Eventually(t, "encrypted with the old key", stepLimit, s.wantKeyring(1, oldKey))
	// Views gossiped while the members were still finding each other
	// disagree until the final ones arrive.
	testtools.Eventually(t, "views agree", stepLimit, s.wantViewsAgree())

	kept := watch(t, "membership kept, views agree", 100*time.Millisecond, func() error {
		var checks []func() error
		for _, p := range s.agents {
			checks = append(checks,
				wantMetric(p, `peeragent_members{state="alive"}`, float64(s.n)),
				wantMetric(p, "peeragent_has_quorum", 1),
				wantMetric(p, "peeragent_view_disagreement", 0),
			)
		}
		return allOf(checks...)()
	})
	steps := []struct {
		what    string
		files   map[string]string
		keys    float64
		primary string
	}{
		{"add the new key", map[string]string{"primary": oldKey, "next": newKey}, 2, oldKey},
		{"make it primary", map[string]string{"primary": newKey, "old": oldKey}, 2, newKey},
		{"remove the old key", map[string]string{"primary": newKey}, 1, newKey},
	}
	for n, step := range steps {
		if n == len(steps)-1 {
			// Until the old key is removed every member can read both
			// keys, so nothing may have been dropped.
			for _, p := range s.agents {
				if err := wantMetric(p, `peeragent_rejected_messages_total{reason="key"}`, 0)(); err != nil {
					t.Error(err)
				}
			}
		}
		// The kubelet updates each pod's volume on its own schedule: one
		// member after another, so that members with the old and the new
		// keyring gossip with each other in between.
		start := time.Now()
		for i, v := range volumes {
			v.write(t, step.files)
			testtools.Eventually(t, fmt.Sprintf("%s: %s", step.what, s.member(i)), stepLimit,
				wantKeyring(s.agents[i], step.keys, step.primary))
		}
		t.Logf("measured: keyring rotation: %s: applied on all %d members, one after another, in %v", step.what, s.n, since(start))
	}
	kept.end(t)
	// The old key goes here right after the last member switched its
	// primary, where the kubelet would take up to a minute: a packet that
	// member encrypted with the old key just before may still be queued.
	// Dropping it loses no membership (the monitor above), so it is
	// measured, not asserted.
	dropped := 0.0
	for _, p := range s.agents {
		v, err := p.metric(`peeragent_rejected_messages_total{reason="key"}`)
		if err != nil && !isNoSample(err) {
			t.Error(err)
		}
		dropped += v
	}
	t.Logf("measured: keyring rotation: %v packets dropped as undecryptable after the old key was removed", dropped)
}

// wantKeyring checks that every agent has keys keys installed, primary
// first.
func (s *statefulSet) wantKeyring(keys float64, primary string) func() error {
	var checks []func() error
	for _, p := range s.agents {
		checks = append(checks, wantKeyring(p, keys, primary))
	}
	return allOf(checks...)
}

// wantKeyring checks that p has keys keys installed and encrypts with
// primary.
func wantKeyring(p *proc, keys float64, primary string) func() error {
	return allOf(
		wantMetric(p, "peeragent_keyring_keys", keys),
		wantMetric(p, fmt.Sprintf("peeragent_keyring_primary_key_info{fingerprint=%q}", keyFingerprint(primary)), 1),
	)
}

// gossipKey is a new random 32-byte key, base64-encoded as in a key file.
func gossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// keyFingerprint is the fingerprint label peeragent exposes for a key: the
// first 8 hex digits of the SHA-256 of the raw key.
func keyFingerprint(b64 string) string {
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:4])
}
