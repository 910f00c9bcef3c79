#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The pkg-config route: unimem's build installed into a DESTDIR (meson install --destdir),
# then a program built the way the README says, `cc app.c $(pkg-config --cflags --libs
# unimem)`, with pkg-config pointed into the DESTDIR; linked shared, then static.
# TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/consumers/lib.sh
. "$here/../lib.sh"
need meson pkg-config readelf
cc=${CC:-cc}
# A sanitized libunimem brings its compiler's sanitizer runtime: link with that compiler.
if [ ${#san_flags[@]} -gt 0 ] && [ "$UNIMEM_CC_ID" = clang ]; then
	cc=clang
fi
need "$cc"

plan 8
dest=$work/dest
must "meson install --destdir puts unimem, its headers and unimem.pc in a DESTDIR" \
	install_unimem "$dest"
check "pkg-config --modversion unimem is $UNIMEM_VERSION" \
	bash -c '[ "$(PKG_CONFIG_LIBDIR=$1 pkg-config --modversion unimem)" = "$2" ]' _ \
	"$pcdir" "$UNIMEM_VERSION"
# The pools and types this installation has, for consumers to check (README).
grids=$(pc "$dest" --variable=grids unimem)
check "pkg-config --variable=grids names the installed pools ($grids)" \
	bash -c 'grep -q "^#define UNIMEM_GRIDS \"${1//,/ }\"$" "$2"' _ "$grids" \
	"$(find "$dest" -path '*/unimem/grids.h')"

if [ -z "$(find "$dest" -name 'libunimem.so*')" ]; then
	skip "cc app.c \$(pkg-config --cflags --libs unimem)" "no shared library installed (default_library=static)"
	skip "the program needs libunimem.so.$UNIMEM_SOVERSION" "no shared library"
	skip "the program runs against the installed libunimem.so.$UNIMEM_SOVERSION" "no shared library"
else
	must "cc app.c \$(pkg-config --cflags --libs unimem)" \
		bash -c '$1 "$2" $(PKG_CONFIG_LIBDIR=$3 PKG_CONFIG_SYSROOT_DIR=$4 pkg-config --cflags --libs unimem) -o "$5" "${@:6}"' \
		_ "$cc" "$here/app.c" "$pcdir" "$dest" "$work/app" "${san_flags[@]}"
	check "the program needs libunimem.so.$UNIMEM_SOVERSION (the soname)" \
		bash -c 'readelf -d "$1" | grep -q "NEEDED.*\[libunimem\.so\.$UNIMEM_SOVERSION\]"' _ "$work/app"
	check "the program runs against the installed libunimem.so.$UNIMEM_SOVERSION" \
		env LD_LIBRARY_PATH="$libdir" "$work/app" "$UNIMEM_VERSION"
fi

# Static: libunimem.a and the private libraries pkg-config --static adds (threads, dl).
if [ -z "$(find "$dest" -name libunimem.a)" ]; then
	skip "cc -static app.c \$(pkg-config --static --cflags --libs unimem)" "no libunimem.a installed (default_library=shared)"
	skip "the static program runs" "no libunimem.a"
elif [ ${#san_flags[@]} -gt 0 ]; then
	skip "cc -static app.c \$(pkg-config --static --cflags --libs unimem)" "libunimem is built with -fsanitize=$UNIMEM_SANITIZE, whose runtime does not link statically"
	skip "the static program runs" "no static link"
elif ! echo 'int main(void){return 0;}' | "$cc" -static -x c - -o "$work/probe" >/dev/null 2>&1; then
	skip "cc -static app.c \$(pkg-config --static --cflags --libs unimem)" "$cc cannot link a static program here (no libc.a)"
	skip "the static program runs" "no static link"
else
	must "cc -static app.c \$(pkg-config --static --cflags --libs unimem)" \
		bash -c '$1 -static "$2" $(PKG_CONFIG_LIBDIR=$3 PKG_CONFIG_SYSROOT_DIR=$4 pkg-config --static --cflags --libs unimem) -o "$5"' \
		_ "$cc" "$here/app.c" "$pcdir" "$dest" "$work/app-static"
	check "the static program runs, needing no shared library" \
		bash -c '! readelf -d "$1" | grep -q NEEDED && "$1" "$2"' _ "$work/app-static" "$UNIMEM_VERSION"
fi
finish
