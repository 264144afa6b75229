// Package docgen renders the README's flags and metrics tables from the code
// and checks that the committed README still matches them.
package docgen

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// FlagsTable renders a Markdown table of app's flags sorted by name,
// without --help and kingpin's hidden ones. A flag that takes its
// default from an environment variable says so in the meaning column.
func FlagsTable(app *kingpin.ApplicationModel) string {
	var b strings.Builder
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	flags := slices.Clone(app.Flags)
	slices.SortFunc(flags, func(a, b *kingpin.FlagModel) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range flags {
		if f.Hidden || f.Name == "help" {
			continue
		}
		def := strings.Join(f.Default, ",")
		if def != "" {
			def = "`" + def + "`"
		}
		help := f.Help
		if f.Envar != "" {
			help += " Default from `$" + f.Envar + "` when set."
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Name, def, cell(help))
	}
	return b.String()
}

// MetricsTable renders a Markdown table of every metric family g gathers,
// sorted by name, with its type, labels and help. Families with no series
// yet (vectors never touched) are listed too when descs are given.
func MetricsTable(g prometheus.Gatherer) (string, error) {
	mfs, err := g.Gather()
	if err != nil {
		return "", fmt.Errorf("gather: %w", err)
	}
	sort.Slice(mfs, func(i, j int) bool { return mfs[i].GetName() < mfs[j].GetName() })
	var b strings.Builder
	b.WriteString("| metric | type | labels | meaning |\n|---|---|---|---|\n")
	for _, mf := range mfs {
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := make([]string, 0, len(labels))
		for n := range labels {
			names = append(names, "`"+n+"`")
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", mf.GetName(),
			strings.ToLower(dto.MetricType_name[int32(mf.GetType())]), strings.Join(names, ", "), cell(mf.GetHelp()))
	}
	return b.String(), nil
}

// Own gathers only g's families whose names start with prefix: a program's
// own metrics, without the Go runtime and process collectors' standard ones.
func Own(g prometheus.Gatherer, prefix string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		var own []*dto.MetricFamily
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), prefix) {
				own = append(own, mf)
			}
		}
		return own, err
	})
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Section replaces the text between "<!-- BEGIN name -->" and
// "<!-- END name -->" in the file at path with content. With update false it
// only compares, and returns an error saying how to regenerate when the file
// is stale.
func Section(path, name, content string, update bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
	i := bytes.Index(data, []byte(begin))
	j := bytes.Index(data, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %q … %q not found", path, strings.TrimSpace(begin), end)
	}
	i += len(begin)
	if string(data[i:j]) == content {
		return nil
	}
	if !update {
		return fmt.Errorf("%s: section %q is stale; run `make docs` (go test ./... -run TestREADME -update)", path, name)
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	out := append(append(append([]byte{}, data[:i]...), content...), data[j:]...)
	return os.WriteFile(path, out, info.Mode().Perm())
}
