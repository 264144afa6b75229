// Command image is `make image`: it packs the static binaries `make binaries`
// cross-compiled into one OCI image per program (peerdns, peeragent), each an
// image index with one image per platform, and writes them under -out:
//
//	oci/                        OCI image layout: both indexes, tagged
//	                            <repository>/<program>:<version>, and one SPDX
//	                            SBOM per platform image attached as an OCI 1.1
//	                            artifact (its subject is the image manifest)
//	images.oci.tar              the same layout as one tar (oci-archive)
//	images-<os>-<arch>.tar      docker archive of both images for one platform,
//	                            for `podman load -i` / `docker load -i`
//	sbom/<program>-<os>-<arch>.spdx.json
//	                            the SBOMs as files
//	digests.txt                 "<reference>@<index digest>", one per program
//
// An image holds the binary at /usr/local/bin/<program> (its entrypoint),
// /etc/passwd and /etc/group naming the nonroot user 65532 it runs as, and a
// CA bundle at /etc/ssl/certs/ca-certificates.crt taken from the pinned
// golang.org/x/crypto/x509roots/fallback module (Mozilla's roots; roots that
// carry a distrust-after constraint, which a PEM bundle cannot express, are
// left out). Every time stamp is $SOURCE_DATE_EPOCH, so the same commit gives
// the same digests.
package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/peerdns/peerdns/internal/ociimage"
	"github.com/peerdns/peerdns/internal/spdx"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	binDir     string
	out        string
	platforms  []v1.Platform
	repository string
	version    string
	revision   string
	source     string
}

// programs are the images built, with what their config says.
var programs = []struct {
	name, description string
	ports             []string
}{
	{"peerdns", "Authoritative DNS for Kubernetes headless services, fed by EndpointSlices", []string{"53/udp", "53/tcp", "9153/tcp"}},
	{"peeragent", "Quorum membership sidecar for StatefulSets (memberlist over peerdns names)", []string{"7946/tcp", "7946/udp", "9470/tcp"}},
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var platforms string
	fs.StringVar(&c.binDir, "bin", "dist/bin", "directory with <os>_<arch>/<program> binaries")
	fs.StringVar(&c.out, "out", "dist/image", "output directory, replaced")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "platforms, comma- or space-separated")
	fs.StringVar(&c.repository, "repository", "ghcr.io/peerdns", "image repository prefix: images are <repository>/<program>:<version>")
	fs.StringVar(&c.version, "version", "", "version: the image tag and org.opencontainers.image.version")
	fs.StringVar(&c.revision, "revision", "", "VCS revision (org.opencontainers.image.revision)")
	fs.StringVar(&c.source, "source", "https://github.com/peerdns/peerdns", "source repository URL (org.opencontainers.image.source)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.version == "" {
		fmt.Fprintln(stderr, "image: -version is required")
		return 2
	}
	for _, p := range strings.FieldsFunc(platforms, func(r rune) bool { return r == ',' || r == ' ' }) {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			fmt.Fprintf(stderr, "image: -platforms: %v\n", err)
			return 2
		}
		if pl.Architecture == "arm64" && pl.Variant == "" {
			pl.Variant = "v8"
		}
		c.platforms = append(c.platforms, *pl)
	}
	if err := build(c, stdout); err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	return 0
}

