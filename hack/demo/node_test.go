package main

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

// TestNodeDemo runs `make demo` on a real node to the end, unattended, and
// checks every step was told, the demo succeeded, and nothing of the node
// is left. Gated as test/node is: PEERDNS_E2E_NODE=1 and root.
func TestNodeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real node; skipped with -short")
	}
	if os.Getenv("PEERDNS_E2E_NODE") != "1" {
		t.Skip("runs a real node: set PEERDNS_E2E_NODE=1 (make e2e)")
	}
	bin := toolsBin(t)
	if why := thisHost(bin).nodeUnsupported(); why != "" {
		testtools.Missing(t, "cannot run a node here: %s", why)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	var out, logs syncBuffer
	n := &narrator{out: &out, begin: time.Now()}
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	trace, err := nodeDemo(ctx, config{mode: modeNode, toolsBin: bin}, logger, n)
	printed := out.String()
	if err != nil {
		t.Fatalf("demo: %v\noutput:\n%s\nlogs:\n%s", err, printed, logs.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^== 10/10  Stop everything$`),
		regexp.MustCompile(`(?m)^\$ helm install seed \./seed `),
		regexp.MustCompile(`(?m)^_web\._tcp\.nginx\.default\.svc\.peers\.internal\.\s+\d+\s+IN\s+SRV\s+0 \d+ 80 web-0\.nginx\.default\.svc\.peers\.internal\.$`),
		regexp.MustCompile(`web-1 created`),
		regexp.MustCompile(`(?m)^peeragent_has_quorum 1$`),
		regexp.MustCompile(`Nothing is left`),
	} {
		if !want.MatchString(printed) {
			t.Errorf("output lacks %s:\n%s", want, printed)
		}
	}
	// nodeDemo checked this before returning; check it again from here.
	if left := leftovers(trace); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if trace.node.Link == "" || trace.dir == "" || len(trace.containers) == 0 {
		t.Errorf("trace %+v: the demo did not record what to check", trace)
	}
}
