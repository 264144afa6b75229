//go:build !linux

package resolver

// udpBatchSupported tells whether UDP workers read and write in batches:
// outside Linux they read and answer one datagram at a time.
const udpBatchSupported = false

func (s *Server) serveUDPBatch(si int) { s.serveUDP(si) }
