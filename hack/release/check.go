package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// facts are what checkVersions compares: the repository's versions as its
// files and its git tags state them.
type facts struct {
	// release is the Makefile's RELEASE: the release being prepared.
	release string
	// tags are the repository's release tags (v*); headTags those on HEAD.
	tags, headTags []string
	// sections are CHANGELOG.md's `## [name] - date` headings, in order,
	// with the list items each holds.
	sections []section
	// charts maps each charts/<name>/Chart.yaml to its versions.
	charts map[string]chartVersions
}

type section struct {
	name, date string
	items      int
}

type chartVersions struct{ version, appVersion string }

// readFacts reads the facts of the repository at root.
func readFacts(root, release string) (facts, error) {
	f := facts{release: release, charts: map[string]chartVersions{}}
	var err error
	if f.tags, err = git(root, "tag", "--list", "v*"); err != nil {
		return f, err
	}
	if f.headTags, err = git(root, "tag", "--list", "v*", "--points-at", "HEAD"); err != nil {
		return f, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		return f, err
	}
	f.sections = changelogSections(string(raw))
	paths, err := filepath.Glob(filepath.Join(root, "charts", "*", "Chart.yaml"))
	if err != nil {
		return f, err
	}
	if len(paths) == 0 {
		return f, fmt.Errorf("no charts under %s/charts", root)
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return f, err
		}
		var meta struct{ Version, AppVersion string }
		if err := yaml.Unmarshal(raw, &meta); err != nil {
			return f, fmt.Errorf("%s: %w", p, err)
		}
		f.charts[filepath.Base(filepath.Dir(p))] = chartVersions{meta.Version, meta.AppVersion}
	}
	return f, nil
}

// git runs git in root and returns its output's lines.
func git(root string, args ...string) ([]string, error) {
	cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, exit.Stderr)
		}
		return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out)), nil
}

// heading matches a CHANGELOG.md section heading: `## [v0.1.0] - 2026-11-26`
// or `## [Unreleased]`.
var heading = regexp.MustCompile(`^## \[([^\]]+)\](?:\s+-\s+(\S+))?\s*$`)

// changelogSections returns the `## [name]` sections of a Keep a Changelog
// file, each with the number of list items ("- " lines) it holds.
func changelogSections(text string) []section {
	var out []section
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if m := heading.FindStringSubmatch(line); m != nil {
			out = append(out, section{name: m[1], date: m[2]})
			continue
		}
		if strings.HasPrefix(line, "## ") {
			out = append(out, section{name: strings.TrimPrefix(line, "## ")})
			continue
		}
		if len(out) > 0 && strings.HasPrefix(line, "- ") {
			out[len(out)-1].items++
		}
	}
	return out
}

var date = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// checkVersions returns what makes building version from the repository a
// lie, nil when nothing does:
//
//   - every CHANGELOG.md section but [Unreleased] is a release: dated, and
//     tagged (a version dated as released without a tag was not released);
//   - RELEASE is a release version vX.Y.Z, and every Chart.yaml has version
//     X.Y.Z and appVersion vX.Y.Z;
//   - a release build (version vX.Y.Z) is of RELEASE, from the commit
//     tagged with it, whose CHANGELOG.md section is the newest, dated and
//     not empty, and nothing is left under [Unreleased];
//   - a development build (version RELEASE-…) is of a RELEASE not yet
//     tagged: what it packages would otherwise go out under a chart version
//     already published with other contents.
func checkVersions(f facts, version string) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, s := range f.sections {
		switch {
		case s.name == "Unreleased":
		case !semver.MatchString(s.name):
			fail("CHANGELOG.md: section %q is neither [Unreleased] nor [vX.Y.Z] - YYYY-MM-DD", s.name)
		case !date.MatchString(s.date):
			fail("CHANGELOG.md: section [%s] has no date YYYY-MM-DD", s.name)
		case !slices.Contains(f.tags, s.name):
			fail("CHANGELOG.md: [%s] is dated %s as released, but there is no tag %s: move its entries to [Unreleased] or tag the release", s.name, s.date, s.name)
		}
	}
	if !semver.MatchString(f.release) || !isRelease(f.release) {
		fail("RELEASE %q is not a release version vX.Y.Z", f.release)
	}
	chartVersion := strings.TrimPrefix(f.release, "v")
	names := make([]string, 0, len(f.charts))
	for n := range f.charts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := f.charts[n]
		if c.version != chartVersion || c.appVersion != f.release {
			fail("charts/%s/Chart.yaml: version %q appVersion %q, want %q and %q (RELEASE %s)", n, c.version, c.appVersion, chartVersion, f.release, f.release)
		}
	}

	if isRelease(version) {
		if version != f.release {
			fail("release %s is not RELEASE %s", version, f.release)
		}
		if !slices.Contains(f.headTags, version) {
			fail("release %s: HEAD is not tagged %s (tags on HEAD: %q)", version, version, f.headTags)
		}
		var top *section
		for i := range f.sections {
			s := &f.sections[i]
			if s.name == "Unreleased" {
				if s.items > 0 {
					fail("CHANGELOG.md: %d entries under [Unreleased] would ship in %s without being listed for it: move them to [%s]", s.items, version, version)
				}
				continue
			}
			if top == nil {
				top = s
			}
		}
		switch {
		case top == nil || top.name != version:
			fail("CHANGELOG.md: the newest release section is not [%s]", version)
		case top.items == 0:
			fail("CHANGELOG.md: section [%s] lists nothing", version)
		}
	} else {
		if !strings.HasPrefix(version, f.release+"-") {
			fail("development version %s is not a pre-release of RELEASE %s", version, f.release)
		}
		if slices.Contains(f.tags, f.release) {
			fail("RELEASE %s is already tagged: bump RELEASE and the charts' version and appVersion (docs/release.md, step 6) so changes since then do not ship under the published %s", f.release, chartVersion)
		}
	}
	return errors.Join(errs...)
}
