//go:build !unix

package resolver

import "net"

const reusePortSupported = false

func listenConfig(bool, bool, int) net.ListenConfig { return net.ListenConfig{} }
