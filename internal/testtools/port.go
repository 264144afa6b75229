package testtools

import (
	"net"
	"testing"
)

// FreePort returns a port on ip that is free for both TCP and UDP, as a DNS
// server or memberlist needs. Another process may take it before the caller
// binds it; on a test's own address that is rare enough.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatalf("no port on %s free for both TCP and UDP", ip)
	return 0
}
