package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNarrator checks what a person sees: numbered titles, a pause before
// every step but the first with --pause (and none once input ends), the
// command as typed with its real output, and a failed command's error.
func TestNarrator(t *testing.T) {
	var out strings.Builder
	n := &narrator{out: &out, total: 3, begin: time.Now(), pause: bufio.NewReader(strings.NewReader("\n"))}
	ctx := t.Context()
	for _, title := range []string{"first", "second", "third"} {
		if err := n.title(ctx, title); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.run(exec.CommandContext(ctx, "sh", "-c", "echo hello; echo world"), "say hello"); err != nil {
		t.Fatal(err)
	}
	_, err := n.run(exec.CommandContext(ctx, "sh", "-c", "printf oops; exit 3"), "fail")
	if err == nil || !strings.Contains(err.Error(), "fail: exit status 3") {
		t.Errorf("failed command: error %v, want one naming it and its exit status", err)
	}
	want := "\n== 1/3  first\n" +
		"\n[Enter: next step] \n== 2/3  second\n" +
		"\n[Enter: next step] \n== 3/3  third\n" + // input ended: carries on
		"\n$ say hello\nhello\nworld\n" +
		"\n$ fail\noops\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestPauseEndsWithContext checks a pause waiting for Enter gives way to
// Ctrl-C.
func TestPauseEndsWithContext(t *testing.T) {
	r, w := newPipe(t)
	defer w.Close()
	var out strings.Builder
	n := &narrator{out: &out, total: 2, begin: time.Now(), pause: bufio.NewReader(r)}
	ctx, cancel := context.WithCancel(t.Context())
	if err := n.title(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := n.title(ctx, "second"); !errors.Is(err, context.Canceled) {
		t.Errorf("title after cancel: %v, want context.Canceled", err)
	}
}

func TestShownArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "plain words, path shortened", args: []string{"/usr/bin/dig", "+short", "A", "web-0.nginx"}, want: "dig +short A web-0.nginx"},
		{name: "shell characters quoted", args: []string{"kubectl", "-o", "jsonpath={.data.Corefile}"}, want: "kubectl -o 'jsonpath={.data.Corefile}'"},
		{name: "single quote escaped", args: []string{"echo", "it's"}, want: `echo 'it'\''s'`},
		{name: "empty argument", args: []string{"echo", ""}, want: "echo ''"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shownArgs(tc.args); got != tc.want {
				t.Errorf("shownArgs(%q) = %s, want %s", tc.args, got, tc.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	got := wrap("one two three four  five", 9)
	if want := "one two\nthree\nfour five"; got != want {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}

// newPipe returns an os.Pipe closed when the test ends.
func newPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}
