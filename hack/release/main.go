// Command release is `make release` after `make image`: from the binaries
// `make binaries` cross-compiled and the images `make image` wrote, it
// assembles under -dist/release:
//
//	peerdns_<version>_<os>_<arch>.tar.gz   both binaries, LICENSE, README.md, CHANGELOG.md
//	images/                                the image archives, SBOMs and digests from -dist/image
//	charts/<chart>-<chart version>.tgz     `helm package` of charts/*, appVersion <version>
//	charts/<chart>-<chart version>.tgz.prov  with -sign-key: helm provenance (sign.go)
//	charts/index.yaml                      `helm repo index --url <-chart-url>`
//	RELEASE_NOTES.md                       the CHANGELOG.md section of <version>
//	SHA256SUMS                             sha256sum-format checksums of every file above
//	SHA256SUMS.asc                         with -sign-key: its detached gpg signature
//
// With -charts-only it packages and indexes the charts alone (into
// -dist/release/charts), which is what the chart repository test uses; with
// -check it only checks the versions.
//
// It first refuses a version that the repository contradicts (see
// checkVersions): the Makefile's RELEASE (-release), CHANGELOG.md, the
// charts' versions and the git tags must agree with -version.
//
// Everything is reproducible: the archives have sorted entries, every time
// stamp $SOURCE_DATE_EPOCH and no owner names; the charts are helm's
// packages with helm's packaging time replaced by $SOURCE_DATE_EPOCH, in the
// .tgz files and in index.yaml (see reproducibleChart and
// reproducibleIndex).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/peerdns/peerdns/internal/ociimage"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	dist       string
	version    string
	release    string // the Makefile's RELEASE
	check      bool
	platforms  []string
	helm       string
	chartURL   string
	chartsOnly bool
	signKey    string // gpg key to sign with; empty: no signatures
	repo       string // repository root: charts/, LICENSE, …
}

// programs are the binaries every archive holds.
var programs = []string{"peerdns", "peeragent"}

// docs are the repository files every archive holds.
var docs = []string{"LICENSE", "README.md", "CHANGELOG.md"}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var platforms string
	fs.StringVar(&c.dist, "dist", "dist", "directory with bin/ and image/; the release goes to <dist>/release, replaced")
	fs.StringVar(&c.version, "version", "", "version being built, e.g. v0.1.0 or v0.1.0-dev-gabc123456789")
	fs.StringVar(&c.release, "release", "", "the release being prepared (the Makefile's RELEASE), e.g. v0.1.0")
	fs.BoolVar(&c.check, "check", false, "only check that -version, -release, CHANGELOG.md, the charts and the tags agree")
	fs.StringVar(&platforms, "platforms", "linux/amd64 linux/arm64", "platforms of the archives, comma- or space-separated")
	fs.StringVar(&c.helm, "helm", "helm", "helm binary")
	fs.StringVar(&c.chartURL, "chart-url", "https://peerdns.github.io/peerdns/charts", "URL the chart repository is served from (index.yaml's URLs)")
	fs.BoolVar(&c.chartsOnly, "charts-only", false, "package and index the charts only")
	fs.StringVar(&c.signKey, "sign-key", "", "GnuPG key (user ID or fingerprint, in $GNUPGHOME) to sign the charts (<chart>.tgz.prov) and SHA256SUMS (SHA256SUMS.asc) with; empty: unsigned")
	fs.StringVar(&c.repo, "repo", ".", "repository root")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.platforms = strings.FieldsFunc(platforms, func(r rune) bool { return r == ',' || r == ' ' })
	if !semver.MatchString(c.version) {
		fmt.Fprintf(stderr, "release: -version %q: want vMAJOR.MINOR.PATCH[-prerelease]\n", c.version)
		return 2
	}
	f, err := readFacts(c.repo, c.release)
	if err == nil {
		err = checkVersions(f, c.version)
	}
	if err != nil {
		fmt.Fprintf(stderr, "release: refusing to build %s:\n%v\n", c.version, err)
		return 1
	}
	if c.check {
		fmt.Fprintf(stdout, "release: %s agrees with RELEASE, CHANGELOG.md, the charts and the tags\n", c.version)
		return 0
	}
	if err := release(c, stdout); err != nil {
		fmt.Fprintf(stderr, "release: %v\n", err)
		return 1
	}
	return 0
}

