package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Target is what a size source says the StatefulSet should be.
type Target struct {
	// Replicas is the target size (spec.replicas).
	Replicas int
	// Confirmed is true when the source also says that no pod with an
	// ordinal at or above Start+Replicas exists any more (the StatefulSet
	// controller has observed the change and deleted them): those
	// ordinals count as confirmed gone for a shrink.
	Confirmed bool
}

// SizeSource reports the target size as it changes.
type SizeSource interface {
	// Run calls update with the first target known and with every change,
	// until ctx is done; it never calls update on an error, so the agent
	// keeps the last target through an outage. update does not block.
	// Run reports errors through errs, which may be nil, and returns when
	// ctx is done.
	Run(ctx context.Context, update func(Target), errs func(error))
}

// ErrSize is wrapped by the errors a size source reports.
var ErrSize = errors.New("target size")

// fileSize reads the target size from a file: a decimal number, with
// surrounding white space, of at most max.
type fileSize struct {
	path     string
	interval time.Duration
	max      int
}

// maxSizeFileBytes bounds what is read of the file: a number and some
// white space.
const maxSizeFileBytes = 64

func (f *fileSize) read() (int, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrSize, err)
	}
	defer fh.Close()
	buf := make([]byte, maxSizeFileBytes+1)
	n, _ := fh.Read(buf)
	if n > maxSizeFileBytes {
		return 0, fmt.Errorf("%w: %s: longer than %d bytes", ErrSize, f.path, maxSizeFileBytes)
	}
	s := string(bytes.TrimSpace(buf[:n]))
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %s: %q is not a non-negative number", ErrSize, f.path, s)
	}
	if v > f.max {
		return 0, fmt.Errorf("%w: %s: %d exceeds the maximum of %d members", ErrSize, f.path, v, f.max)
	}
	return v, nil
}

// Run polls the file. Polling rather than watching the directory: it needs
// no inotify and survives the kubelet's symlink swap.
func (f *fileSize) Run(ctx context.Context, update func(Target), errs func(error)) {
	last, lastErr := -1, ""
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		v, err := f.read()
		switch {
		case err != nil:
			if err.Error() != lastErr && errs != nil {
				errs(err)
			}
			lastErr = err.Error()
		case v != last:
			lastErr = ""
			last = v
			update(Target{Replicas: v})
		default:
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
