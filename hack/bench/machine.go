package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// machine is what the numbers were measured on.
type machine struct {
	cores  int
	cpu    string
	kernel string
	memory string
}

func readMachine() machine {
	m := machine{cores: runtime.NumCPU(), cpu: "unknown", kernel: "unknown", memory: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb); err == nil {
					m.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	return m
}

// loadAverage is /proc/loadavg's 1-, 5- and 15-minute figures: other work
// on the machine shows there.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// versions of everything measured.
type versions struct {
	goVersion, peerdns, peerdnsDescribe, coredns, apiserver, etcd, dnsperf string
}

func (b *bench) readVersions(ctx context.Context) versions {
	get := func(name string, args ...string) string {
		out, err := runOutput(ctx, name, args...)
		if err != nil {
			return "unknown (" + err.Error() + ")"
		}
		return firstLine(out)
	}
	v := versions{goVersion: runtime.Version()}
	v.peerdns = get(b.cfg.peerdnsBin, "--version")
	v.peerdnsDescribe = get("git", "describe", "--tags", "--always", "--dirty")
	v.coredns = get(filepath.Join(b.cfg.toolsBin, "coredns"), "-version")
	v.apiserver = get(filepath.Join(b.cfg.toolsBin, "kube-apiserver"), "--version")
	v.etcd = get(filepath.Join(b.cfg.toolsBin, "etcd"), "--version")
	// dnsperf prints its version with -h, on stderr, and exits 1.
	out, _ := exec.CommandContext(ctx, "dnsperf", "-h").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Version") {
			v.dnsperf = strings.TrimSpace(strings.TrimPrefix(line, "Version"))
		}
	}
	return v
}

// runOutput runs a short command and returns its standard output.
func runOutput(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// runGoBench runs the resolver's Go benchmark of the request path.
func runGoBench(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkServeDNS|BenchmarkMixedEDNSSizes", "-benchmem", "-count", "1", "./resolver")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	return string(out), nil
}

// firstLine returns the first line of a program's --version output: a
// table cell holds one line.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
