package release_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// buildRelease builds hack/release, which `make release` and
// `make release-check` run, into a temporary directory.
func buildRelease(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "release")
	cmd := exec.Command("go", "build", "-o", bin, "./hack/release")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./hack/release: %v\n%s", err, out)
	}
	return bin
}

// fixtureRepo is a git repository holding what hack/release reads of a
// checkout: CHANGELOG.md and two charts' Chart.yaml.
type fixtureRepo struct {
	changelog     string
	version       string // both charts' version
	appVersion    string // both charts' appVersion
	tags          []string
	tagBeforeHead string // a tag on the commit before HEAD
}

func (f fixtureRepo) create(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gitIn := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "tag.gpgSign=false", "-c", "commit.gpgSign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn("init", "-q")
	write("README.md", "fixture\n")
	gitIn("add", ".")
	gitIn("commit", "-q", "-m", "first")
	if f.tagBeforeHead != "" {
		gitIn("tag", f.tagBeforeHead)
	}
	write("CHANGELOG.md", f.changelog)
	for _, c := range []string{"peerdns", "peeragent"} {
		write("charts/"+c+"/Chart.yaml", "apiVersion: v2\nname: "+c+"\nversion: "+f.version+"\nappVersion: \""+f.appVersion+"\"\n")
	}
	gitIn("add", ".")
	gitIn("commit", "-q", "-m", "second")
	for _, tag := range f.tags {
		gitIn("tag", tag)
	}
	return dir
}

const (
	unreleased = "# Changelog\n\n## [Unreleased]\n\n### Added\n\n- something new\n"
	released   = "# Changelog\n\n## [Unreleased]\n\n## [v0.2.0] - 2026-12-01\n\n### Added\n\n- something new\n\n## [v0.1.0] - 2026-11-01\n\n### Added\n\n- the first\n"
)

