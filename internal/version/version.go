// Package version holds the build's version, set by the linker, and its
// Prometheus build_info collector.
package version

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the release, set with -ldflags "-X github.com/peerdns/peerdns/internal/version.Version=v1.2.3".
var Version = "dev"

// revision is the VCS revision, set by the linker (make build does), for
// builds where Go records none (-buildvcs=false, as some environments set).
var revision string

// Revision is the VCS revision the binary was built from: the linker's, else
// the one Go recorded, else "unknown".
func Revision() string {
	if revision != "" {
		return revision
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// NewCollector returns the <program>_build_info gauge, always 1, labelled with
// the version, revision and Go version.
func NewCollector(program string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: program + "_build_info",
		Help: "A metric with a constant '1' value labeled by version, revision and goversion from which " + program + " was built.",
		ConstLabels: prometheus.Labels{
			"version":   Version,
			"revision":  Revision(),
			"goversion": goVersion(),
		},
	})
	g.Set(1)
	return g
}

func goVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		return info.GoVersion
	}
	return "unknown"
}
