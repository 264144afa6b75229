//go:build !linux

package resolver

// Outside Linux a wildcard UDP bind answers from the address the route to
// the client prefers: bind --dns.listen-address to each address instead on
// a host with several. Kernel drops are not counted.
const dstAddrSupported = false

var udpOOB = 0

func recvDstAddr(int, string) error { return nil }

func setUDPReceive(int, int) error { return nil }

func receiveBuffer(int) int { return 0 }

type udpControl struct{}

func newUDPControl() *udpControl { return &udpControl{} }

func (*udpControl) read([]byte) ([]byte, uint32, bool) { return nil, 0, false }
