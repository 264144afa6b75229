// Package spdx writes a software bill of materials for a Go binary as an
// SPDX 2.3 JSON document, from the build information the Go linker embeds in
// every binary (debug/buildinfo): the main module, every module linked in
// with its version, the Go standard library, and the build settings.
//
// It lists what the linker recorded, nothing more: licenses of the
// dependencies are NOASSERTION (the build information does not carry them),
// and files are not analysed.
package spdx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// Binary describes the binary the document is about.
type Binary struct {
	// Name of the program, e.g. "peerdns".
	Name string
	// Version of the release, e.g. "v0.1.0"; it replaces the main module's
	// version, which a build from a checkout records as "(devel)" or a
	// pseudo-version.
	Version string
	// License of the main module as an SPDX expression, e.g. "Apache-2.0".
	License string
	// Supplier, e.g. "Organization: peerdns".
	Supplier string
	// Contents is the binary itself: its build information is read from it
	// and its SHA-256 recorded.
	Contents []byte
	// Info is the build information read from Contents (debug/buildinfo.Read).
	Info *debug.BuildInfo
	// NamespacePrefix makes the document namespace, a URI unique per
	// document: prefix/name-version-<sha256 of the binary>.
	NamespacePrefix string
	// Created is the document's creation time (SOURCE_DATE_EPOCH for a
	// reproducible document).
	Created time.Time
	// Tool names the generator in creationInfo.creators.
	Tool string
}

type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []pkg          `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type pkg struct {
	Name                  string        `json:"name"`
	SPDXID                string        `json:"SPDXID"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	Supplier              string        `json:"supplier,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	Checksums             []checksum    `json:"checksums,omitempty"`
	SourceInfo            string        `json:"sourceInfo,omitempty"`
	LicenseConcluded      string        `json:"licenseConcluded"`
	LicenseDeclared       string        `json:"licenseDeclared"`
	CopyrightText         string        `json:"copyrightText"`
	Comment               string        `json:"comment,omitempty"`
	ExternalRefs          []externalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
}

type checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type externalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// MediaType is the media type of the document, also the artifact type of
// an SBOM attached to an image.
const MediaType = "application/spdx+json"

// Document returns the SPDX 2.3 JSON document for b. The same Binary gives
// the same bytes.
func Document(b Binary) ([]byte, error) {
	if b.Info == nil {
		return nil, fmt.Errorf("spdx: no build information for %s", b.Name)
	}
	sum := sha256.Sum256(b.Contents)
	sumHex := hex.EncodeToString(sum[:])
	rootID := "SPDXRef-Package-" + sanitize(b.Name)

	var settings []string
	var revision string
	for _, s := range b.Info.Settings {
		settings = append(settings, s.Key+"="+s.Value)
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	root := pkg{
		Name:             b.Name,
		SPDXID:           rootID,
		VersionInfo:      b.Version,
		Supplier:         orNoAssertion(b.Supplier),
		DownloadLocation: downloadLocation(b.Info.Main.Path, revision),
		Checksums:        []checksum{{Algorithm: "SHA256", ChecksumValue: sumHex}},
		LicenseConcluded: orNoAssertion(b.License),
		LicenseDeclared:  orNoAssertion(b.License),
		CopyrightText:    noAssertion,
		Comment:          "Go binary of module " + b.Info.Main.Path + " (package " + b.Info.Path + "), built with " + strings.Join(settings, " "),
		ExternalRefs: []externalRef{{
			ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl",
			ReferenceLocator: purl(b.Info.Main.Path, b.Version),
		}},
		PrimaryPackagePurpose: "APPLICATION",
	}
	if revision != "" {
		root.SourceInfo = "built from revision " + revision
	}
	doc := document{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              b.Name + "-" + b.Version,
		DocumentNamespace: strings.TrimSuffix(b.NamespacePrefix, "/") + "/" + b.Name + "-" + b.Version + "-" + sumHex,
		CreationInfo: creationInfo{
			Created:  b.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + b.Tool},
		},
		Packages: []pkg{root},
		Relationships: []relationship{{
			SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: rootID,
		}},
	}
	goVersion := strings.TrimPrefix(b.Info.GoVersion, "go")
	stdID := "SPDXRef-Package-stdlib"
	doc.Packages = append(doc.Packages, pkg{
		Name:             "stdlib",
		SPDXID:           stdID,
		VersionInfo:      b.Info.GoVersion,
		Supplier:         "Organization: Google LLC",
		DownloadLocation: "https://go.dev/dl/",
		LicenseConcluded: noAssertion,
		LicenseDeclared:  "BSD-3-Clause",
		CopyrightText:    noAssertion,
		ExternalRefs: []externalRef{{
			ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl",
			ReferenceLocator: "pkg:golang/stdlib@" + goVersion,
		}},
	})
	doc.Relationships = append(doc.Relationships, relationship{rootID, "DEPENDS_ON", stdID})
	for _, d := range b.Info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		id := "SPDXRef-Package-" + sanitize(d.Path+"-"+d.Version)
		p := pkg{
			Name:             d.Path,
			SPDXID:           id,
			VersionInfo:      d.Version,
			Supplier:         noAssertion,
			DownloadLocation: downloadLocation(d.Path, ""),
			LicenseConcluded: noAssertion,
			LicenseDeclared:  noAssertion,
			CopyrightText:    noAssertion,
			ExternalRefs: []externalRef{{
				ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl",
				ReferenceLocator: purl(d.Path, d.Version),
			}},
		}
		if d.Sum != "" {
			p.Comment = "go.sum hash " + d.Sum
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, relationship{rootID, "DEPENDS_ON", id})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// purl is the package URL of a Go module (github.com/package-url/purl-spec,
// type golang): the module path as namespace/name, the version unescaped.
func purl(path, version string) string {
	if version == "" || version == "(devel)" {
		return "pkg:golang/" + path
	}
	return "pkg:golang/" + path + "@" + version
}

// downloadLocation is the module's go-get location, pinned to a revision
// when known (SPDX's VCS form git+https://host/path@revision).
func downloadLocation(path, revision string) string {
	if path == "" {
		return noAssertion
	}
	if revision != "" && strings.HasPrefix(path, "github.com/") {
		return "git+https://" + path + "@" + revision
	}
	return "https://" + path
}

func orNoAssertion(s string) string {
	if s == "" {
		return noAssertion
	}
	return s
}

// sanitize maps s to the characters an SPDX identifier allows: letters,
// digits, '.' and '-'.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}
