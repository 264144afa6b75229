package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/peerdns/peerdns/internal/proc"
)

// peerdns is the bin/peerdns child process.
type peerdns struct {
	*proc.Process
	webURL string
}

// startPeerdns runs path against kubeconfig, answering DNS on dnsAddr and
// serving telemetry on webAddr; its output goes to logPath, or to out when
// logPath is empty.
func startPeerdns(path, kubeconfig, dnsAddr, webAddr, logPath string, out io.Writer) (*peerdns, error) {
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--dns.listen-address=" + dnsAddr,
		"--web.listen-address=" + webAddr,
		// Nothing balances traffic away from a demo: stop at once on Ctrl-C.
		"--dns.lame-duck=0s",
	}
	var p *proc.Process
	var err error
	if logPath != "" {
		p, err = proc.Start("peerdns", path, args, logPath)
	} else {
		p, err = proc.StartTo("peerdns", path, args, out)
	}
	if err != nil {
		return nil, err
	}
	return &peerdns{Process: p, webURL: "http://" + webAddr}, nil
}

// waitReady polls /readyz, which peerdns passes once its informers have
// synced, until it answers 200.
func (p *peerdns) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.webURL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz: %s", resp.Status)
		}
		last = err
		select {
		case <-p.Done():
			return fmt.Errorf("peerdns exited before it was ready: %v", p.Err()) //nolint:errorlint // nil after a clean exit: %v prints <nil>, %w would print %!w(<nil>)
		case <-ctx.Done():
			return fmt.Errorf("peerdns not ready: %w", errors.Join(last, ctx.Err()))
		case <-tick.C:
		}
	}
}
