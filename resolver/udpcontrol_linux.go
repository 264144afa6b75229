package resolver

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// A UDP socket bound to the wildcard address answers from the address the
// kernel's route to the client prefers, which on a host with several
// addresses (a secondary IP, a node-local VIP on a dummy interface, several
// IPv6 addresses) need not be the one the query was sent to; clients drop
// such an answer ("reply from unexpected source") and time out without a
// TCP retry. So wildcard sockets ask for each datagram's destination
// (IP_PKTINFO, IPV6_RECVPKTINFO) and answer from it.

// dstAddrSupported tells whether UDP answers on a wildcard bind go out from
// the address each query was sent to.
const dstAddrSupported = true

// setUDPReceive sizes the receive buffer of UDP socket fd to rcvbuf bytes
// (beyond net.core.rmem_max only with CAP_NET_ADMIN) and makes the socket
// report, with each datagram, how many the kernel dropped on it for want
// of room (SO_RXQ_OVFL).
func setUDPReceive(fd, rcvbuf int) error {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return err
		}
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
}

// receiveBuffer is the receive buffer of UDP socket fd as the kernel
// reports it: twice the size granted, the other half for its bookkeeping.
func receiveBuffer(fd int) int {
	n, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	return n
}

// recvDstAddr makes the socket fd of network ("udp4" or "udp6") report each
// datagram's destination address. On an IPv6 socket that also takes IPv4
// (Go's ":53"), Linux reports the destination of IPv4 datagrams as an
// IPv4-mapped IPV6_PKTINFO, and takes one back for the answer.
func recvDstAddr(fd int, network string) error {
	if network == "udp4" {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
}

// udpOOB is the control-message space a read needs: the destination
// address and the drop count.
var udpOOB = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo) + unix.CmsgSpace(4)

// udpControl holds a worker's control messages for answers: filled in
// place for each answer, so answering allocates nothing.
type udpControl struct {
	v4, v6 []byte
}

func newUDPControl() *udpControl {
	return &udpControl{
		v4: unix.PktInfo4(&unix.Inet4Pktinfo{}),
		v6: unix.PktInfo6(&unix.Inet6Pktinfo{}),
	}
}

// read returns what the control messages oob of a datagram report: the
// control message that sends the answer from the datagram's destination
// address (nil when oob has none), and the socket's count of datagrams
// dropped so far (ok false when oob has none).
func (s *udpControl) read(oob []byte) (reply []byte, drops uint32, ok bool) {
	data := unix.CmsgLen(0)
	for len(oob) >= unix.SizeofCmsghdr {
		h, b, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return reply, drops, ok
		}
		oob = rest
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(b) >= 4:
			drops, ok = binary.NativeEndian.Uint32(b), true
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(b) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr. The answer's
			// source is spec_dst; the interface is left to the route.
			copy(s.v4[data+4:data+8], b[8:12])
			reply = s.v4
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(b) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr, ifindex. The interface is kept
			// only for a link-local address, which needs it; otherwise it
			// is left to the route.
			copy(s.v6[data:data+16], b[:16])
			var ifindex uint32
			if b[0] == 0xfe && b[1]&0xc0 == 0x80 {
				ifindex = binary.NativeEndian.Uint32(b[16:20])
			}
			binary.NativeEndian.PutUint32(s.v6[data+16:data+20], ifindex)
			reply = s.v6
		}
	}
	return reply, drops, ok
}
