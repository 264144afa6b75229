// Package e2e holds end-to-end tests that run the built binaries together:
// peerdns against a real control plane, and peeragents in network
// namespaces that find each other only through peerdns's names.
//
// The tests need root and iproute2's ip (to create the namespaces) and the
// control-plane tools (`make controlplane`). Without them they skip, unless
// PEERDNS_REQUIRE_TOOLS=1 (as `make test` sets), when they fail.
package e2e
