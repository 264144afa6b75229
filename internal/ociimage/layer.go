package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// File is one regular file in a layer.
type File struct {
	// Path is the absolute path in the image, e.g. /usr/bin/peerdns. Parent
	// directories are added as root-owned 0755 directories.
	Path string
	// Mode holds the permission bits; 0 means 0644.
	Mode fs.FileMode
	// UID and GID own the file; 0 (root) by default.
	UID, GID int
	// Data is the file's content.
	Data []byte
}

// layerTar writes files as an uncompressed tar: parent directories first,
// entries sorted by path, names relative ("usr/bin/x"), every time field
// modTime, no user or group names. go-containerregistry's nearest, crane.Layer,
// writes mode 0 (no executable), no directories and no time or owner.
func layerTar(files []File, modTime time.Time) ([]byte, error) {
	byPath := make(map[string]File, len(files))
	dirs := map[string]bool{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(f.Path) || p == "/" {
			return nil, fmt.Errorf("file path %q: want an absolute path to a file", f.Path)
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("file path %q: given twice", f.Path)
		}
		f.Path = p
		byPath[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if _, clash := byPath[d]; clash {
			return nil, fmt.Errorf("file path %q: is also a parent directory", d)
		}
	}
	names := make([]string, 0, len(byPath)+len(dirs))
	for p := range byPath {
		names = append(names, p)
	}
	for d := range dirs {
		names = append(names, d)
	}
	slices.Sort(names)

	modTime = modTime.UTC().Truncate(time.Second)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(n, "/"),
			ModTime: modTime,
		}
		f, isFile := byPath[n]
		if !isFile {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			hdr.Mode = 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			continue
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Mode = int64(mode)
		hdr.Uid, hdr.Gid = f.UID, f.GID
		hdr.Size = int64(len(f.Data))
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
