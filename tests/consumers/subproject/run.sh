#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The subproject route, as a consumer takes it: a copy of this directory (its meson.build,
# app.c and subprojects/unimem.wrap) with unimem's source placed in subprojects/unimem/,
# set up with downloads off, built, and its test run. TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
need meson ninja tar readelf

plan 6
app=$work/app
mkdir -p "$app"
cp "$here/meson.build" "$here/app.c" "$app/"
cp -r "$here/subprojects" "$app/"
must "unimem's source placed in the consumer's subprojects/unimem" \
	copy_unimem_source "$app/subprojects/unimem"
must "meson setup: dependency('unimem') falls back to the wrap, default_options grids=256x1024, no download" \
	meson setup --wrap-mode=nodownload "$work/build" "$app"
must "ninja builds unimem with the consumer's pools, and the consumer" ninja -C "$work/build"
check "the consumer runs: Block, Tape, typed accessors and the 256x1024 pool's constants" \
	meson test -C "$work/build" --no-rebuild --print-errorlogs
# unimem's own suites stay out of the consumer's `meson test`.
check "meson test lists the consumer's test only" \
	bash -c '[ "$(meson test -C "$1" --no-rebuild --list 2>/dev/null | grep -v "^$")" = app ]' _ "$work/build"
# default_library=static: unimem is inside the program, nothing to load at run time.
check "default_library=static: the program needs no libunimem.so" \
	bash -c '! readelf -d "$1" | grep -q "NEEDED.*libunimem"' _ "$work/build/app"
finish
