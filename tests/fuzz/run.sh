#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the libFuzzer target for UNIMEM_FUZZ_SECONDS (default 60) on the seed corpus.
# New inputs go to BUILD/corpus-new, crashes to BUILD/crash-*; the source tree is not touched.
# Usage: run.sh FUZZER SEED_CORPUS BUILD_DIR [more libFuzzer options]
set -eu
fuzzer=$1 seeds=$2 out=$3
shift 3
mkdir -p "$out/corpus-new"
exec "$fuzzer" "$out/corpus-new" "$seeds" \
	-max_total_time="${UNIMEM_FUZZ_SECONDS:-60}" -timeout=20 -rss_limit_mb=4096 \
	-max_len=4096 -print_final_stats=1 -artifact_prefix="$out/" "$@"
