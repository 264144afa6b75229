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

// dstAddrOOB is the control-message space a read needs for the destination
// address.
var dstAddrOOB = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo)

// srcAddr holds a worker's control messages for answers: filled in place
// for each answer, so answering allocates nothing.
type srcAddr struct {
	v4, v6 []byte
}

func newSrcAddr() *srcAddr {
	return &srcAddr{
		v4: unix.PktInfo4(&unix.Inet4Pktinfo{}),
		v6: unix.PktInfo6(&unix.Inet6Pktinfo{}),
	}
}

// from returns the control message that sends an answer from the
// destination address reported in oob, or nil when oob reports none.
func (s *srcAddr) from(oob []byte) []byte {
	data := unix.CmsgLen(0)
	for len(oob) >= unix.SizeofCmsghdr {
		h, b, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return nil
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(b) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr. The answer's
			// source is spec_dst; the interface is left to the route.
			copy(s.v4[data+4:data+8], b[8:12])
			return s.v4
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
			return s.v6
		}
	}
	return nil
}
