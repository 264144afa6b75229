package ociimage

import (
	"compress/gzip"
	"fmt"
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRoot is the user images run as unless Config.User says otherwise: the
// "nonroot" user of distroless images, 65532:65532.
const NonRoot = "65532:65532"

// Config describes one single-platform image.
type Config struct {
	// Platform the files are built for. OS and Architecture are required;
	// Variant is e.g. "v8" for arm64.
	Platform v1.Platform
	// Layers, bottom first; each is a list of files (see File). At least one.
	Layers [][]File
	// Entrypoint and Cmd as in the OCI image config.
	Entrypoint []string
	Cmd        []string
	// Env as KEY=value pairs.
	Env []string
	// User to run as, "uid:gid". Empty means NonRoot.
	User string
	// WorkingDir of the process. Empty means /.
	WorkingDir string
	// ExposedPorts such as "53/udp".
	ExposedPorts []string
	// Labels go into the image config (what `podman inspect` shows).
	Labels map[string]string
	// Annotations go onto the image manifest (what registries show).
	Annotations map[string]string
	// Created is the creation time recorded in the config and history and
	// the modification time of every file. The zero time means the Unix
	// epoch, so an image built without it is still reproducible.
	Created time.Time
}

// Build assembles the image: an OCI manifest (application/vnd.oci.image.manifest.v1+json)
// with gzip-compressed layers. The result is computed in memory and is the
// same for the same Config.
func Build(c Config) (v1.Image, error) {
	if c.Platform.OS == "" || c.Platform.Architecture == "" {
		return nil, fmt.Errorf("build image: platform needs an OS and an architecture, got %q", c.Platform.String())
	}
	if len(c.Layers) == 0 {
		return nil, fmt.Errorf("build image: no layers")
	}
	created := c.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	user := c.User
	if user == "" {
		user = NonRoot
	}
	var ports map[string]struct{}
	if len(c.ExposedPorts) > 0 {
		ports = make(map[string]struct{}, len(c.ExposedPorts))
		for _, p := range c.ExposedPorts {
			ports[p] = struct{}{}
		}
	}
	cf := &v1.ConfigFile{
		Architecture: c.Platform.Architecture,
		OS:           c.Platform.OS,
		OSVersion:    c.Platform.OSVersion,
		Variant:      c.Platform.Variant,
		OSFeatures:   c.Platform.OSFeatures,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint:   c.Entrypoint,
			Cmd:          c.Cmd,
			Env:          c.Env,
			User:         user,
			WorkingDir:   c.WorkingDir,
			ExposedPorts: ports,
			Labels:       maps.Clone(c.Labels),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	adds := make([]mutate.Addendum, 0, len(c.Layers))
	for i, files := range c.Layers {
		l, err := NewLayer(files, created)
		if err != nil {
			return nil, fmt.Errorf("build image: layer %d: %w", i, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:   l,
			History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "ociimage", Comment: layerComment(files)},
		})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	if len(c.Annotations) > 0 {
		img = mutate.Annotations(img, c.Annotations).(v1.Image)
	}
	return img, nil
}

// NewLayer returns a gzip-compressed OCI layer holding files (see File for
// the tar entries written), every entry stamped with modTime.
func NewLayer(files []File, modTime time.Time) (v1.Layer, error) {
	data, err := layerTar(files, modTime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(bytesOpener(data),
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestCompression),
		tarball.WithCompressedCaching)
}

func layerComment(files []File) string {
	if len(files) == 1 {
		return files[0].Path
	}
	return fmt.Sprintf("%d files", len(files))
}
