#!/bin/bash
# SPDX-License-Identifier: MIT
# On the GPU machine: build, run the unit and GPU suites, then the GPU benchmark.
# Logs under $OUT (or /tmp/out); the benchmark's tables print last. Runs from anywhere:
# it builds the tree it lives in.
#   [BENCH_ARGS=--quick] [BENCH_AGAIN=1] bash .ci/gpu-device.sh [--no-bench]
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
B=/tmp/unimem-gpu-build
rm -rf "$B"
{
	nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current \
		--format=csv,noheader 2>&1
	uname -r; nproc; free -g | head -2
	echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled) shmem: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled) nr_hugepages: $(cat /proc/sys/vm/nr_hugepages)"
} > "$OUT/machine.txt"
meson setup "$B" -Dgpu_tests=true > "$OUT/setup.log" 2>&1 || { tail -30 "$OUT/setup.log"; exit 1; }
ninja -C "$B" > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
meson test -C "$B" --num-processes 2 --print-errorlogs > "$OUT/tests.log" 2>&1
tests_rc=$?
cp "$B/meson-logs/testlog.txt" "$OUT/testlog.txt" 2>/dev/null
grep -E '^(ok|not ok)' "$B/meson-logs/testlog.txt" | grep -E 'gpu' > "$OUT/gpu-tap.txt"
if [ "${1:-}" != "--no-bench" ]; then
	"$B/bench/bench_gpu" ${BENCH_ARGS:-} > "$OUT/bench.txt" 2>&1
	bench_rc=$?
	# A second run, to see the spread between runs (kept beside the first).
	if [ -n "${BENCH_AGAIN:-}" ]; then
		"$B/bench/bench_gpu" > "$OUT/bench2.txt" 2>&1
		bench_rc="$bench_rc $?"
	fi
else
	bench_rc=skipped
fi
cat "$OUT/machine.txt"
grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/tests.log"
grep -E '^not ok' "$B/meson-logs/testlog.txt" | head -20
echo "tests rc=$tests_rc bench rc=$bench_rc"
cat "$OUT/bench.txt" 2>/dev/null
[ -f "$OUT/bench2.txt" ] && { echo; echo "=== second run, targets ==="; sed -n '/^## targets/,$p' "$OUT/bench2.txt"; }
