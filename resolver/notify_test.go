package resolver

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peerdns/peerdns/internal/testtools"
)

// fakeSecondary records the NOTIFYs it receives on loopback UDP; it leaves
// the first drop of them unanswered.
type fakeSecondary struct {
	addr     string
	drop     int
	mu       sync.Mutex
	got      []uint32 // serials of cluster.local. NOTIFYs, answered or not
	acked    uint32
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func startSecondary(t *testing.T, drop int) *fakeSecondary {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSecondary{addr: pc.LocalAddr().String(), drop: drop}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		// In flight from arrival until the reply is written (the count
		// drops just before, as the sender sees the reply only after).
		n := fs.inFlight.Add(1)
		for old := fs.maxIn.Load(); n > old && !fs.maxIn.CompareAndSwap(old, n); old = fs.maxIn.Load() {
		}
		if m.Opcode != dns.OpcodeNotify || m.Question[0].Name != "cluster.local." {
			fs.inFlight.Add(-1)
			_ = w.WriteMsg(new(dns.Msg).SetReply(m))
			return
		}
		serial := m.Answer[0].(*dns.SOA).Serial
		fs.mu.Lock()
		fs.got = append(fs.got, serial)
		answer := len(fs.got) > fs.drop
		if answer {
			fs.acked = serial
		}
		fs.mu.Unlock()
		fs.inFlight.Add(-1)
		if answer {
			_ = w.WriteMsg(new(dns.Msg).SetReply(m))
		}
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return fs
}

func (fs *fakeSecondary) state() (received int, acked uint32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.got), fs.acked
}

func runNotifier(t *testing.T, f *xfrFixture) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// ackedSerial waits until fs acknowledged cluster.local.'s current serial.
func ackedSerial(t *testing.T, f *xfrFixture, fs *fakeSecondary) {
	t.Helper()
	testtools.Eventually(t, "the secondary is told the current serial", 10*time.Second, func() error {
		want := f.h.store.snapshot().serialOf(0)
		if _, acked := fs.state(); acked != want {
			return fmt.Errorf("acknowledged serial %d, current %d", acked, want)
		}
		return nil
	})
}

func TestNotifyCoalesces(t *testing.T) {
	fs := startSecondary(t, 0)
	f := newXfrFixture(t, func(c *TransferConfig) {
		c.Notify = []string{fs.addr}
		c.NotifyInterval = 200 * time.Millisecond
	})
	runNotifier(t, f)
	ackedSerial(t, f, fs)
	before, _ := fs.state()
	for n := range 50 {
		f.h.store.Upsert(numbered("burst", n%7+1))
	}
	ackedSerial(t, f, fs)
	after, _ := fs.state()
	// The burst takes far less than the interval: one NOTIFY, or two when
	// the interval elapses in the middle of it.
	if sent := after - before; sent > 3 {
		t.Errorf("%d NOTIFYs for a burst of 50 changes", sent)
	}
	if m := fs.maxIn.Load(); m > 1 {
		t.Errorf("%d NOTIFYs in flight at once", m)
	}
}

func TestNotifyRetriedUntilAcked(t *testing.T) {
	fs := startSecondary(t, 3)
	f := newXfrFixture(t, func(c *TransferConfig) {
		c.Notify = []string{fs.addr}
		c.NotifyInterval = 20 * time.Millisecond
		c.NotifyTimeout = 50 * time.Millisecond
		c.NotifyMaxBackoff = 100 * time.Millisecond
	})
	runNotifier(t, f)
	ackedSerial(t, f, fs)
	if failed := testutil.ToFloat64(f.x.metrics.notifies.WithLabelValues(fs.addr, "failed")); failed < 3 {
		t.Errorf("%v NOTIFYs counted failed; the secondary left 3 unanswered", failed)
	}
	if acked := testutil.ToFloat64(f.x.metrics.notifies.WithLabelValues(fs.addr, "acked")); acked < 1 {
		t.Errorf("%v NOTIFYs counted acked", acked)
	}
}
