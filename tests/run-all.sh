#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build and run the whole test suite; the README's test command and .ci/run end here.
# Passes, each in its own build directory:
#   build       the default build: every suite but the opt-in ones (stress, fuzz, gpu)
#   build-asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer (gcc)
#   build-tsan  the same under ThreadSanitizer (gcc)
#   build-fuzz  the libFuzzer targets (tests/fuzz: the API, safetensors), UNIMEM_FUZZ_SECONDS
#               each (default 60; clang); a new target is added to the ninja line below
# UNIMEM_PASSES="build build-asan" runs only the passes named. Prints the count of each pass,
# then 'N passed, N failed, N skipped' of all of them last, and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
passes=${UNIMEM_PASSES:-build build-asan build-tsan build-fuzz}

setup() { # build-dir, meson setup options...
	local dir=$1
	shift
	rm -f "$dir/meson-logs/testlog.json" # a failed build must not count an old run
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@" || return 1
	fi
}

run_suite() { # build-dir, meson setup options...
	setup "$@" || return 1
	ninja -C "$1" || return 1
	meson test -C "$1" --print-errorlogs --num-processes 2
}

for pass in $passes; do
	echo "=== $pass"
	case $pass in
	build) run_suite build ;;
	build-asan) run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false ;;
	build-tsan) run_suite build-tsan -Db_sanitize=thread -Db_lundef=false ;;
	build-fuzz)
		CC=clang setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false &&
			ninja -C build-fuzz tests/fuzz/fuzz_api tests/fuzz/fuzz_safetensors &&
			meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz
		;;
	*) echo "run-all.sh: unknown pass $pass" >&2 ;;
	esac
done
python3 tests/checks/summary.py $passes