// semver matches the versions hack/version.sh prints (SemVer 2.0 with a v,
// without build metadata, which image tags cannot carry).
var semver = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// isRelease reports whether v is a release (no prerelease part).
func isRelease(v string) bool { return !strings.Contains(v, "-") }

func release(c config, stdout io.Writer) error {
	out := filepath.Join(c.dist, "release")
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	created, err := ociimage.SourceDateEpoch()
	if err != nil {
		return err
	}
	if err := packageCharts(c, filepath.Join(out, "charts"), created); err != nil {
		return err
	}
	if c.chartsOnly {
		return nil
	}
	for _, p := range c.platforms {
		osName, arch, ok := strings.Cut(p, "/")
		if !ok {
			return fmt.Errorf("platform %q: want os/arch", p)
		}
		if err := archive(c, out, osName, arch, created); err != nil {
			return err
		}
	}
	if err := copyTree(filepath.Join(c.dist, "image"), filepath.Join(out, "images"), func(rel string) bool {
		return !strings.HasPrefix(rel, "oci"+string(filepath.Separator)) && rel != "oci"
	}); err != nil {
		return fmt.Errorf("images (run make image first): %w", err)
	}
	notes, err := releaseNotes(filepath.Join(c.repo, "CHANGELOG.md"), c.version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "RELEASE_NOTES.md"), notes, 0o644); err != nil {
		return err
	}
	sums, err := checksums(out)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "SHA256SUMS"), sums, 0o644); err != nil {
		return err
	}
	if c.signKey != "" {
		if err := signSums(filepath.Join(out, "SHA256SUMS"), c.signKey); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "release %s in %s\n", c.version, out)
	return nil
}

// packageCharts runs helm package on every chart with the release's
// versions, then helm repo index, each output dated created. A release must
// find its version already in each Chart.yaml (appVersion v0.1.0, version
// 0.1.0, checked by checkVersions): what is tagged is what is packaged. A
// development version overrides both.
func packageCharts(c config, dir string, created time.Time) error {
	charts, err := filepath.Glob(filepath.Join(c.repo, "charts", "*", "Chart.yaml"))
	if err != nil {
		return fmt.Errorf("find charts: %w", err)
	}
	if len(charts) == 0 {
		return fmt.Errorf("no charts under %s/charts", c.repo)
	}
	slices.Sort(charts)
	chartVersion := strings.TrimPrefix(c.version, "v")
	for _, ch := range charts {
		cmd := exec.Command(c.helm, "package", filepath.Dir(ch), "--version", chartVersion, "--app-version", c.version, "--destination", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("helm package %s: %w\n%s", filepath.Dir(ch), err, out)
		}
	}
	packages, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil {
		return err
	}
	for _, p := range packages {
		if err := reproducibleChart(p, created); err != nil {
			return err
		}
		if c.signKey != "" {
			if err := provenance(p, c.signKey); err != nil {
				return err
			}
		}
	}
	// Indexed after the rewrite: index.yaml holds each package's digest.
	cmd := exec.Command(c.helm, "repo", "index", dir, "--url", c.chartURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm repo index: %w\n%s", err, out)
	}
	return reproducibleIndex(filepath.Join(dir, "index.yaml"), len(packages), created)
}

