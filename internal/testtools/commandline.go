package testtools

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// CommandLine is one command line and what the binary must answer to it.
type CommandLine struct {
	Args   []string
	Code   int    // the exit code
	Stdout string // a substring of stdout
	// Stderr is the whole of stderr when it ends in a newline, else its
	// start; either way stderr must be at most one line.
	Stderr string
}

// CheckCommandLine calls run (a binary's run function: arguments, stdout,
// stderr, exit code) with c.Args and reports where the exit code or the
// output differ from c.
func CheckCommandLine(t *testing.T, run func(context.Context, []string, io.Writer, io.Writer) int, c CommandLine) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), c.Args, &stdout, &stderr); code != c.Code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.Code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), c.Stdout) {
		t.Errorf("stdout lacks %q:\n%s", c.Stdout, stdout.String())
	}
	got := stderr.String()
	if strings.HasSuffix(c.Stderr, "\n") && got != c.Stderr || !strings.HasPrefix(got, c.Stderr) || strings.Count(got, "\n") > 1 {
		t.Errorf("stderr:\n%s\nwant one line: %s", got, c.Stderr)
	}
}
