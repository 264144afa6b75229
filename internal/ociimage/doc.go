// Package ociimage builds small container images from static files, without a
// container daemon, on top of go-containerregistry.
//
// An image is a list of layers, each a list of files given by their content;
// every entry of every layer tar carries the image's creation time, root as
// owner unless the File says otherwise, and a fixed order (sorted by path), so
// the same inputs and creation time (take it from SOURCE_DATE_EPOCH with
// [SourceDateEpoch]) give the same digest on every machine. Typical use:
//
//	created, err := ociimage.SourceDateEpoch()
//	img, err := ociimage.Build(ociimage.Config{
//		Platform:   v1.Platform{OS: "linux", Architecture: "amd64"},
//		Layers:     [][]ociimage.File{{{Path: "/pause", Mode: 0o755, Data: bin}}},
//		Entrypoint: []string{"/pause"},
//		Created:    created,
//	})
//	err = ociimage.WriteDockerArchive("pause.tar", ociimage.Tagged{Ref: "localhost/pause:test", Image: img})
//
// The docker archive loads with `podman load -i`, `docker load -i` and
// `ctr images import`; [WriteLayout] and [WriteOCIArchive] write an OCI
// image layout (directory or tar) that can also hold multi-platform indexes
// ([NewIndex]) and artifacts attached to an image ([AttachArtifact]).
package ociimage
