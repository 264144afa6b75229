// Command demo is `make demo`: the seed's story told step by step for a
// person, each step a sentence on what happens and why it matters, the
// command a user would type, and that command's real output.
//
// Where this machine can run a real node (Linux, root, the node's tools
// from `make controlplane`) it starts one (internal/controlplane
// Options.Node: containerd, the kubelet, kube-proxy and CoreDNS as the
// cluster DNS), installs peerdns and the seed StatefulSet web with the
// peeragent sidecar by their charts, and follows the pods, the cluster DNS's
// stub zone and the agents' quorum through scaling and a deleted pod.
// Elsewhere it says why and falls back to the kwok mode: a control plane
// with kwok's fake node, where the seed's pods never run, and bin/peerdns on
// this machine answering for them. --mode forces either.
//
// It runs to the end unattended (--pause waits for Enter between steps)
// and stops everything it started, also on Ctrl-C or a failed step, which
// exits 1 with what went wrong. `make run` is the kwok mode with --hold:
// it stays up, printing commands to try, until Ctrl-C.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/peerdns/peerdns/internal/testtools"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

type config struct {
	mode     string // modeAuto, modeNode or modeKwok
	peerdns  string // path of the peerdns binary (kwok mode)
	toolsBin string
	logLevel slog.Level
	pause    bool // wait for Enter between steps
	hold     bool // kwok mode: stay up until Ctrl-C
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.mode, "mode", modeAuto, "auto: a real node where this machine can run one (Linux, root, `make controlplane`'s tools), else kwok; node; kwok.")
	fs.BoolVar(&cfg.pause, "pause", false, "Wait for Enter before each step (for presenters).")
	fs.BoolVar(&cfg.hold, "hold", false, "kwok mode: stay up after the last step, printing commands to try, until Ctrl-C (`make run`).")
	fs.StringVar(&cfg.peerdns, "peerdns", "bin/peerdns", "Path of the peerdns binary for the kwok mode (`make build` makes bin/peerdns).")
	fs.StringVar(&cfg.toolsBin, "tools-bin", "", "Directory of etcd, kube-apiserver, ... Empty: $PEERDNS_TOOLS_BIN, else .cache/bin in the repository (`make controlplane`).")
	fs.TextVar(&cfg.logLevel, "log.level", slog.LevelWarn, "Log level of the demo itself and the control plane: debug, info, warn, error.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if cfg.toolsBin == "" {
		bin, err := testtools.Bin()
		if err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return 1
		}
		cfg.toolsBin = bin
	}
	mode, reason, err := chooseMode(cfg.mode, thisHost(cfg.toolsBin))
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}

	// Ctrl-C reaches only this process and the commands it runs in the
	// foreground: the control plane, the node and peerdns run in process
	// groups of their own, so they are stopped here, in order. So are they
	// when the terminal goes (SIGHUP) or the reader of the output does
	// (SIGPIPE, as with `make demo | head`): without Notify, Go would die
	// of a write to a broken stdout with nothing cleaned up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer stop()
	n := &narrator{out: stdout, begin: time.Now()}
	fmt.Fprintln(stdout, runInfo(n.begin))
	if cfg.pause {
		n.pause = bufio.NewReader(stdin)
	}
	if mode == modeNode {
		_, err = nodeDemo(ctx, cfg, logger, n)
	} else {
		fmt.Fprintf(stdout, "Kwok mode (pods that never run; peerdns runs on this machine): %s.\n", reason)
		err = kwokDemo(ctx, cfg, logger, n, stderr)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintf(stdout, "\nInterrupted: %v\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(stdout, "\nThe demo failed: %v\n", err)
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

// runInfo is the demo's first line: when, from which commit, on what, so
// that a copy of the output says where it came from.
func runInfo(at time.Time) string {
	commit := "unknown commit"
	if out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output(); err == nil {
		commit = "commit " + strings.TrimSpace(string(out))
	}
	system := runtime.GOOS + "/" + runtime.GOARCH
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				system = strings.Trim(v, `"`) + ", " + system
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		system += ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("peerdns demo, %s, %s, on %s with %d CPUs", at.UTC().Format("2006-01-02 15:04 MST"), commit, system, runtime.NumCPU())
}
