#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The subproject route, as a consumer takes it: a copy of this directory (its meson.build,
# app.c and subprojects/unimem.wrap) with unimem's source placed in subprojects/unimem/,
# set up with downloads off, built, and its test run. TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/consumers/lib.sh
. "$here/../lib.sh"
need meson ninja tar readelf

plan 7
app=$work/app
mkdir -p "$app"
cp "$here/meson.build" "$here/app.c" "$app/"
cp -r "$here/subprojects" "$app/"
must "unimem's source placed in the consumer's subprojects/unimem" \
	copy_unimem_source "$app/subprojects/unimem"
# An "installed" unimem with the default pools is in sight of pkg-config (the unimem.pc of
# the build under test); force_fallback_for=unimem must take the subproject all the same.
installed_pc=$UNIMEM_BUILD_ROOT/meson-private
must "meson setup: dependency('unimem') falls back to the wrap (force_fallback_for, an installed unimem in sight), default_options grids=256x1024, no download" \
	env PKG_CONFIG_PATH="$installed_pc" meson setup --wrap-mode=nodownload "$work/build" "$app"
must "ninja builds unimem with the consumer's pools, and the consumer" ninja -C "$work/build"
check "the consumer runs: Block, Tape, typed accessors and the 256x1024 pool's constants" \
	meson test -C "$work/build" --no-rebuild --print-errorlogs
# unimem's own suites stay out of the consumer's `meson test`.
check "meson test lists the consumer's test only" \
	bash -c 'l=$(meson test -C "$1" --no-rebuild --list 2>/dev/null | grep -v "^$"); [ "$(printf "%s\n" "$l" | wc -l)" = 1 ] && case $l in app | *[:\ /]app) true ;; *) false ;; esac' _ "$work/build"
# default_library=static: unimem is inside the program, nothing to load at run time.
check "default_library=static: the program needs no libunimem.so" \
	bash -c '! readelf -d "$1" | grep -q "NEEDED.*libunimem"' _ "$work/build/app"
# Without force_fallback_for the installed unimem wins, and the consumer's check on
# get_variable('grids') (from pkg-config now) stops the setup, naming the pools it got.
installed_grids=$(PKG_CONFIG_PATH=$installed_pc pkg-config --variable=grids unimem 2>/dev/null)
if [ ! -f "$installed_pc/unimem.pc" ] || [[ ",$installed_grids," == *,256x1024,* ]]; then
	skip "an installed unimem without the pool stops meson setup" "the build under test has grids=$installed_grids"
else
	check "an installed unimem without the pool stops meson setup, naming its pools ($installed_grids)" \
		bash -c '! PKG_CONFIG_PATH=$1 meson setup --wrap-mode=nodownload -Dforce_fallback_for= "$2/other" "$3" >"$2/other.log" 2>&1 &&
			grep -q "unimem came with pools .*, not 256x1024" "$2/other.log"' _ \
		"$installed_pc" "$work" "$app"
fi
finish