// TestReleaseCheck: `make release-check` (hack/release -check, which
// `make release` runs first) refuses every version the repository
// contradicts, saying why, and accepts the two honest cases.
func TestReleaseCheck(t *testing.T) {
	bin := buildRelease(t)
	tests := []struct {
		name             string
		repo             fixtureRepo
		version, release string
		want             string // in the refusal; empty: accepted
	}{
		{
			name:    "development build of an untagged release",
			repo:    fixtureRepo{changelog: "# Changelog\n\n## [Unreleased]\n\n- new\n\n## [v0.1.0] - 2026-11-01\n\n- the first\n", version: "0.2.0", appVersion: "v0.2.0", tagBeforeHead: "v0.1.0"},
			version: "v0.2.0-dev-gabc", release: "v0.2.0",
		},
		{
			name:    "release from its tag",
			repo:    fixtureRepo{changelog: released, version: "0.2.0", appVersion: "v0.2.0", tags: []string{"v0.2.0"}, tagBeforeHead: "v0.1.0"},
			version: "v0.2.0", release: "v0.2.0",
		},
		{
			name:    "a version dated as released without a tag",
			repo:    fixtureRepo{changelog: "# Changelog\n\n## [Unreleased]\n\n## [v0.1.0] - 2026-11-26\n\n- the first\n", version: "0.1.0", appVersion: "v0.1.0"},
			version: "v0.1.0-dev-gabc", release: "v0.1.0",
			want: "[v0.1.0] is dated 2026-11-26 as released, but there is no tag v0.1.0",
		},
		{
			name:    "development build of a published release",
			repo:    fixtureRepo{changelog: "# Changelog\n\n## [Unreleased]\n\n- a fix\n\n## [v0.1.0] - 2026-11-01\n\n- the first\n", version: "0.1.0", appVersion: "v0.1.0", tagBeforeHead: "v0.1.0"},
			version: "v0.1.0-dev-gabc", release: "v0.1.0",
			want: "RELEASE v0.1.0 is already tagged: bump RELEASE and the charts' version",
		},
		{
			name:    "release with entries left under Unreleased",
			repo:    fixtureRepo{changelog: strings.Replace(released, "## [Unreleased]\n", "## [Unreleased]\n\n- forgotten\n", 1), version: "0.2.0", appVersion: "v0.2.0", tags: []string{"v0.2.0"}, tagBeforeHead: "v0.1.0"},
			version: "v0.2.0", release: "v0.2.0",
			want: "1 entries under [Unreleased] would ship in v0.2.0",
		},
		{
			name:    "release whose charts disagree",
			repo:    fixtureRepo{changelog: released, version: "0.1.0", appVersion: "v0.2.0", tags: []string{"v0.2.0"}, tagBeforeHead: "v0.1.0"},
			version: "v0.2.0", release: "v0.2.0",
			want: `charts/peeragent/Chart.yaml: version "0.1.0" appVersion "v0.2.0", want "0.2.0" and "v0.2.0"`,
		},
		{
			name:    "release not tagged on HEAD",
			repo:    fixtureRepo{changelog: released, version: "0.2.0", appVersion: "v0.2.0", tagBeforeHead: "v0.2.0"},
			version: "v0.2.0", release: "v0.2.0",
			want: "release v0.2.0: HEAD is not tagged v0.2.0",
		},
		{
			name:    "release whose CHANGELOG section is missing",
			repo:    fixtureRepo{changelog: unreleased, version: "0.2.0", appVersion: "v0.2.0", tags: []string{"v0.2.0"}},
			version: "v0.2.0", release: "v0.2.0",
			want: "the newest release section is not [v0.2.0]",
		},
		{
			name:    "release other than RELEASE",
			repo:    fixtureRepo{changelog: released, version: "0.2.0", appVersion: "v0.2.0", tags: []string{"v0.2.0", "v0.3.0"}},
			version: "v0.3.0", release: "v0.2.0",
			want: "release v0.3.0 is not RELEASE v0.2.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.repo.create(t)
			out, err := exec.Command(bin, "-check", "-repo", dir, "-version", tt.version, "-release", tt.release).CombinedOutput()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want a refusal mentioning %q:\n%s", tt.want, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("refusal does not mention %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestReleaseCheckOfThisCheckout: what this checkout builds passes the check
// `make release` starts with.
func TestReleaseCheckOfThisCheckout(t *testing.T) {
	root := repoRoot(t)
	release := makefileRelease(t, root)
	v, err := exec.Command(filepath.Join(root, "hack", "version.sh"), release).Output()
	if err != nil {
		t.Fatalf("hack/version.sh: %v", err)
	}
	out, err := exec.Command(buildRelease(t), "-check", "-repo", root, "-version", strings.TrimSpace(string(v)), "-release", release).CombinedOutput()
	if err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}

// imageLine matches a YAML `image:` line in a document's examples.
var imageLine = regexp.MustCompile(`(?m)^\s*-?\s*image:\s*"?([^"\s#]+)`)

// TestExampleImagesExist: every example in the README, the docs and the
// charts' READMEs that runs peerdns or peeragent names an image a release
// publishes: ghcr.io/peerdns/<program> at a release tag, or, before the
// first tag, at the RELEASE being prepared. `peeragent:latest` is never
// published.
func TestExampleImagesExist(t *testing.T) {
	root := repoRoot(t)
	release := makefileRelease(t, root)
	out, err := exec.Command("git", "-C", root, "tag", "--list", "v*").Output()
	if err != nil {
		t.Fatalf("git tag: %v", err)
	}
	published := strings.Fields(string(out))
	if len(published) == 0 {
		published = []string{release}
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "charts", "peerdns", "README.md"), filepath.Join(root, "charts", "peeragent", "README.md"))
	for _, doc := range docs {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imageLine.FindAllStringSubmatch(string(raw), -1) {
			ref := m[1]
			if !strings.Contains(ref, "peerdns") && !strings.Contains(ref, "peeragent") {
				continue
			}
			repo, tag, _ := strings.Cut(ref, ":")
			if (repo != "ghcr.io/peerdns/peerdns" && repo != "ghcr.io/peerdns/peeragent") || !slices.Contains(published, tag) {
				t.Errorf("%s: image %s is not ghcr.io/peerdns/{peerdns,peeragent} at one of %q", doc, ref, published)
			}
		}
	}
}
