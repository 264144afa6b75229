package resolver

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/peerdns/peerdns/internal/testtools"
)

// TestTCPEvictionSparesAQueryBeingRead: the connection chosen to make room
// may be reading a query whose first bytes have just arrived; that query is
// still answered.
func TestTCPEvictionSparesAQueryBeingRead(t *testing.T) {
	var idled atomic.Int64
	var armed atomic.Bool
	inRead, release := make(chan struct{}), make(chan struct{})
	s := startServerPrepared(t, ServerConfig{MaxTCPConnections: 1}, func(s *Server) {
		s.testHookIdle = func() { idled.Add(1) }
		s.testHookRead = func() {
			if armed.CompareAndSwap(true, false) {
				close(inRead)
				<-release
			}
		}
	})
	a := dialFrom(t, s, "127.0.0.2")
	if err := queryOn(a); err != nil {
		t.Fatal(err)
	}
	testtools.Eventually(t, "server marks the answered connection idle", 5*time.Second, func() error {
		if idled.Load() < 1 {
			return fmt.Errorf("not idle yet")
		}
		return nil
	})
	armed.Store(true)
	answered := make(chan error, 1)
	go func() { answered <- queryOn(a) }()
	<-inRead // the server has read the start of a's second query
	if err := queryOn(dialFrom(t, s, "127.0.0.3")); err != nil {
		t.Errorf("a new client at the cap: %v", err)
	}
	close(release)
	if err := <-answered; err != nil {
		t.Errorf("the query being read on the connection that made room: %v", err)
	}
}

// TestTCPPipelinedQueries: queries sent back to back in one segment, and
// one split across segments, are all answered, in order.
func TestTCPPipelinedQueries(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dialFrom(t, s, "127.0.0.2")
	var batch []byte
	const n = 50
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("web-%d.nginx.default.svc.cluster.local.", i%2), dns.TypeA)
		m.Id = uint16(1000 + i)
		q, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		batch = binary.BigEndian.AppendUint16(batch, uint16(len(q)))
		batch = append(batch, q...)
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// All but the last 5 bytes at once, the rest once 49 answers are
	// back, so the last query arrives in two reads.
	if _, err := c.Write(batch[:len(batch)-5]); err != nil {
		t.Fatal(err)
	}
	dc := &dns.Conn{Conn: c}
	for i := range n {
		if i == n-1 {
			if _, err := c.Write(batch[len(batch)-5:]); err != nil {
				t.Fatal(err)
			}
		}
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		want := []string{"10.1.0.1", "10.1.0.2"}[i%2]
		if r.Id != uint16(1000+i) || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
			t.Fatalf("answer %d: ID %d, %v; want ID %d, %s", i, r.Id, r.Answer, 1000+i, want)
		}
	}
}
