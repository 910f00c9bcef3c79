#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ABI does not depend on build options: unimem set up twice, with the default options
# and with -Dgrids=256x1024 -Dblock_types=f64, only the two shared libraries built, and
# the defined dynamic symbols (nm -D --defined-only) of libunimem.so and libunimem-ffi.so
# compared. (tests and tools are off in both: they are not in the libraries.) TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/consumers/lib.sh
. "$here/../lib.sh"
need meson ninja nm
[ "$(uname -s)" = Linux ] || skip_all "libunimem-ffi and the version scripts are Linux only"

plan 4
setup() { # builddir, options...
	local b=$1
	shift
	meson setup "$b" "$UNIMEM_SOURCE_ROOT" -Dtests=false -Dtools=false "$@" &&
		ninja -C "$b" "src/libunimem.so.$UNIMEM_VERSION" "src/libunimem-ffi.so.$UNIMEM_VERSION"
}
must "meson setup a (defaults), the two shared libraries built" setup "$work/a"
must "meson setup b -Dgrids=256x1024 -Dblock_types=f64, the two shared libraries built" \
	setup "$work/b" -Dgrids=256x1024 -Dblock_types=f64
for lib in libunimem libunimem-ffi; do
	check "$lib.so exports the same symbols in a and b ($(nm -D --defined-only "$work/a/src/$lib.so.$UNIMEM_VERSION" | wc -l))" \
		diff <(nm -D --defined-only "$work/a/src/$lib.so.$UNIMEM_VERSION") \
		<(nm -D --defined-only "$work/b/src/$lib.so.$UNIMEM_VERSION")
done
finish
