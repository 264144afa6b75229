//go:build unix

package resolver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const reusePortSupported = true

// listenConfig sets SO_REUSEPORT when several sockets share the address, so
// the kernel spreads clients over them and each core reads its own socket.
func listenConfig(reuse bool) net.ListenConfig {
	if !reuse {
		return net.ListenConfig{}
	}
	return net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
