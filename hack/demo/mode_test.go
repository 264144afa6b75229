package main

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeHost is a host with everything the node needs, minus what a test
// takes away.
func fakeHost(euid int, missing ...string) host {
	return host{
		goos:     "linux",
		euid:     euid,
		toolsBin: "/tools",
		executable: func(path string) bool {
			return !slices.Contains(missing, filepath.Base(path)) && !slices.Contains(missing, path)
		},
		lookPath: func(name string) (string, error) {
			if slices.Contains(missing, name) {
				return "", errors.New("not found")
			}
			return "/usr/bin/" + name, nil
		},
	}
}

// TestChooseMode checks which mode each --mode value picks on hosts that
// can and cannot run a node, and that the kwok fallback says why.
func TestChooseMode(t *testing.T) {
	darwin := fakeHost(0)
	darwin.goos = "darwin"
	for _, tc := range []struct {
		name       string
		flag       string
		host       host
		wantMode   string
		wantReason string // substring; "" means none
		wantErr    string // substring; "" means no error
	}{
		{name: "auto on a capable host runs the node", flag: modeAuto, host: fakeHost(0), wantMode: modeNode},
		{name: "auto without root falls back to kwok", flag: modeAuto, host: fakeHost(1000), wantMode: modeKwok, wantReason: "needs root"},
		{name: "auto off Linux falls back to kwok", flag: modeAuto, host: darwin, wantMode: modeKwok, wantReason: "needs Linux"},
		{name: "auto without the kubelet falls back, naming it", flag: modeAuto, host: fakeHost(0, "kubelet", "coredns"), wantMode: modeKwok, wantReason: "kubelet, coredns not in /tools: run `make controlplane`"},
		{name: "auto without runc falls back, naming it", flag: modeAuto, host: fakeHost(0, "runc"), wantMode: modeKwok, wantReason: "runc missing"},
		{name: "auto without the CNI plugins falls back, naming them", flag: modeAuto, host: fakeHost(0, "/usr/lib/cni/bridge"), wantMode: modeKwok, wantReason: "/usr/lib/cni/bridge missing"},
		{name: "kwok forced on a capable host", flag: modeKwok, host: fakeHost(0), wantMode: modeKwok, wantReason: "asked for"},
		{name: "node forced on a capable host", flag: modeNode, host: fakeHost(0), wantMode: modeNode},
		{name: "node forced without root is an error", flag: modeNode, host: fakeHost(1000), wantErr: "cannot run a node here: a node needs root"},
		{name: "unknown mode is an error", flag: "kind", host: fakeHost(0), wantErr: "want auto, node or kwok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode, reason, err := chooseMode(tc.flag, tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("chooseMode(%q) error = %v, want one containing %q", tc.flag, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mode != tc.wantMode {
				t.Errorf("mode = %q, want %q", mode, tc.wantMode)
			}
			if tc.wantReason == "" && reason != "" || !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason = %q, want one containing %q", reason, tc.wantReason)
			}
		})
	}
}

// TestBadFlags checks that a wrong command line exits 2 before starting
// anything.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "unknown mode", args: []string{"-mode=kind"}},
		{name: "unknown flag", args: []string{"-replicas=3"}},
		{name: "stray argument", args: []string{"node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(tc.args, strings.NewReader(""), &out, &errOut); code != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", code, errOut.String())
			}
			if out.Len() != 0 {
				t.Errorf("printed to stdout:\n%s", out.String())
			}
		})
	}
}

// TestKwokWithoutPeerdns checks a failure before anything starts: exit 1,
// saying what is missing and how to get it.
func TestKwokWithoutPeerdns(t *testing.T) {
	var out, errOut strings.Builder
	code := run([]string{"-mode=kwok", "-peerdns=" + filepath.Join(t.TempDir(), "peerdns")}, strings.NewReader(""), &out, &errOut)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := "not found: run `make build` first"; !strings.Contains(errOut.String(), want) || !strings.Contains(out.String(), "The demo failed: ") {
		t.Errorf("stdout:\n%s\nstderr:\n%s\nwant the failure on both, stderr with %q", out.String(), errOut.String(), want)
	}
}
