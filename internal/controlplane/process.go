package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peerdns/peerdns/internal/proc"
)

// errAddressInUse is wrapped by exitError when the process could not bind
// its port.
var errAddressInUse = errors.New("address already in use")

// exitError describes how p ended, with the end of its log.
func exitError(p *proc.Process) error {
	tail := p.Tail(30)
	err := fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.Name, p.Err(), p.LogPath, tail) //nolint:errorlint // nil after a clean exit: %v prints <nil>, %w would print %!w(<nil>)
	if strings.Contains(tail, errAddressInUse.Error()) {
		err = fmt.Errorf("%w: %w", errAddressInUse, err)
	}
	return err
}

// waitReady polls check every 100ms until it succeeds, the process exits,
// timeout passes or ctx ends. Errors name the process and carry the end of
// its log, since that is where the reason is.
func waitReady(ctx context.Context, p *proc.Process, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		last = check(attempt)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-p.Done():
			return exitError(p)
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for %s: %w", p.Name, ctx.Err())
			}
			return fmt.Errorf("%s not ready within %v: %w; last lines of %s:\n%s",
				p.Name, timeout, last, p.LogPath, p.Tail(30))
		case <-tick.C:
		}
	}
}
