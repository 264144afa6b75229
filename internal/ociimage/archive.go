package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// WriteOCIArchive writes the OCI layout in dir as a tar file at path (the
// oci-archive format of podman, skopeo and `ctr images import`): entries
// sorted by path, owned by root, mode 0644/0755, all dated modTime, so the
// same layout gives the same bytes.
// go-containerregistry writes the layout (package layout) but has no
// writer for this tar of it.
func WriteOCIArchive(path, dir string, modTime time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write OCI archive: %w", err)
	}
	tw := tar.NewWriter(f)
	modTime = modTime.UTC().Truncate(time.Second)
	// WalkDir visits in lexical order, which makes the tar deterministic.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: modTime}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p) //nolint:gosec // G122: p is under our own output directory, not a tree another user can swap
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write OCI archive %s: %w", path, err)
	}
	return nil
}

// dockerManifestEntry is one image of a docker archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteDockerArchive writes single-platform images (Index unset) as a docker
// archive at path, loadable by `podman load`, `docker load` and `ctr images
// import`. Entries come in the order given, images first seen first, so the
// same images give the same bytes. Refs must be tags (name:tag).
//
// Workaround: go-containerregistry's tarball.MultiRefWrite writes the same
// format, but orders the entries of several images by iterating a map (in
// v0.22.1, 20 writes of the same three images gave three different
// archives), so the archive is written here.
func WriteDockerArchive(path string, images ...Tagged) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	put := func(name string, data []byte) error {
		if written[name] {
			return nil
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	var manifest []dockerManifestEntry
	for _, it := range images {
		if it.Image == nil {
			return fmt.Errorf("write docker archive: %s: not a single-platform image", it.Ref)
		}
		tag, err := name.NewTag(it.Ref, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("write docker archive: %w", err)
		}
		cfgName, err := it.Image.ConfigName()
		if err != nil {
			return err
		}
		cfg, err := it.Image.RawConfigFile()
		if err != nil {
			return err
		}
		e := dockerManifestEntry{Config: cfgName.Hex + ".json", RepoTags: []string{tag.String()}}
		if err := put(e.Config, cfg); err != nil {
			return err
		}
		layers, err := it.Image.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			e.Layers = append(e.Layers, d.Hex+".tar.gz")
			if err := put(d.Hex+".tar.gz", data); err != nil {
				return err
			}
		}
		manifest = append(manifest, e)
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := put("manifest.json", m); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil { //nolint:gosec // G306: a release artifact, meant to be read by others
		return fmt.Errorf("write docker archive: %w", err)
	}
	return nil
}
