package spdx_test

import (
	"encoding/json"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/peerdns/peerdns/internal/spdx"
)

func testBinary(t *testing.T) spdx.Binary {
	t.Helper()
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/peerdns/peerdns/cmd/peerdns",
		Main:      debug.Module{Path: "github.com/peerdns/peerdns", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/miekg/dns", Version: "v1.1.73", Sum: "h1:abc="},
			{Path: "example.com/old", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/new", Version: "v1.0.1"}},
		},
		Settings: []debug.BuildSetting{{Key: "CGO_ENABLED", Value: "0"}, {Key: "vcs.revision", Value: "0123abcd"}},
	}
	return spdx.Binary{
		Name: "peerdns", Version: "v0.1.0", License: "Apache-2.0", Supplier: "Organization: peerdns",
		Contents: []byte("binary"), Info: info, NamespacePrefix: "https://github.com/peerdns/peerdns/spdx",
		Created: time.Unix(1700000000, 0), Tool: "peerdns-image",
	}
}

type doc struct {
	SPDXVersion       string
	DocumentNamespace string
	CreationInfo      struct{ Created string }
	Packages          []struct {
		Name, SPDXID, VersionInfo, LicenseDeclared, DownloadLocation string
		ExternalRefs                                                 []struct{ ReferenceLocator string }
	}
	Relationships []struct{ SpdxElementID, RelationshipType, RelatedSpdxElement string }
}

func TestDocument(t *testing.T) {
	raw, err := spdx.Document(testBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	t.Run("header", func(t *testing.T) {
		if d.SPDXVersion != "SPDX-2.3" || d.CreationInfo.Created != "2023-11-14T22:13:20Z" {
			t.Errorf("spdxVersion %q created %q", d.SPDXVersion, d.CreationInfo.Created)
		}
		want := "https://github.com/peerdns/peerdns/spdx/peerdns-v0.1.0-" + "9a3a45d01531a20e89ac6ae10b0b0beb0492acd7216a368aa062d1a5fecaf9cd"
		if d.DocumentNamespace != want {
			t.Errorf("namespace %q, want %q", d.DocumentNamespace, want)
		}
	})
	t.Run("packages", func(t *testing.T) {
		type p struct{ Name, Version, License, Purl, Download string }
		var got []p
		for _, pk := range d.Packages {
			got = append(got, p{pk.Name, pk.VersionInfo, pk.LicenseDeclared, pk.ExternalRefs[0].ReferenceLocator, pk.DownloadLocation})
		}
		want := []p{
			{"peerdns", "v0.1.0", "Apache-2.0", "pkg:golang/github.com/peerdns/peerdns@v0.1.0", "git+https://github.com/peerdns/peerdns@0123abcd"},
			{"stdlib", "go1.26.8", "BSD-3-Clause", "pkg:golang/stdlib@1.26.8", "https://go.dev/dl/"},
			{"github.com/miekg/dns", "v1.1.73", "NOASSERTION", "pkg:golang/github.com/miekg/dns@v1.1.73", "https://github.com/miekg/dns"},
			{"example.com/new", "v1.0.1", "NOASSERTION", "pkg:golang/example.com/new@v1.0.1", "https://example.com/new"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("packages (-want +got):\n%s", diff)
		}
	})
	t.Run("relationships", func(t *testing.T) {
		ids := map[string]bool{"SPDXRef-DOCUMENT": true}
		for _, pk := range d.Packages {
			if ids[pk.SPDXID] {
				t.Errorf("SPDXID %q used twice", pk.SPDXID)
			}
			ids[pk.SPDXID] = true
		}
		describes := 0
		for _, r := range d.Relationships {
			if !ids[r.SpdxElementID] || !ids[r.RelatedSpdxElement] {
				t.Errorf("relationship %v names an unknown element", r)
			}
			if r.RelationshipType == "DESCRIBES" {
				describes++
			}
		}
		if describes != 1 || len(d.Relationships) != len(d.Packages) {
			t.Errorf("%d DESCRIBES and %d relationships for %d packages; want 1 and one per package", describes, len(d.Relationships), len(d.Packages))
		}
	})
	t.Run("reproducible", func(t *testing.T) {
		again, err := spdx.Document(testBinary(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(raw) {
			t.Error("two documents of one binary differ")
		}
	})
}
