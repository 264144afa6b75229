//go:build !linux

package resolver

// Outside Linux a wildcard UDP bind answers from the address the route to
// the client prefers: bind --dns.listen-address to each address instead on
// a host with several.
const dstAddrSupported = false

var dstAddrOOB = 0

func recvDstAddr(int, string) error { return nil }

type srcAddr struct{}

func newSrcAddr() *srcAddr { return &srcAddr{} }

func (*srcAddr) from([]byte) []byte { return nil }
