package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/peerdns/peerdns/internal/proc"
)

// children tracks every process the bench starts (peerdns, CoreDNS, the
// references, peeragents), so that one deferred call stops them all
// whatever happened.
type children struct {
	mu   sync.Mutex
	list []*proc.Process
}

// start runs path with args, appending its output to logPath.
func (cs *children) start(name, path string, args []string, logPath string) (*proc.Process, error) {
	p, err := proc.Start(name, path, args, logPath)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	cs.list = append(cs.list, p)
	cs.mu.Unlock()
	return p, nil
}

// stopAll stops every child still running, the last started first.
func (cs *children) stopAll() error {
	cs.mu.Lock()
	list := append([]*proc.Process(nil), cs.list...)
	cs.mu.Unlock()
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		errs = append(errs, list[i].Stop(3*time.Second))
	}
	return errors.Join(errs...)
}

// exitedError reports that p, called name, exited while it should be
// running: how it ended (wrapped, so an *exec.ExitError can be inspected)
// and the last lines of its log.
func exitedError(name string, p *proc.Process) error {
	how := p.Err()
	if how == nil {
		how = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited: %w\n%s", name, how, p.Tail(20))
}
