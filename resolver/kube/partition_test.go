package kube

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// partition is an http.RoundTripper between the Watcher and the API server
// that the test can cut and heal, and that reports what went through it.
//
// Cut ends the open watch streams as a clean end of stream, the way an API
// server ends a watch, so the reflector asks again from the resource
// version it has; that request, and every other, waits until Heal. A test
// can so keep the Watcher on an old resource version while the cluster
// moves on.
type partition struct {
	next http.RoundTripper

	mu      sync.Mutex
	healed  chan struct{} // nil while connected; closed by Heal
	streams map[*watchStream]struct{}
	log     []request // every request sent on, with its response status
	failed  int       // requests that got no response (API server down)
	changed chan struct{}
}

// request is one request that went through a partition.
type request struct {
	watch   bool // a watch, not a list
	initial bool // a watch that starts with the current state (sendInitialEvents)
	status  int  // HTTP status; 0 when the request failed
	// expired is set when a watch stream carried an expiry error (410
	// Gone, "too old resource version"), which the API server sends as an
	// event after a 200 status.
	expired bool
}

// relist reports whether r reads the whole state: a list, or a streaming
// watch-list.
func (r request) relist() bool { return !r.watch || r.initial }

func newPartition() *partition {
	return &partition{streams: map[*watchStream]struct{}{}, changed: make(chan struct{}, 1)}
}

// wrap is for rest.Config.Wrap.
func (p *partition) wrap(rt http.RoundTripper) http.RoundTripper {
	p.next = rt
	return p
}

func (p *partition) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	healed := p.healed
	p.mu.Unlock()
	if healed != nil {
		select {
		case <-healed:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	q := req.URL.Query()
	r := request{watch: q.Get("watch") == "true" || q.Get("watch") == "1", initial: q.Get("sendInitialEvents") == "true"}
	resp, err := p.next.RoundTrip(req)
	if err != nil {
		p.record(r, true)
		return nil, err
	}
	r.status = resp.StatusCode
	i := p.record(r, false)
	if r.watch && resp.StatusCode == http.StatusOK {
		s := &watchStream{body: resp.Body, p: p, i: i}
		p.mu.Lock()
		p.streams[s] = struct{}{}
		p.mu.Unlock()
		resp.Body = s
	}
	return resp, nil
}

// record logs r and returns its index in the log.
func (p *partition) record(r request, failed bool) int {
	p.mu.Lock()
	p.log = append(p.log, r)
	i := len(p.log) - 1
	if failed {
		p.failed++
	}
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return i
}

// Cut ends the open watches and holds every new request until Heal.
func (p *partition) Cut() {
	p.mu.Lock()
	p.healed = make(chan struct{})
	streams := p.streams
	p.streams = map[*watchStream]struct{}{}
	p.mu.Unlock()
	for s := range streams {
		s.end()
	}
}

// Heal lets the held requests and all later ones through.
func (p *partition) Heal() {
	p.mu.Lock()
	if p.healed != nil {
		close(p.healed)
		p.healed = nil
	}
	p.mu.Unlock()
}

// requests returns the requests sent since the first n.
func (p *partition) requests(n int) []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.log[n:]...)
}

func (p *partition) requestCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.log)
}

func (p *partition) failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// watchStream is a watch response body that Cut can end cleanly, and that
// notes an expiry error in its request's log entry.
type watchStream struct {
	body io.ReadCloser
	p    *partition
	i    int // index of the request in p.log

	mu    sync.Mutex
	ended bool
	tail  []byte // the end of what was read, to find a marker split across reads
}

// expiredMarker is in the message of both expiry errors: the watch cache's
// "too old resource version" and etcd's compaction error. Strings are kept
// as they are in JSON and in protobuf alike.
var expiredMarker = []byte("too old")

func (s *watchStream) Read(b []byte) (int, error) {
	n, err := s.body.Read(b)
	s.mu.Lock()
	ended := s.ended
	s.tail = append(s.tail, b[:n]...)
	found := bytes.Contains(s.tail, expiredMarker)
	if keep := len(expiredMarker) - 1; len(s.tail) > keep {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-keep:]...)
	}
	s.mu.Unlock()
	if found {
		s.p.mu.Lock()
		s.p.log[s.i].expired = true
		s.p.mu.Unlock()
	}
	if ended {
		return 0, io.EOF
	}
	return n, err
}

func (s *watchStream) Close() error {
	s.p.mu.Lock()
	delete(s.p.streams, s)
	s.p.mu.Unlock()
	err := s.body.Close()
	if errors.Is(err, http.ErrBodyReadAfterClose) {
		return nil
	}
	return err
}

// end makes the stream end as if the server had closed it.
func (s *watchStream) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.body.Close() // unblocks a pending Read, which then reports io.EOF
}
