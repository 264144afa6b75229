package ociimage_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/peerdns/peerdns/internal/ociimage"
)

var created = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testConfig(arch string) ociimage.Config {
	return ociimage.Config{
		Platform:    v1.Platform{OS: "linux", Architecture: arch},
		Layers:      [][]ociimage.File{ociimage.UserFiles(), {{Path: "/usr/bin/prog", Mode: 0o755, Data: []byte("#!binary " + arch)}}},
		Entrypoint:  []string{"/usr/bin/prog"},
		Labels:      map[string]string{"org.opencontainers.image.version": "v0.1.0"},
		Annotations: map[string]string{"org.opencontainers.image.version": "v0.1.0"},
		Created:     created,
	}
}

func mustBuild(t *testing.T, c ociimage.Config) v1.Image {
	t.Helper()
	img, err := ociimage.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBuildIsReproducible(t *testing.T) {
	t.Run("same config, same digest", func(t *testing.T) {
		a, b := mustBuild(t, testConfig("amd64")), mustBuild(t, testConfig("amd64"))
		if da, db := digest(t, a), digest(t, b); da != db {
			t.Errorf("digests differ: %s and %s", da, db)
		}
	})
	t.Run("another time, another digest", func(t *testing.T) {
		c := testConfig("amd64")
		c.Created = created.Add(time.Second)
		if da, db := digest(t, mustBuild(t, testConfig("amd64"))), digest(t, mustBuild(t, c)); da == db {
			t.Errorf("digests equal (%s) for different creation times", da)
		}
	})
	t.Run("index", func(t *testing.T) {
		idx := func() v1.ImageIndex {
			i, err := ociimage.NewIndex([]v1.Image{mustBuild(t, testConfig("amd64")), mustBuild(t, testConfig("arm64"))}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return i
		}
		if da, db := digest(t, idx()), digest(t, idx()); da != db {
			t.Errorf("index digests differ: %s and %s", da, db)
		}
	})
}

type entry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	ModTime  time.Time
}

func TestLayerEntries(t *testing.T) {
	img := mustBuild(t, testConfig("amd64"))
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []entry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC()})
	}
	want := []entry{
		{"usr/", tar.TypeDir, 0o755, 0, 0, created},
		{"usr/bin/", tar.TypeDir, 0o755, 0, 0, created},
		{"usr/bin/prog", tar.TypeReg, 0o755, 0, 0, created},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestConfig(t *testing.T) {
	cf, err := mustBuild(t, testConfig("arm64")).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		OS, Arch, User string
		Entrypoint     []string
		Created        time.Time
		Labels         map[string]string
	}
	got := view{cf.OS, cf.Architecture, cf.Config.User, cf.Config.Entrypoint, cf.Created.UTC(), cf.Config.Labels}
	want := view{"linux", "arm64", "65532:65532", []string{"/usr/bin/prog"}, created, map[string]string{"org.opencontainers.image.version": "v0.1.0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestBuildRejects(t *testing.T) {
	for name, files := range map[string][]ociimage.File{
		"relative path":    {{Path: "usr/bin/x"}},
		"duplicate":        {{Path: "/x"}, {Path: "/x"}},
		"file is a parent": {{Path: "/a"}, {Path: "/a/b"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig("amd64")
			c.Layers = [][]ociimage.File{files}
			if _, err := ociimage.Build(c); err == nil {
				t.Error("Build succeeded, want an error")
			}
		})
	}
}

func TestLayoutWithArtifact(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	amd, arm := mustBuild(t, testConfig("amd64")), mustBuild(t, testConfig("arm64"))
	idx, err := ociimage.NewIndex([]v1.Image{amd, arm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ociimage.WriteLayout(dir, ociimage.Tagged{Ref: "example.com/prog:v0.1.0", Index: idx})
	if err != nil {
		t.Fatal(err)
	}
	subject, err := ociimage.Descriptor(amd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ociimage.AttachArtifact(p, subject, ociimage.Artifact{ArtifactType: "application/spdx+json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)}); err != nil {
		t.Fatal(err)
	}

	top, err := layout.Path(dir).ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index.json lists %d manifests, want the index and the artifact", len(im.Manifests))
	}
	if got, want := im.Manifests[0].Annotations[ociimage.RefNameAnnotation], "example.com/prog:v0.1.0"; got != want {
		t.Errorf("ref name %q, want %q", got, want)
	}
	if got, want := im.Manifests[0].Digest, digest(t, idx); got != want {
		t.Errorf("index entry digest %s, want %s", got, want)
	}
	art, err := layout.Path(dir).Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest || m.ArtifactType != "application/spdx+json" {
		t.Errorf("artifact manifest: subject %v, artifactType %q; want subject %s, application/spdx+json", m.Subject, m.ArtifactType, subject.Digest)
	}

	t.Run("oci archive is reproducible", func(t *testing.T) {
		a, b := filepath.Join(t.TempDir(), "a.tar"), filepath.Join(t.TempDir(), "b.tar")
		for _, f := range []string{a, b} {
			if err := ociimage.WriteOCIArchive(f, dir, created); err != nil {
				t.Fatal(err)
			}
		}
		if !sameFile(t, a, b) {
			t.Error("two archives of one layout differ")
		}
	})
}

func TestDockerArchive(t *testing.T) {
	dir := t.TempDir()
	img := mustBuild(t, testConfig("amd64"))
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, f := range []string{a, b} {
		if err := ociimage.WriteDockerArchive(f, ociimage.Tagged{Ref: "example.com/prog:v0.1.0", Image: img}, ociimage.Tagged{Ref: "example.com/prog:latest", Image: img}); err != nil {
			t.Fatal(err)
		}
	}
	if !sameFile(t, a, b) {
		t.Error("two archives of the same images differ")
	}
	f, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	var manifest []struct{ RepoTags []string }
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(names) != 4 { // config, two layers, manifest.json: shared blobs once
		t.Errorf("archive entries %q, want config, 2 layers and manifest.json", names)
	}
	want := []struct{ RepoTags []string }{{[]string{"example.com/prog:v0.1.0"}}, {[]string{"example.com/prog:latest"}}}
	if diff := cmp.Diff(want, manifest); diff != "" {
		t.Errorf("manifest.json (-want +got):\n%s", diff)
	}
}

// Several different images, as hack/image writes one archive of peerdns
// and peeragent a platform, still give the same bytes every time: the
// entries follow the order given, not a map's.
func TestDockerArchiveOfSeveralImagesIsReproducible(t *testing.T) {
	dir := t.TempDir()
	var images []ociimage.Tagged
	for _, name := range []string{"a", "b", "c"} {
		c := testConfig("amd64")
		c.Layers = append(c.Layers, []ociimage.File{{Path: "/" + name, Data: []byte(name)}})
		images = append(images, ociimage.Tagged{Ref: "example.com/" + name + ":v1", Image: mustBuild(t, c)})
	}
	first := filepath.Join(dir, "first.tar")
	if err := ociimage.WriteDockerArchive(first, images...); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		again := filepath.Join(dir, fmt.Sprintf("again-%d.tar", i))
		if err := ociimage.WriteDockerArchive(again, images...); err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, first, again) {
			t.Fatalf("write %d of the same three images differs from the first", i+2)
		}
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(da) == string(db)
}

func TestSourceDateEpoch(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		want      time.Time
		wantErr   bool
	}{
		{name: "unset", env: "", want: time.Unix(0, 0).UTC()},
		{name: "seconds", env: "1764158400", want: time.Unix(1764158400, 0).UTC()},
		{name: "not a number", env: "yesterday", wantErr: true},
		{name: "negative", env: "-1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tc.env)
			got, err := ociimage.SourceDateEpoch()
			if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
				t.Errorf("SourceDateEpoch() = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
