package discovery

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

func key(n byte) []byte { return bytes.Repeat([]byte{n}, 32) }

func writeKey(t *testing.T, dir, name string, k []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// secretDir lays out and updates keys as the kubelet's atomic writer does
// for a Secret volume: the files live in a timestamped directory, "..data"
// points at it, each key name is a symlink through "..data". An update
// writes a new timestamped directory, points "..data_tmp" at it, renames
// that over "..data", adds the new visible names, removes the stale ones,
// and removes the previous timestamped directory.
type secretDir struct {
	t   *testing.T
	dir string
	gen int
}

func newSecretDir(t *testing.T, keys map[string][]byte) *secretDir {
	s := &secretDir{t: t, dir: t.TempDir()}
	s.write(keys)
	return s
}

func (s *secretDir) write(keys map[string][]byte) {
	s.t.Helper()
	s.gen++
	old, _ := os.Readlink(filepath.Join(s.dir, "..data"))
	gen := filepath.Join(s.dir, fmt.Sprintf("..%d_%s", s.gen, time.Now().Format("150405.000000000")))
	if err := os.Mkdir(gen, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for name, k := range keys {
		writeKey(s.t, gen, name, k)
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
	for name := range keys {
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			s.t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if e.Name()[0] != '.' {
			if _, ok := keys[e.Name()]; !ok {
				os.Remove(filepath.Join(s.dir, e.Name()))
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(s.dir, old)); err != nil {
			s.t.Fatal(err)
		}
	}
}

// A rotation that lands between two key file reads must not yield a mixed
// keyring: the read sees one complete version of the Secret.
func TestReadKeyFilesDuringSwap(t *testing.T) {
	v1 := map[string][]byte{"primary": key(1), "next": key(2)}
	v2 := map[string][]byte{"primary": key(2), "old": key(1)}
	s := newSecretDir(t, v1)
	swapped := false
	keyFileRead = func(string) {
		if !swapped {
			swapped = true
			s.write(v2)
		}
	}
	defer func() { keyFileRead = nil }()
	kf, err := readKeyFiles(s.dir, "primary")
	if err != nil {
		t.Fatal(err)
	}
	if !swapped {
		t.Fatal("the swap never happened")
	}
	if len(kf.all) != 2 {
		t.Fatalf("read %d keys (primary %x), want both keys of one version", len(kf.all), kf.primary[:1])
	}
}

func TestReadKeyFiles(t *testing.T) {
	t.Run("secret volume", func(t *testing.T) {
		s := newSecretDir(t, map[string][]byte{"primary": key(1), "next": key(2)})
		kf, err := readKeyFiles(s.dir, "primary")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kf.primary, key(1)) || len(kf.all) != 2 {
			t.Fatalf("primary %x, %d keys; want key 1 of 2", kf.primary[:1], len(kf.all))
		}
		s.write(map[string][]byte{"primary": key(2)})
		kf2, err := readKeyFiles(s.dir, "primary")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kf2.primary, key(2)) || len(kf2.all) != 1 || kf2.equal(kf) {
			t.Fatalf("after the swap: primary %x, %d keys; want key 2 alone", kf2.primary[:1], len(kf2.all))
		}
	})
	for _, tc := range []struct {
		name  string
		files map[string]string
	}{
		{"no primary", map[string]string{"other": base64.StdEncoding.EncodeToString(key(1))}},
		{"not base64", map[string]string{"primary": "not base64!"}},
		{"wrong length", map[string]string{"primary": base64.StdEncoding.EncodeToString([]byte("short"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := readKeyFiles(dir, "primary"); err == nil {
				t.Fatal("readKeyFiles accepted a bad keyring directory")
			}
		})
	}
}

func TestApplyKeys(t *testing.T) {
	kr, err := memberlist.NewKeyring(nil, key(1))
	if err != nil {
		t.Fatal(err)
	}
	// Install key 2, make it primary and drop key 1 in one step.
	if err := applyKeys(kr, keyFiles{primary: key(2), all: [][]byte{key(2)}}); err != nil {
		t.Fatal(err)
	}
	if got := kr.GetPrimaryKey(); !bytes.Equal(got, key(2)) {
		t.Errorf("primary %x, want key 2", got[:1])
	}
	if got := kr.GetKeys(); len(got) != 1 {
		t.Errorf("%d keys installed, want 1", len(got))
	}
}

// Removing two keys of four in one update must remove both: memberlist's
// GetKeys hands out the ring's own slice, which RemoveKey shifts in place.
func TestApplyKeysRemovesEveryRevokedKey(t *testing.T) {
	p, a, b, c := key(1), key(2), key(3), key(4)
	kr, err := memberlist.NewKeyring([][]byte{a, b, c}, p) // ring [P A B C]
	if err != nil {
		t.Fatal(err)
	}
	if err := applyKeys(kr, keyFiles{primary: p, all: [][]byte{p, c}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range kr.GetKeys() {
		got = append(got, fingerprint(k))
	}
	want := []string{fingerprint(p), fingerprint(c)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live ring after {P, C} (-want +got):\n%s", diff)
	}
}
