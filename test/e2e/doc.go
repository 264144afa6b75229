// Package e2e holds end-to-end tests that run the built binaries together:
// peerdns against a real control plane, and peeragents in network
// namespaces that find each other only through peerdns's names.
//
// TestAgentsThroughPeerDNS deploys one StatefulSet per scenario onto a
// shared control plane, peerdns and LAN: a member rescheduled at a new
// address, a minority partition, a non-transitive partition, a second
// process with a member's name, a rolling restart and a gossip key
// rotation. What each asserts is what a user sees: /metrics, /readyz and
// /members of every agent. The times they log as "measured:" are the ones
// in docs/peeragent.md.
//
// The tests need root and iproute2's ip (to create the namespaces),
// iptables (to cut links between them) and the control-plane tools
// (`make controlplane`). Without them they skip, unless
// PEERDNS_REQUIRE_TOOLS=1 (as `make test` sets), when they fail.
package e2e
