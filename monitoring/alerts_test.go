// Package monitoring holds the Prometheus alerting rules shipped with
// peerdns and peeragent; its test checks them with the real promtool.
package monitoring

import (
	"os/exec"
	"testing"

	"github.com/peerdns/peerdns/internal/testtools"
)

func TestAlertRules(t *testing.T) {
	promtool := testtools.Path(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
