# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # sourced: the variables it sets are for the tests
# Shared by the consumer tests (sourced, not run): TAP output, a scratch directory,
# and the ways a consumer gets unimem (a copy of its source, an install into a DESTDIR).
# Tests print TAP on stdout and everything else on stderr.
#
# Environment, set by tests/consumers/meson.build:
#   UNIMEM_SOURCE_ROOT  unimem's source tree
#   UNIMEM_BUILD_ROOT   its build directory (already built: meson test builds first)
#   UNIMEM_VERSION      the project version
#   UNIMEM_SOVERSION    libunimem's soversion (libunimem.so.N)
#   UNIMEM_PYTHON       the Python that Meson runs the generator with
#   UNIMEM_SANITIZE     b_sanitize of that build ('none' or e.g. 'address,undefined')
#   UNIMEM_CC_ID        the C compiler that built it (gcc, clang)

set -u
: "${UNIMEM_SOURCE_ROOT:?}" "${UNIMEM_BUILD_ROOT:?}" "${UNIMEM_VERSION:?}" "${UNIMEM_PYTHON:=python3}"

# unimem's checkout may belong to another user (a mounted volume, CI as root); git then
# refuses it ("dubious ownership") unless told, in a protected scope as here, that this
# one directory is safe. Only for this checkout, and only for these tests.
i=${GIT_CONFIG_COUNT:-0}
export "GIT_CONFIG_KEY_$i=safe.directory" "GIT_CONFIG_VALUE_$i=$UNIMEM_SOURCE_ROOT"
export GIT_CONFIG_COUNT=$((i + 1))
unset i

# Programs that link the installed (so possibly sanitized) library need its sanitizer.
san_flags=()
if [ "${UNIMEM_SANITIZE:-none}" != none ]; then
	san_flags=("-fsanitize=$UNIMEM_SANITIZE")
fi

tap_n=0
tap_failed=0

work=$(mktemp -d "${TMPDIR:-/tmp}/unimem-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/step.log

plan() { echo "1..$1"; }

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	echo "not ok $tap_n - $*"
	tap_failed=1
}

skip() { # description, reason
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1 # SKIP $2"
}

# The whole test cannot run here: say why and stop.
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# A check that later steps do not need. Returns non-zero when it failed.
check() { # description, command...
	local what=$1
	shift
	if "$@" >"$log" 2>&1; then
		ok "$what"
	else
		not_ok "$what"
		echo "# failed: $*" >&2
		sed 's/^/#   /' "$log" >&2
		return 1
	fi
}

# A step that later steps need: on failure show its output and stop.
must() { # description, command...
	check "$@" || {
		echo "Bail out! $1"
		exit 1
	}
}

finish() { exit "$tap_failed"; }

need() { # program... : skip the whole test when one is missing
	local p
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || skip_all "$p not found"
	done
}

# Copy unimem's source tree to $1 as a consumer would get it: from a git checkout,
# the files git knows (tracked, and new ones not ignored; edits included); from an
# unpacked tarball, everything but build directories.
copy_unimem_source() {
	local dst=$1 src=$UNIMEM_SOURCE_ROOT
	mkdir -p "$dst"
	if command -v git >/dev/null 2>&1 &&
		git -C "$src" ls-files --error-unmatch meson.build >/dev/null 2>&1; then
		git -C "$src" ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				[ -e "$src/$f" ] && printf '%s\0' "$f"
			done | tar -C "$src" --null -T - -cf - | tar -C "$dst" -xf -
	else
		tar -C "$src" --exclude=.git --exclude-tag-all=build.ninja -cf - . |
			tar -C "$dst" -xf -
	fi
}

# Install unimem's build into the DESTDIR $1 (no rebuild: meson test built it), and
# set pcdir (where unimem.pc landed) and libdir (where libunimem landed) under it.
install_unimem() {
	local destdir=$1
	meson install -C "$UNIMEM_BUILD_ROOT" --no-rebuild --quiet --destdir "$destdir" || return 1
	pcdir=$(dirname "$(find "$destdir" -name unimem.pc -path '*/pkgconfig/*' | head -n1)")
	libdir=$(dirname "$(find "$destdir" -name 'libunimem.so*' | head -n1)")
	[ -f "$pcdir/unimem.pc" ] || { echo "no unimem.pc under $destdir" >&2; return 1; }
}

# pkg-config that sees only the DESTDIR's unimem.pc, paths moved into the DESTDIR.
pc() { # destdir, pkg-config args...
	local destdir=$1
	shift
	PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_SYSROOT_DIR=$destdir pkg-config "$@"
}
