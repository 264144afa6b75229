// Command nodeimages writes images of single static executables as one
// docker archive, for `ctr images import` on the test node. It reads the
// images as JSON (a list of controlplane.ArchiveImage) on stdin and writes
// the archive to the path given as its only argument.
//
// internal/controlplane runs it as a child rather than building the images
// in its caller's process: a test built with -race runs the layers' gzip
// compression instrumented, which made the node's start miss its limit.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peerdns/peerdns/internal/ociimage"
)

// image mirrors controlplane.archiveImage.
type image struct {
	Ref    string   `json:"ref"`
	Binary string   `json:"binary"` // executable on this machine
	Exe    string   `json:"exe"`    // its path in the image
	Args   []string `json:"args"`
	User   string   `json:"user"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nodeimages:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: nodeimages ARCHIVE <images.json")
	}
	var images []image
	if err := json.NewDecoder(os.Stdin).Decode(&images); err != nil {
		return fmt.Errorf("read images: %w", err)
	}
	var tagged []ociimage.Tagged
	for _, im := range images {
		data, err := os.ReadFile(im.Binary)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Ref, err)
		}
		img, err := ociimage.Build(ociimage.Config{
			Platform:   v1.Platform{OS: "linux", Architecture: "amd64"},
			Layers:     [][]ociimage.File{ociimage.UserFiles(), {{Path: im.Exe, Mode: 0o755, Data: data}}},
			Entrypoint: append([]string{im.Exe}, im.Args...),
			User:       im.User,
		})
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Ref, err)
		}
		tagged = append(tagged, ociimage.Tagged{Ref: im.Ref, Image: img})
	}
	return ociimage.WriteDockerArchive(os.Args[1], tagged...)
}
