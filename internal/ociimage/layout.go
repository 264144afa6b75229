package ociimage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefNameAnnotation names an entry of an OCI layout's index.json; podman,
// skopeo (oci:<dir>:<ref>) and `ctr images import` read it.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Tagged is an image or an index with the reference it is stored under,
// e.g. "ghcr.io/peerdns/peerdns:v0.1.0". Exactly one of Image and Index is set.
type Tagged struct {
	Ref   string
	Image v1.Image
	Index v1.ImageIndex
}

// WriteLayout writes an OCI image layout to dir, which must not exist or be
// empty: the blobs of every item, and index.json listing the items in the
// order given, each annotated with its Ref.
func WriteLayout(dir string, items ...Tagged) (layout.Path, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return "", fmt.Errorf("write OCI layout: %s is not empty", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("write OCI layout: %w", err)
	}
	for _, it := range items {
		opt := layout.WithAnnotations(map[string]string{RefNameAnnotation: it.Ref})
		switch {
		case it.Image != nil && it.Index == nil:
			err = p.AppendImage(it.Image, opt)
		case it.Index != nil && it.Image == nil:
			err = p.AppendIndex(it.Index, opt)
		default:
			err = fmt.Errorf("%s: want exactly one of an image and an index", it.Ref)
		}
		if err != nil {
			return "", fmt.Errorf("write OCI layout: %w", err)
		}
	}
	return p, nil
}

// Artifact is content attached to an image as an OCI 1.1 artifact: a manifest
// whose subject is the image, with the empty config and one layer holding Data.
type Artifact struct {
	// ArtifactType, e.g. "application/spdx+json".
	ArtifactType string
	// MediaType of Data; empty means ArtifactType.
	MediaType string
	Data      []byte
	// Annotations on the artifact manifest and its index.json entry.
	Annotations map[string]string
}

// emptyJSON is the OCI empty descriptor's content, "{}".
var emptyJSON = []byte("{}")

// AttachArtifact writes a as an artifact manifest referring to subject into
// the layout p and lists it in index.json, where tools that resolve OCI
// referrers from a layout (oras discover --oci-layout, regctl) find it.
// It returns the artifact manifest's descriptor.
func AttachArtifact(p layout.Path, subject v1.Descriptor, a Artifact) (v1.Descriptor, error) {
	mt := a.MediaType
	if mt == "" {
		mt = a.ArtifactType
	}
	emptyDesc, err := writeBlob(p, types.MediaType("application/vnd.oci.empty.v1+json"), emptyJSON)
	if err != nil {
		return v1.Descriptor{}, err
	}
	emptyDesc.Data = emptyJSON
	dataDesc, err := writeBlob(p, types.MediaType(mt), a.Data)
	if err != nil {
		return v1.Descriptor{}, err
	}
	subj := v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  a.ArtifactType,
		Config:        emptyDesc,
		Layers:        []v1.Descriptor{dataDesc},
		Subject:       &subj,
		Annotations:   a.Annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("attach artifact: %w", err)
	}
	desc, err := writeBlob(p, types.OCIManifestSchema1, raw)
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc.ArtifactType = a.ArtifactType
	desc.Annotations = a.Annotations
	if err := p.AppendDescriptor(desc); err != nil {
		return v1.Descriptor{}, fmt.Errorf("attach artifact: %w", err)
	}
	return desc, nil
}

func writeBlob(p layout.Path, mt types.MediaType, data []byte) (v1.Descriptor, error) {
	h, size, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(data))); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write blob: %w", err)
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: h}, nil
}

// Descriptor returns the descriptor (media type, size, digest) of an image's
// manifest, as a subject or an index entry names it.
func Descriptor(img v1.Image) (v1.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: n, Digest: d}, nil
}
