package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Signatures are made with GnuPG (gpg on $PATH, its keys in $GNUPGHOME),
// with the key -sign-key names:
//
//   - each chart package gets helm's provenance file <chart>.tgz.prov,
//     which `helm verify` (and so `helm install --verify`, `helm pull --verify`)
//     check against a public keyring;
//   - SHA256SUMS gets a detached armored signature SHA256SUMS.asc, which
//     `gpg --verify SHA256SUMS.asc SHA256SUMS` checks; SHA256SUMS covers
//     every other file of the release, the image archives and digests.txt
//     included.
//
// Signatures carry their signing time, so they are not reproducible; they
// are left out of SHA256SUMS, which stays so.

// provenance writes path+".prov": helm's provenance format, a clear-signed
// message of the package's Chart.yaml, a YAML document end marker, and the
// package's SHA-256 under `files:`. Workaround: `helm package --sign`
// signs the package it writes, and hack/release rewrites that package
// (reproducibleChart), which would invalidate the signature; helm has no
// command to sign an existing package.
func provenance(path, key string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	meta, err := packagedChartYAML(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sum := sha256.Sum256(raw)
	var msg bytes.Buffer
	msg.Write(bytes.TrimRight(meta, "\n"))
	// `...`, not `---`: a clear-signed text cannot hold a line starting
	// with a dash unescaped, so helm separates the documents with YAML's
	// document end marker.
	msg.WriteString("\n...\n")
	fmt.Fprintf(&msg, "files:\n  %s: sha256:%s\n", filepath.Base(path), hex.EncodeToString(sum[:]))
	if bytes.Contains(meta, []byte("\n...\n")) {
		return fmt.Errorf("%s: Chart.yaml holds a YAML document end marker", path)
	}
	return gpg(&msg, "--clearsign", "--digest-algo", "SHA512", "--local-user", key, "--output", path+".prov")
}

// packagedChartYAML returns <chart>/Chart.yaml from a chart package.
func packagedChartYAML(pkg []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(pkg))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no Chart.yaml")
		}
		if err != nil {
			return nil, err
		}
		if dir, name, ok := strings.Cut(h.Name, "/"); ok && dir != "" && name == "Chart.yaml" {
			return io.ReadAll(tr)
		}
	}
}

// signSums writes sums+".asc", a detached armored signature of the file.
func signSums(sums, key string) error {
	return gpg(nil, "--detach-sign", "--armor", "--local-user", key, "--output", sums+".asc", sums)
}

func gpg(stdin io.Reader, args ...string) error {
	cmd := exec.Command("gpg", append([]string{"--batch", "--yes"}, args...)...)
	cmd.Stdin = stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gpg %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
