//go:build unix

package resolver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const reusePortSupported = true

// listenConfig sets SO_REUSEPORT when several sockets share the address, so
// the kernel spreads clients over them and each core reads its own socket,
// and asks for each datagram's destination address when dstAddr is set
// (see srcaddr_linux.go).
func listenConfig(reuse, dstAddr bool) net.ListenConfig {
	if !reuse && !dstAddr {
		return net.ListenConfig{}
	}
	return net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if reuse {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					return
				}
			}
			if dstAddr {
				serr = recvDstAddr(int(fd), network)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
