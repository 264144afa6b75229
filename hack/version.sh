#!/usr/bin/env bash
# Prints the version of this checkout (the Makefile's VERSION), given the
# release being prepared (the Makefile's RELEASE, e.g. v0.1.0):
#   - `git describe --tags --match 'v[0-9]*' --dirty` when a release tag is
#     reachable: v0.1.0 on the tag itself, v0.1.0-3-gabc1234 three commits
#     later, with -dirty appended when the tree has uncommitted changes;
#   - otherwise <release>-dev-g<12 hex of HEAD>, -dirty as above;
#   - <release>-dev outside a git checkout.
# Every form is valid SemVer (with the leading v) and a valid image tag.
set -euo pipefail
release=${1:?usage: version.sh <release, e.g. v0.1.0>}
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "$release-dev"
	exit 0
fi
if git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null; then
	exit 0
fi
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=-dirty
echo "$release-dev-g$(git rev-parse --short=12 HEAD)$dirty"
