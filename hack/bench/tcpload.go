package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// dnsperf 2.10 cannot read a TCP answer larger than its receive buffer:
// against the 1,000-endpoint SRV answer (about 52 KB) every query in flight
// is lost and it reports 0 queries/s for both servers. tcpLoad stands in
// for it there: the same shape (clients connections, perfOutstanding
// queries in flight in all, pipelined), the same query bytes, for the same
// duration.

// perfOutstanding is dnsperf's default -q: queries in flight in all.
const perfOutstanding = 100

// tcpLoad sends query (one DNS message) over conns TCP connections for d,
// keeping perfOutstanding queries in flight, and counts whole answers.
func tcpLoad(ctx context.Context, server netip.AddrPort, query []byte, conns int, d time.Duration, pid int) (perfResult, error) {
	res := perfResult{command: fmt.Sprintf("hack/bench tcpLoad: %d connections, %d queries in flight, %s", conns, perfOutstanding, d)}
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(query)))
	framed = append(framed, query...)
	var (
		completed, sent atomic.Int64
		respBytes       atomic.Int64
		wg              sync.WaitGroup
		errMu           sync.Mutex
		firstErr        error
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var cpu0 time.Duration
	if pid != 0 {
		var err error
		if cpu0, err = procCPU(pid); err != nil {
			return res, err
		}
	}
	start := time.Now()
	window := max(perfOutstanding/conns, 1)
	for range conns {
		c, err := net.Dial("tcp", server.String())
		if err != nil {
			return res, err
		}
		context.AfterFunc(ctx, func() { c.Close() })
		tokens := make(chan struct{}, window)
		wg.Go(func() { // writer
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if _, err := c.Write(framed); err != nil {
					return
				}
				sent.Add(1)
			}
		})
		wg.Go(func() { // reader
			buf := make([]byte, 65535)
			var prefix [2]byte
			for {
				if _, err := io.ReadFull(c, prefix[:]); err != nil {
					break
				}
				n := int(binary.BigEndian.Uint16(prefix[:]))
				if _, err := io.ReadFull(c, buf[:n]); err != nil {
					break
				}
				if ctx.Err() != nil {
					break // answered after the end of the run
				}
				completed.Add(1)
				respBytes.Add(int64(n))
				<-tokens
			}
			if ctx.Err() == nil {
				errMu.Lock()
				firstErr = fmt.Errorf("tcp load %s: connection closed early", server)
				errMu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	elapsed := min(time.Since(start), d)
	if pid != 0 {
		cpu1, err := procCPU(pid)
		if err != nil {
			return res, err
		}
		res.cpu = cpu1 - cpu0
	}
	if firstErr != nil {
		return res, firstErr
	}
	res.sent, res.completed = int(sent.Load()), int(completed.Load())
	res.qps = float64(res.completed) / elapsed.Seconds()
	res.reqSize = len(query)
	if res.completed > 0 {
		res.respSize = int(respBytes.Load() / int64(res.completed))
	}
	return res, nil
}
