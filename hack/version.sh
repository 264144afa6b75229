#!/usr/bin/env bash
# Prints the version of this checkout (the Makefile's VERSION), given the
# release being prepared (the Makefile's RELEASE, e.g. v0.1.0):
#   - the release tag on HEAD (`git describe --tags --exact-match`), with
#     -dirty appended when the tree has uncommitted changes;
#   - otherwise <release>-dev-g<12 hex of HEAD>, -dirty as above: a SemVer
#     pre-release of the release being prepared, so it sorts after every
#     published release (`git describe`'s v0.1.0-3-gabc… after the tag
#     v0.1.0 would sort before it);
#   - <release>-dev outside a git checkout.
# Every form is valid SemVer (with the leading v) and a valid image tag.
# `make release-check` refuses a development version of a RELEASE that is
# already tagged.
set -euo pipefail
release=${1:?usage: version.sh <release, e.g. v0.1.0>}
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "$release-dev"
	exit 0
fi
if git describe --tags --exact-match --match 'v[0-9]*' --dirty 2>/dev/null; then
	exit 0
fi
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=-dirty
echo "$release-dev-g$(git rev-parse --short=12 HEAD)$dirty"
