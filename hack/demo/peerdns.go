package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// peerdns is the bin/peerdns child process.
type peerdns struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when it has exited
	waitErr error         // valid after done
	webURL  string
}

// startPeerdns runs path against kubeconfig, answering DNS on dnsAddr and
// serving telemetry on webAddr; its output goes to out.
func startPeerdns(path, kubeconfig, dnsAddr, webAddr string, out io.Writer) (*peerdns, error) {
	cmd := exec.Command(path,
		"--kubeconfig="+kubeconfig,
		"--dns.listen-address="+dnsAddr,
		"--web.listen-address="+webAddr,
		// Nothing balances traffic away from a demo: stop at once on Ctrl-C.
		"--dns.lame-duck=0s",
	)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &peerdns{cmd: cmd, done: make(chan struct{}), webURL: "http://" + webAddr}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
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
		case <-p.done:
			return fmt.Errorf("peerdns exited before it was ready: %v", p.waitErr) //nolint:errorlint // nil after a clean exit: %v prints <nil>, %w would print %!w(<nil>)
		case <-ctx.Done():
			return fmt.Errorf("peerdns not ready: %w", errors.Join(last, ctx.Err()))
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM to peerdns's process group, waits for the lame-duck
// period to pass, and kills the group if it is still there after grace.
func (p *peerdns) stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // anything it forked
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("peerdns did not stop within %v of SIGTERM; killed", grace)
}

// freeDNSPort returns a loopback port free for both UDP and TCP, since
// peerdns answers on both.
func freeDNSPort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a DNS port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("pick a DNS port: no port free for both UDP and TCP")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