func build(c config, stdout io.Writer) error {
	created, err := ociimage.SourceDateEpoch()
	if err != nil {
		return err
	}
	base := append(ociimage.UserFiles(), ociimage.File{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: caBundle()})
	if err := os.RemoveAll(c.out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.out, "sbom"), 0o755); err != nil {
		return err
	}

	type built struct {
		ref    string
		index  v1.ImageIndex
		images []v1.Image // in c.platforms order
		sboms  [][]byte
	}
	var all []built
	for _, prog := range programs {
		meta := map[string]string{
			"org.opencontainers.image.title":         prog.name,
			"org.opencontainers.image.description":   prog.description,
			"org.opencontainers.image.source":        c.source,
			"org.opencontainers.image.url":           c.source,
			"org.opencontainers.image.documentation": c.source + "#readme",
			"org.opencontainers.image.revision":      c.revision,
			"org.opencontainers.image.version":       c.version,
			"org.opencontainers.image.licenses":      "Apache-2.0",
			"org.opencontainers.image.created":       created.Format(time.RFC3339),
		}
		b := built{ref: c.repository + "/" + prog.name + ":" + c.version}
		for _, pl := range c.platforms {
			path := filepath.Join(c.binDir, pl.OS+"_"+pl.Architecture, prog.name)
			bin, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("%s: %w (run make binaries first)", prog.name, err)
			}
			if err := checkBinary(path, bin, pl, c.revision); err != nil {
				return err
			}
			img, err := ociimage.Build(ociimage.Config{
				Platform:     pl,
				Layers:       [][]ociimage.File{base, {{Path: "/usr/local/bin/" + prog.name, Mode: 0o755, Data: bin}}},
				Entrypoint:   []string{"/usr/local/bin/" + prog.name},
				ExposedPorts: prog.ports,
				Labels:       meta,
				Annotations:  meta,
				Created:      created,
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", prog.name, pl.String(), err)
			}
			info, err := buildinfo.Read(bytes.NewReader(bin))
			if err != nil {
				return fmt.Errorf("%s: build info: %w", path, err)
			}
			sbom, err := spdx.Document(spdx.Binary{
				Name: prog.name, Version: c.version, License: "Apache-2.0", Supplier: "Organization: peerdns",
				Contents: bin, Info: info, NamespacePrefix: c.source + "/spdx", Created: created, Tool: "peerdns hack/image",
			})
			if err != nil {
				return err
			}
			b.images = append(b.images, img)
			b.sboms = append(b.sboms, sbom)
			if err := os.WriteFile(filepath.Join(c.out, "sbom", prog.name+"-"+pl.OS+"-"+pl.Architecture+".spdx.json"), sbom, 0o644); err != nil {
				return err
			}
		}
		if b.index, err = ociimage.NewIndex(b.images, meta); err != nil {
			return err
		}
		all = append(all, b)
	}

	layoutDir := filepath.Join(c.out, "oci")
	var tagged []ociimage.Tagged
	for _, b := range all {
		tagged = append(tagged, ociimage.Tagged{Ref: b.ref, Index: b.index})
	}
	p, err := ociimage.WriteLayout(layoutDir, tagged...)
	if err != nil {
		return err
	}
	var digests strings.Builder
	for _, b := range all {
		for i, img := range b.images {
			subject, err := ociimage.Descriptor(img)
			if err != nil {
				return err
			}
			if _, err := ociimage.AttachArtifact(p, subject, ociimage.Artifact{
				ArtifactType: spdx.MediaType,
				Data:         b.sboms[i],
				Annotations:  map[string]string{"org.opencontainers.image.created": created.Format(time.RFC3339)},
			}); err != nil {
				return err
			}
		}
		d, err := b.index.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(&digests, "%s@%s\n", b.ref, d)
	}
	if err := ociimage.WriteOCIArchive(filepath.Join(c.out, "images.oci.tar"), layoutDir, created); err != nil {
		return err
	}
	for i, pl := range c.platforms {
		var imgs []ociimage.Tagged
		for _, b := range all {
			imgs = append(imgs, ociimage.Tagged{Ref: b.ref, Image: b.images[i]})
		}
		if err := ociimage.WriteDockerArchive(filepath.Join(c.out, "images-"+pl.OS+"-"+pl.Architecture+".tar"), imgs...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(c.out, "digests.txt"), []byte(digests.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprint(stdout, digests.String())
	return nil
}

// checkBinary refuses a binary built with cgo or for another platform (the
// images have no C library, so a dynamically linked binary would not start),
// and one Go stamped with another VCS revision than the image is labelled
// with (a stale dist/bin).
func checkBinary(path string, bin []byte, pl v1.Platform, revision string) error {
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("%s: build info: %w", path, err)
	}
	want := map[string]string{"CGO_ENABLED": "0", "GOOS": pl.OS, "GOARCH": pl.Architecture, "-trimpath": "true"}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && revision != "" && s.Value != revision {
			return fmt.Errorf("%s: built from revision %s, want %s (run make binaries)", path, s.Value, revision)
		}
		if w, ok := want[s.Key]; ok {
			if s.Value != w {
				return fmt.Errorf("%s: built with %s=%s, want %s", path, s.Key, s.Value, w)
			}
			delete(want, s.Key)
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("%s: build info lacks %v", path, want)
	}
	return nil
}

// caBundle is the fallback roots as PEM, in the module's order.
func caBundle() []byte {
	var buf bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			panic(errors.New("encode a root: " + err.Error()))
		}
	}
	return buf.Bytes()
}
