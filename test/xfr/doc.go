// Package xfr tests peerdns's zone transfers against real secondaries:
// Debian's Knot, NSD and BIND, each run on a loopback port, loading
// peerdns's zones by AXFR from a real API server's EndpointSlices, then
// following a change by NOTIFY and IXFR. Every transfer is TSIG-signed
// with a key tsig-keygen wrote.
//
// The tests need the control-plane tools (`make controlplane`) and knotd,
// nsd, named and tsig-keygen (hack/controlplane.sh installs them). Without
// them they skip, unless PEERDNS_REQUIRE_TOOLS=1, when they fail.
package xfr
