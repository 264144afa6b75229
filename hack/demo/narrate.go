package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// narrator prints the demo for a person: each step's title and why it
// matters, each command as a user would type it, and the command's real
// output.
type narrator struct {
	out   io.Writer
	total int // steps in the demo, for "3/9"
	step  int
	begin time.Time
	// pause, when set, is read for a line (Enter) before each step after
	// the first: --pause, for presenters.
	pause *bufio.Reader
}

// width is where sentences are wrapped.
const width = 100

// title starts the next step.
func (n *narrator) title(ctx context.Context, title string) error {
	n.step++
	if n.pause != nil && n.step > 1 {
		fmt.Fprint(n.out, "\n[Enter: next step] ")
		if err := readLine(ctx, n.pause); err != nil {
			return err
		}
	}
	fmt.Fprintf(n.out, "\n== %d/%d  %s\n", n.step, n.total, title)
	return nil
}

// readLine reads one line from r, or returns when ctx is done.
func readLine(ctx context.Context, r *bufio.Reader) error {
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadString('\n')
		done <- err
	}()
	select {
	case err := <-done:
		if errors.Is(err, io.EOF) {
			return nil // no more input: carry on unattended
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// say prints a paragraph, wrapped.
func (n *narrator) say(format string, args ...any) {
	fmt.Fprintln(n.out)
	fmt.Fprintln(n.out, wrap(fmt.Sprintf(format, args...), width))
}

// note prints a line of the demo's own observation, marked so it is not
// mistaken for a command's output.
func (n *narrator) note(format string, args ...any) {
	fmt.Fprintf(n.out, "  [%5.1fs] %s\n", time.Since(n.begin).Seconds(), fmt.Sprintf(format, args...))
}

// run prints shown (the command as a user types it), runs cmd and prints
// its combined output as it is. It returns the output; a command that
// fails is an error carrying its output.
func (n *narrator) run(cmd *exec.Cmd, shown string) (string, error) {
	fmt.Fprintf(n.out, "\n$ %s\n", shown)
	out, err := cmd.CombinedOutput()
	fmt.Fprint(n.out, string(out))
	if len(out) > 0 && out[len(out)-1] != '\n' {
		fmt.Fprintln(n.out)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", shown, err)
	}
	return string(out), nil
}

// shownArgs is a command line as a user would type it: the program's base
// name, and arguments quoted where a shell needs it.
func shownArgs(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if i == 0 {
			a = filepath.Base(a)
		}
		parts[i] = shellQuote(a)
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// wait polls check every quarter second until it returns nil, ctx ends or
// limit passes, as testtools.Eventually does for the tests. Every 5 s of
// waiting it prints what it waits for and check's latest error, so a
// person sees progress; on timeout the error carries it.
func (n *narrator) wait(ctx context.Context, what string, limit time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	lastPrint := start
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		if time.Since(lastPrint) >= 5*time.Second {
			n.note("waiting %s for %s: %v", time.Since(start).Round(time.Second), what, last)
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: not within %v; last seen: %w", what, limit, last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ticking prints a progress line every 10 s until the returned function is
// called: for long calls that report nothing themselves.
func (n *narrator) ticking(what string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n.note("%s: %s so far", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// wrap breaks s into lines of at most w columns at spaces.
func wrap(s string, w int) string {
	var b strings.Builder
	col := 0
	for _, word := range strings.Fields(s) {
		if col > 0 && col+1+len(word) > w {
			b.WriteByte('\n')
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
