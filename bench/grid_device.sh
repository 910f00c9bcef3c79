#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 15 on the GPU machine's 16-core host, one call: `unimem bench` (Grid patterns,
# Tape threads) with the rivals carried in .bench-carry/ (the DPDK plugin and its
# libraries, ck's headers, the mallocs: none are installed there), the targets, then the
# Grid stress across processes and threads. Logs in $OUT; a short table on stdout.
#   source .device/kit.sh setup && bash bench/grid_device.sh [seconds of stress]
set -u
OUTD=${OUT:-/tmp/out}
mkdir -p "$OUTD"
source "$(dirname "$0")/carry_env.sh"
B=/tmp/gb
(meson setup $B -Dbuildtype=release >/dev/null && ninja -C $B) > "$OUTD/build.log" 2>&1 || { tail -30 "$OUTD/build.log"; exit 1; }
echo "== $(date -u +%T) bench"
$B/tools/unimem bench --only grid,tape,threads > "$OUTD/bench16.txt" 2> "$OUTD/bench16.err"
$B/tools/unimem bench --only grid,threads --json -q > "$OUTD/bench16.json" 2>> "$OUTD/bench16.err"
python3 bench/targets.py < "$OUTD/bench16.json" | tee "$OUTD/targets16.txt"
S=${1:-30}
echo "== $(date -u +%T) stress ${S}s"
UNIMEM_STRESS_SECONDS=$S $B/tests/stress/grid_procs --tap --jobs=1 > "$OUTD/grid_procs.log" 2>&1
echo "grid_procs: rc $? $(grep -cE '^ok' "$OUTD/grid_procs.log") ok, $(grep -cE '^not ok' "$OUTD/grid_procs.log") not ok"
UNIMEM_STRESS_SECONDS=$S UNIMEM_STRESS_THREADS=16 $B/tests/stress/stress --tap --jobs=1 > "$OUTD/stress.log" 2>&1
echo "stress (Tape, Layout, Grid; 16 threads): rc $? $(grep -cE '^ok' "$OUTD/stress.log") ok, $(grep -cE '^not ok' "$OUTD/stress.log") not ok"
echo "== $(date -u +%T) done"
