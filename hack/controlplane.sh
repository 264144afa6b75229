#!/usr/bin/env bash
# Builds the pinned control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler), kubectl, the node (kubelet, kube-proxy, containerd, ctr,
# containerd-shim-runc-v2), kwok, CoreDNS (tools/coredns), helm and Prometheus
# (kubernetes service discovery only) into $1 (default .cache/bin),
# skipping what is already built at the pinned version. Installs the Debian tools
# the tests use (dig, dnsperf, ip, promtool; runc, the CNI plugins, iptables and
# conntrack for the node; knot, nsd and bind9 as zone-transfer secondaries) when
# they are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/hack/versions.env"
bin=${1:-$root/.cache/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
# shellcheck source=lib.sh
. "$root/hack/lib.sh"

install_debian() {
	local missing=()
	command -v dig >/dev/null || missing+=(bind9-dnsutils)
	command -v dnsperf >/dev/null || missing+=(dnsperf)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v promtool >/dev/null || missing+=(prometheus)
	# test/image runs the images under podman with runc (crun refuses the
	# hosts' cgroup layout).
	command -v podman >/dev/null || missing+=(podman)
	# The node: Debian's runc has seccomp, which containerd's sandbox spec
	# asks for; the CNI plugins land in /usr/lib/cni.
	command -v runc >/dev/null || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v conntrack >/dev/null || missing+=(conntrack)
	command -v nft >/dev/null || missing+=(nftables) # kube-proxy's nftables mode runs nft
	# test/xfr: real secondaries (Knot, NSD, BIND) loading peerdns's zones by
	# transfer. The test runs its own instances on loopback ports; the
	# services the packages start are stopped and disabled.
	local secondaries=()
	[ -x /usr/sbin/knotd ] || secondaries+=(knot)
	[ -x /usr/sbin/nsd ] || secondaries+=(nsd)
	[ -x /usr/sbin/named ] || secondaries+=(bind9)
	apt_install "${missing[@]}" "${secondaries[@]}"
	if [ ${#secondaries[@]} -gt 0 ] && command -v systemctl >/dev/null; then
		systemctl disable --now knot nsd named >/dev/null 2>&1 || true
	fi
}

build_etcd() {
	built etcd "$ETCD_VERSION" && return 0
	require_module_version etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
	say "building etcd $ETCD_VERSION"
	(cd "$root/tools/etcd" && go build -trimpath -o "$bin/etcd" .)
	stamp etcd "$ETCD_VERSION"
}

build_kubernetes() {
	local v=${KUBERNETES_VERSION#v} major minor
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%.*}
	local pkg=k8s.io/component-base/version
	local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	local c todo=()
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
		built "$c" "$KUBERNETES_VERSION" || todo+=("$c")
	done
	[ ${#todo[@]} -eq 0 ] && return 0
	require_module_version controlplane k8s.io/kubernetes "$KUBERNETES_VERSION"
	for c in "${todo[@]}"; do
		say "building $c $KUBERNETES_VERSION (cold: about 8 minutes for the first, 2 for the others)"
		(cd "$root/tools/controlplane" && go build -trimpath -ldflags "$ldflags" -o "$bin/$c" "./cmd/$c")
		stamp "$c" "$KUBERNETES_VERSION"
	done
}

# build_coredns: CoreDNS with the plugins tools/coredns/main.go lists, without
# cgo, so the binary also runs in an image with nothing else in it (the
# node's cluster DNS runs CoreDNS as a pod).
build_coredns() {
	local version="$COREDNS_VERSION kube-plugins static"
	built coredns "$version" && return 0
	require_module_version coredns github.com/coredns/coredns "$COREDNS_VERSION"
	say "building coredns $version"
	(cd "$root/tools/coredns" && CGO_ENABLED=0 go build -trimpath -o "$bin/coredns" .)
	stamp coredns "$version"
}

# require_module_version DIR MODULE VERSION: fail unless tools/DIR's go.mod
# requires MODULE at VERSION, the one hack/versions.env pins.
require_module_version() {
	local got
	got=$(cd "$root/tools/$1" && go list -m -f '{{.Version}}' "$2")
	[ "$got" = "$3" ] || { say "tools/$1/go.mod has $2 $got, hack/versions.env pins $3"; exit 1; }
}

# containerd without cgo and without the snapshotters that need it; the
# node uses overlayfs.
build_containerd() {
	local c todo=()
	for c in containerd ctr containerd-shim-runc-v2; do
		built "$c" "$CONTAINERD_VERSION" || todo+=("github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION")
	done
	[ ${#todo[@]} -eq 0 ] && return 0
	say "building containerd, ctr, containerd-shim-runc-v2 $CONTAINERD_VERSION"
	CGO_ENABLED=0 GOBIN="$bin" go install -trimpath -tags no_btrfs,no_devmapper,no_zfs "${todo[@]}"
	for c in containerd ctr containerd-shim-runc-v2; do stamp "$c" "$CONTAINERD_VERSION"; done
}

# Prometheus with the kubernetes service discovery only (its plugins/
# build tags), the one test/node scrapes the agents with: Debian's is built
# without kubernetes_sd_configs. The web UI's assets are left out too; the
# query API does not need them.
build_prometheus() {
	local version="$PROMETHEUS_VERSION kubernetes_sd"
	built prometheus "$version" && return 0
	say "building prometheus $version (cold: 7 CPU-minutes; 22 minutes on 2 busy shared cores)"
	CGO_ENABLED=0 GOBIN="$bin" go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
		"github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION"
	stamp prometheus "$version"
}

install_debian
build_etcd
build_kubernetes
build_containerd
build_coredns
go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
build_prometheus
say "control plane ready in $bin"
