package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// secretVolume is a directory laid out and updated as the kubelet's atomic
// writer does for a Secret volume: the files live in a hidden
// "..<timestamp>" directory, "..data" is a symlink to it, and each visible
// name is a symlink "<key>" -> "..data/<key>". An update writes a new
// timestamped directory, swaps "..data" to it with a rename, then adds the
// visible links of new keys, removes those of keys gone, and removes the
// old directory, in that order. Between the swap and the link changes a
// reader that follows the visible links one by one sees links of the old
// set pointing into the new one.
type secretVolume struct {
	dir  string
	gen  int
	data string   // current "..<timestamp>" directory's name
	keys []string // current visible names
}

func newSecretVolume(t *testing.T, files map[string]string) *secretVolume {
	t.Helper()
	v := &secretVolume{dir: t.TempDir()}
	v.write(t, files)
	return v
}

// write replaces the volume's content with files (name -> content).
func (v *secretVolume) write(t *testing.T, files map[string]string) {
	t.Helper()
	v.gen++
	data := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, data), 0o755); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(v.dir, data, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, name)
	}
	slices.Sort(keys)

	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(data, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if slices.Contains(v.keys, k) {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(v.dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range v.keys {
		if !slices.Contains(keys, k) {
			if err := os.Remove(filepath.Join(v.dir, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v.data != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.data)); err != nil {
			t.Fatal(err)
		}
	}
	v.data, v.keys = data, keys
}
