package resolver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// notifier tells the configured secondaries (TransferConfig.Notify) by
// NOTIFY (RFC 1996) that a zone's serial moved. Each secondary has one
// goroutine, so at most one NOTIFY is in flight to it; it tells every zone
// whose current serial the secondary has not acknowledged, at most once per
// NotifyInterval, so a burst of changes costs one NOTIFY per zone. An
// unacknowledged NOTIFY is retried after a wait that doubles from
// NotifyInterval up to NotifyMaxBackoff, until the secondary acknowledges
// the zone's serial of the moment: no change goes untold, and a change
// during the retries is told by the retry itself. Nothing is sent before
// the store has synced; the first round after start tells every zone.
type notifier struct {
	x    *Transfers
	wake []chan struct{} // per secondary: a change since it last looked
}

func newNotifier(x *Transfers) *notifier {
	n := &notifier{x: x, wake: make([]chan struct{}, len(x.cfg.Notify))}
	for i := range n.wake {
		n.wake[i] = make(chan struct{}, 1)
	}
	return n
}

// poke tells every secondary's goroutine that a serial moved. It never
// blocks: a pending wake-up already covers the change.
func (n *notifier) poke() {
	for _, c := range n.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Run sends NOTIFYs until ctx is done. Without secondaries it only waits.
// It polls the store's sync once a NotifyInterval until the first round.
func (x *Transfers) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, addr := range x.cfg.Notify {
		wg.Go(func() { x.notifier.serve(ctx, i, addr) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// serve is secondary i's goroutine.
func (n *notifier) serve(ctx context.Context, i int, addr string) {
	cfg := &n.x.cfg
	zones := n.x.h.zones
	acked := make([]uint32, len(zones))
	told := make([]bool, len(zones)) // acked holds an acknowledged serial
	backoff := cfg.NotifyInterval
	failing := false
	var last time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake[i]:
		case <-timer.C:
		}
		if !n.x.h.store.Synced() {
			timer.Reset(cfg.NotifyInterval)
			continue
		}
		if wait := time.Until(last.Add(cfg.NotifyInterval)); wait > 0 {
			timer.Reset(wait) // changes meanwhile are told together
			continue
		}
		st := n.x.h.store.snapshot()
		failed := false
		for zi := range zones {
			serial := st.serialOf(zi)
			if told[zi] && acked[zi] == serial {
				continue
			}
			last = time.Now()
			n.x.metrics.notify(addr, "sent")
			if err := n.send(ctx, addr, zi, serial); err != nil {
				n.x.metrics.notify(addr, "failed")
				failed = true
				if !failing {
					cfg.Logger.Warn("notify: no acknowledgement; retrying with backoff", "secondary", addr, "zone", zones[zi].name, "serial", serial, "err", err)
				}
				continue
			}
			n.x.metrics.notify(addr, "acked")
			acked[zi], told[zi] = serial, true
		}
		failing = failed
		if failed {
			timer.Reset(backoff)
			backoff = min(2*backoff, cfg.NotifyMaxBackoff)
		} else {
			backoff = cfg.NotifyInterval
		}
	}
}

// send sends one NOTIFY for zone zi at serial to addr and waits for its
// acknowledgement.
func (n *notifier) send(ctx context.Context, addr string, zi int, serial uint32) error {
	cfg := &n.x.cfg
	m := new(dns.Msg)
	m.SetNotify(n.x.h.zones[zi].name)
	m.Answer = []dns.RR{n.x.h.zoneSOA(zi, serial)} // RFC 1996 §3.7: the new SOA, a hint
	c := &dns.Client{Net: "udp", Timeout: cfg.NotifyTimeout}
	if k := cfg.Key; k != nil {
		c.TsigSecret = map[string]string{k.Name: k.Secret}
		m.SetTsig(k.Name, k.Algorithm, tsigFudge, time.Now().Unix())
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.NotifyTimeout)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, addr)
	switch {
	case err != nil:
		return err
	case r.Opcode != dns.OpcodeNotify || r.Rcode != dns.RcodeSuccess:
		return fmt.Errorf("answered %s %s", dns.OpcodeToString[r.Opcode], dns.RcodeToString[r.Rcode])
	}
	return nil
}
