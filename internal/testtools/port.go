package testtools

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// FreePorts returns n distinct ports on ip, each free for both TCP and
// UDP a moment ago, as a DNS server or memberlist needs (a port that only
// one protocol uses is free for the other too). Each is held until all
// are picked, so one call never returns a port twice. Another process may
// take one before the caller binds it; on a test's own address that is
// rare enough.
func FreePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts == 50*n {
			return nil, fmt.Errorf("pick %d ports on %s: no port free for both TCP and UDP", n, ip)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("pick a port on %s: %w", ip, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			ln.Close()
			continue
		}
		defer ln.Close()
		defer pc.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// FreePort is FreePorts for one port; it fails the test when there is none.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	ports, err := FreePorts(ip, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}
