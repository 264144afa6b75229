package discovery

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileSizeRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    int
		wantErr bool
	}{
		{name: "a number", content: "5", want: 5},
		{name: "with white space", content: " 6\n", want: 6},
		{name: "zero", content: "0", want: 0},
		{name: "at the maximum", content: "64", want: 64},
		{name: "above the maximum", content: "65", wantErr: true},
		{name: "negative", content: "-1", wantErr: true},
		{name: "not a number", content: "five", wantErr: true},
		{name: "empty", content: "", wantErr: true},
		{name: "at the byte bound", content: strings.Repeat(" ", maxSizeFileBytes-1) + "7", want: 7},
		{name: "over the byte bound", content: strings.Repeat(" ", maxSizeFileBytes) + "7", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "replicas")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := (&fileSize{path: path, max: 64}).read()
			if tc.wantErr {
				if !errors.Is(err, ErrSize) {
					t.Fatalf("read() = %d, %v, want an ErrSize", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("read() = %d, %v, want %d", got, err, tc.want)
			}
		})
	}
}

// A file that goes missing or turns malformed keeps the last size: Run
// reports the error and no new target.
func TestFileSizeKeepsLastOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replicas")
	if err := os.WriteFile(path, []byte("5"), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := make(chan Target, 10)
	errs := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&fileSize{path: path, interval: 10 * time.Millisecond, max: 64}).Run(ctx,
			func(t Target) { targets <- t }, func(err error) { errs <- err })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	if got := <-targets; got.Replicas != 5 {
		t.Fatalf("first target %+v, want 5", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrSize) {
		t.Fatalf("missing file: %v, want an ErrSize", err)
	}
	if err := writeFileAtomic(path, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrSize) {
		t.Fatalf("malformed file: %v, want an ErrSize", err)
	}
	if err := writeFileAtomic(path, []byte("3")); err != nil {
		t.Fatal(err)
	}
	if got := <-targets; got.Replicas != 3 {
		t.Fatalf("target after the errors %+v, want 3", got)
	}
	select {
	case got := <-targets:
		t.Fatalf("unexpected target %+v", got)
	default:
	}
}
