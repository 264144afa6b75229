package charts_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderedArgsParse runs the programs built from this checkout with the
// arguments the charts render (and --version, which exits after parsing), so
// a flag renamed in cmd/ and not in a chart fails here rather than as a
// CrashLoopBackOff.
func TestRenderedArgsParse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/peerdns and cmd/peeragent; skipped with -short")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "./cmd/peerdns", "./cmd/peeragent")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// What the kubelet substitutes for $(VAR) from the downward API.
	expand := strings.NewReplacer("$(POD_NAME)", "web-0", "$(POD_IP)", "10.0.0.5", "$(POD_NAMESPACE)", releaseNamespace)
	run := func(t *testing.T, program string, args []string) {
		t.Helper()
		full := make([]string, 0, len(args)+1)
		for _, a := range args {
			full = append(full, expand.Replace(a))
		}
		full = append(full, "--version")
		out, err := exec.Command(filepath.Join(bin, program), full...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", program, strings.Join(full, " "), err, out)
		}
	}

	for name, values := range peerdnsValueSets {
		t.Run("peerdns "+name, func(t *testing.T) {
			run(t, "peerdns", peerdnsContainer(t, render(t, peerdnsChart, values)).Args)
		})
	}
	for name, values := range peeragentValueSets {
		t.Run("peeragent "+name, func(t *testing.T) {
			// The sidecar is rendered only inside the example.
			for _, sts := range render(t, peeragentChart, values).statefulSets {
				run(t, "peeragent", sts.Spec.Template.Spec.InitContainers[0].Args)
			}
		})
	}
}
