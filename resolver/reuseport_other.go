//go:build !unix

package resolver

import "net"

const reusePortSupported = false

func listenConfig(bool, bool) net.ListenConfig { return net.ListenConfig{} }
