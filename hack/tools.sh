#!/usr/bin/env bash
# Installs what `make lint` runs besides the Go toolchain: golangci-lint and
# helm, pinned in hack/versions.env and built into $1 (default .cache/bin)
# unless already built at that version, and shellcheck from Debian.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/hack/versions.env"
bin=${1:-$root/.cache/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
# shellcheck source=lib.sh
. "$root/hack/lib.sh"

command -v shellcheck >/dev/null || apt_install shellcheck
go_install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
