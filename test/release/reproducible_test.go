package release_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/testtools"
)

// TestChartsReproducible packages the charts twice for one commit, at least
// a second apart (helm would stamp two different times), and wants the same
// bytes: every .tgz entry and every index.yaml time is SOURCE_DATE_EPOCH.
func TestChartsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("packages the charts with helm; skipped with -short")
	}
	helm := testtools.Path(t, "helm")
	root := repoRoot(t)
	epoch := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pack := func(t *testing.T) map[string][]byte {
		t.Helper()
		dist := t.TempDir()
		cmd := exec.Command("go", "run", "./hack/release", "-charts-only", "-dist", dist, "-version", "v0.1.0-dev-gtest", "-release", makefileRelease(t, root), "-helm", helm)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hack/release -charts-only: %v\n%s", err, out)
		}
		dir := filepath.Join(dist, "release", "charts")
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, e := range entries {
			if files[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		return files
	}
	start := time.Now()
	first := pack(t)
	if d := time.Second - time.Since(start); d > 0 {
		time.Sleep(d) // helm's time stamps would now differ
	}
	second := pack(t)
	if len(first) != 3 {
		t.Errorf("packaged %d files, want two charts and index.yaml", len(first))
	}
	for name, data := range first {
		if !bytes.Equal(data, second[name]) {
			t.Errorf("%s differs between two packagings of one commit", name)
		}
	}

	t.Run("index times", func(t *testing.T) {
		var idx struct {
			Generated time.Time
			Entries   map[string][]struct{ Created time.Time }
		}
		if err := yaml.Unmarshal(first["index.yaml"], &idx); err != nil {
			t.Fatal(err)
		}
		got := []time.Time{idx.Generated}
		for _, chart := range []string{"peerdns", "peeragent"} {
			for _, v := range idx.Entries[chart] {
				got = append(got, v.Created)
			}
		}
		if diff := cmp.Diff([]time.Time{epoch, epoch, epoch}, got); diff != "" {
			t.Errorf("generated, then created of peerdns and peeragent (-want +got):\n%s", diff)
		}
	})
	for _, name := range []string{"peerdns-0.1.0-dev-gtest.tgz", "peeragent-0.1.0-dev-gtest.tgz"} {
		t.Run(name, func(t *testing.T) {
			zr, err := gzip.NewReader(bytes.NewReader(first[name]))
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(zr)
			n := 0
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
				if !h.ModTime.Equal(epoch) {
					t.Errorf("%s dated %v, want %v", h.Name, h.ModTime, epoch)
				}
			}
			if n == 0 {
				t.Error("empty package")
			}
		})
	}
}
