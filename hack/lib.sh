# shellcheck shell=bash
# Helpers shared by hack/controlplane.sh and hack/tools.sh, which source this
# file after setting $bin, the directory tools are installed into. Each tool
# there has a stamp file .<name>.version holding the version it was built at.
bin=${bin:?hack/lib.sh: set bin before sourcing it}

say() { printf '==> %s\n' "$*" >&2; }

# built NAME VERSION: true when NAME was built at VERSION already.
built() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$bin/.$1.version"; }

# go_install NAME MODULE VERSION: go install MODULE@VERSION into $bin,
# unless NAME is built at VERSION already.
go_install() {
	built "$1" "$3" && return 0
	say "building $1 $3"
	GOBIN="$bin" go install "$2@$3"
	stamp "$1" "$3"
}

# apt_install PACKAGE...: install Debian packages, quietly.
apt_install() {
	[ $# -eq 0 ] && return 0
	say "installing Debian packages: $*"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
