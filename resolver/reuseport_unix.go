//go:build unix

package resolver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const reusePortSupported = true

// listenConfig makes UDP sockets: with SO_REUSEPORT when several share the
// address, so the kernel spreads clients over them and each core reads its
// own socket; asking for each datagram's destination address when dstAddr
// is set; with a receive buffer of rcvbuf bytes and the kernel's drop count
// (see udpcontrol_linux.go).
func listenConfig(reuse, dstAddr bool, rcvbuf int) net.ListenConfig {
	return net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if reuse {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					return
				}
			}
			if dstAddr {
				if serr = recvDstAddr(int(fd), network); serr != nil {
					return
				}
			}
			serr = setUDPReceive(int(fd), rcvbuf)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