// reproducibleChart rewrites a package helm wrote with every tar entry dated
// created. Workaround: helm package (v3.22) dates each entry with the
// packaging time and has no option to do otherwise. Everything else is kept
// as helm wrote it: the entries and their order, names, modes and contents,
// and the gzip header's comment and extra field; the gzip header carries no
// time.
func reproducibleChart(path string, created time.Time) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Name, zw.Comment, zw.Extra, zw.OS = zr.Name, zr.Comment, zr.Extra, zr.OS
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		h.ModTime, h.AccessTime, h.ChangeTime = created.UTC(), time.Time{}, time.Time{}
		h.Format = tar.FormatUnknown // the writer picks the format from the fields
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close(), zr.Close()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// indexTimes are the lines helm repo index writes with the indexing time:
// `generated:` for the index, `created:` for each chart version.
var indexTimes = regexp.MustCompile(`(?m)^(generated|    created): "[^"]*"$`)

// reproducibleIndex rewrites index.yaml's times to created. Workaround: helm
// repo index (v3.22) stamps the current time and has no option to do
// otherwise. It checks that it replaced one time per chart version plus the
// index's own, and that the result still parses.
func reproducibleIndex(path string, versions int, created time.Time) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if n := len(indexTimes.FindAll(raw, -1)); n != versions+1 {
		return fmt.Errorf("%s: %d generated/created times, want %d: has helm's index format changed?", path, n, versions+1)
	}
	stamp := created.UTC().Format(time.RFC3339Nano)
	raw = indexTimes.ReplaceAll(raw, []byte(`$1: "`+stamp+`"`))
	var idx struct {
		Generated time.Time
		Entries   map[string][]struct{ Created time.Time }
	}
	if err := yaml.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("%s after setting its times: %w", path, err)
	}
	return os.WriteFile(path, raw, 0o644)
}

// archive writes <out>/peerdns_<version>_<os>_<arch>.tar.gz: a directory of
// the same name holding the binaries and docs, sorted, every entry owned by
// root and dated created.
func archive(c config, out, osName, arch string, created time.Time) error {
	name := fmt.Sprintf("peerdns_%s_%s_%s", c.version, osName, arch)
	type entry struct {
		name string
		mode int64
		path string
	}
	var entries []entry
	for _, p := range programs {
		entries = append(entries, entry{p, 0o755, filepath.Join(c.dist, "bin", osName+"_"+arch, p)})
	}
	for _, d := range docs {
		entries = append(entries, entry{d, 0o644, filepath.Join(c.repo, d)})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	created = created.UTC()
	if err := tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: created}); err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(e.path)
		if err != nil {
			return fmt.Errorf("archive %s: %w (run make binaries for %s/%s)", name, err, osName, arch)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(data)), ModTime: created}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, name+".tar.gz"), buf.Bytes(), 0o644)
}

// copyTree copies the regular files under src that keep accepts (by path
// relative to src) to dst.
func copyTree(src, dst string, keep func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if !keep(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

// releaseNotes returns the body of CHANGELOG.md's section "## [<version>]",
// headed "# <version>". A development version gets the [Unreleased]
// section's.
func releaseNotes(changelog, version string) ([]byte, error) {
	raw, err := os.ReadFile(changelog)
	if err != nil {
		return nil, err
	}
	section := "[" + version + "]"
	if !isRelease(version) {
		section = "[Unreleased]"
	}
	var body []string
	in := false
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = strings.HasPrefix(strings.TrimPrefix(line, "## "), section)
			continue
		}
		if in && !strings.HasPrefix(line, "[") {
			body = append(body, line)
		}
	}
	if !in && len(body) == 0 {
		return nil, fmt.Errorf("%s: no section %s", changelog, section)
	}
	text := strings.TrimSpace(strings.Join(body, ""))
	if text == "" && isRelease(version) {
		return nil, errors.New(changelog + ": section " + section + " is empty")
	}
	return []byte("# " + version + "\n\n" + text + "\n"), nil
}

// checksums returns `sha256sum` output for every file under dir but the
// signatures (.prov, .asc: not reproducible, and verified on their own), in
// path order (WalkDir's lexical order).
func checksums(dir string) ([]byte, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext == ".prov" || ext == ".asc" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+filepath.ToSlash(rel)+"\n")
		return nil
	})
	return []byte(strings.Join(lines, "")), err
}
