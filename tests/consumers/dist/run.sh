#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `meson dist`: the release tarball of the committed tree (git archive of HEAD), which
# meson then unpacks, sets up with the default options, builds, tests (`meson test`,
# every default suite) and installs. Needs a git checkout; inside an unpacked tarball
# (as when meson dist runs this very suite) there is none, and the test says skipped.
# TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/consumers/lib.sh
. "$here/../lib.sh"
need meson ninja
command -v git >/dev/null 2>&1 || skip_all "git not found (meson dist needs it)"
src=$UNIMEM_SOURCE_ROOT
git -C "$src" ls-files --error-unmatch meson.build >/dev/null 2>&1 ||
	skip_all "$src is not a git checkout (meson dist needs one)"

plan 4
# A build directory of our own with the default options: meson dist hands its options
# to the tarball's check build.
must "meson setup with the default options" meson setup "$work/build" "$src"
allow=()
if ! git -C "$src" diff-index --quiet HEAD --; then
	echo "# uncommitted changes in $src: the tarball holds HEAD without them" >&2
	allow=(--allow-dirty)
fi
must "meson dist: the tarball of HEAD builds, passes its tests and installs" \
	meson dist -C "$work/build" --formats xztar "${allow[@]}"
tarball=$work/build/meson-dist/unimem-$UNIMEM_VERSION.tar.xz
check "unimem-$UNIMEM_VERSION.tar.xz and its .sha256sum" \
	bash -c 'cd "$(dirname "$1")" && sha256sum -c "$1.sha256sum"' _ "$tarball"
# What consumers copy from the tarball is in it; build trees are not.
"$UNIMEM_PYTHON" -c 'import sys, tarfile; print("\n".join(tarfile.open(sys.argv[1]).getnames()))' \
	"$tarball" >"$work/contents" 2>/dev/null
check "the tarball holds the wrap and the consumer projects, and no build tree" \
	bash -c 'grep -qx "unimem-$2/tests/consumers/subproject/subprojects/unimem.wrap" "$1" &&
		grep -qx "unimem-$2/tests/consumers/subproject/meson.build" "$1" &&
		! grep -q "/meson-private/" "$1"' _ "$work/contents" "$UNIMEM_VERSION"
finish
