#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The installed-generator route: unimem's build installed into a DESTDIR, then a separate
# Meson project (this directory) that finds it with pkg-config, runs the installed
# unimem-gen (pkg-config --variable=unimem_gen unimem) on its own -Dpools value in a
# custom_target, and takes and gives cells of the generated pool. TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/consumers/lib.sh
. "$here/../lib.sh"
need meson ninja pkg-config

# A sanitized libunimem needs its consumer built with the same sanitizer and compiler.
opts=()
if [ "${UNIMEM_SANITIZE:-none}" != none ]; then
	opts=("-Db_sanitize=$UNIMEM_SANITIZE" -Db_lundef=false)
	[ "$UNIMEM_CC_ID" = clang ] && export CC=clang
fi

plan 7
dest=$work/dest
must "meson install --destdir puts unimem, unimem-gen and unimem.pc in a DESTDIR" \
	install_unimem "$dest"
gen=$(pc "$dest" --variable=unimem_gen unimem)
check "pkg-config --variable=unimem_gen unimem names the installed generator ($gen)" \
	test -x "$gen"
# What meson sees: only the DESTDIR's unimem.pc, its paths moved into the DESTDIR.
export PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest
must "meson setup -Dpools=512x128: dependency('unimem') from pkg-config, unimem-gen found" \
	meson setup "$work/build" "$here" -Dpools=512x128 "${opts[@]}"
must "ninja runs unimem-gen in a custom_target and builds the consumer" ninja -C "$work/build"
check "the consumer runs: take and give on its 512x128 pool" \
	env LD_LIBRARY_PATH="$libdir" meson test -C "$work/build" --no-rebuild --print-errorlogs
check "app_pools.h is header-only (no UNIMEM_API) and has the consumer's pool" \
	bash -c '! grep -q UNIMEM_API "$1" && grep -q "^#define APP_POOLS \"512x128\"$" "$1"' _ \
	"$work/build/app_pools.h"
# A pool that unimem's installed grids.h also has (64x4096, a default) is defined once.
if grep -q 'UNIMEM_GRID_64X4096_CELL' "$(find "$dest" -path '*/unimem/grids.h')"; then
	check "-Dpools=512x128,64x4096: a pool the installed grids.h also defines builds and runs" \
		bash -c 'meson setup "$1" "$2" -Dpools=512x128,64x4096 "${@:4}" && ninja -C "$1" &&
			LD_LIBRARY_PATH=$3 meson test -C "$1" --no-rebuild --print-errorlogs' _ \
		"$work/build2" "$here" "$libdir" "${opts[@]}"
else
	skip "-Dpools=512x128,64x4096: a pool the installed grids.h also defines" "the build under test has no 64x4096 pool"
fi
finish
