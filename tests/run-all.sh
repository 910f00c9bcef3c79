#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build and run the whole test suite; the README's test command and .ci/run end here.
# Prints 'N passed, N failed, N skipped' last and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
status=0

run_suite() { # build-dir, meson setup options...
	local dir=$1
	shift
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@" || return 1
	fi
	ninja -C "$dir" || return 1
	meson test -C "$dir" --print-errorlogs --num-processes 2
}

run_suite build
python3 tests/summary.py build || status=1
exit $status
