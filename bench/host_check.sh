#!/bin/bash
# SPDX-License-Identifier: MIT
# Issues 15 and 17 on the GPU machine's 16-core host, one call: a Grid A/B of an older tree
# against this one (bench/grid_ab.sh), the 16-thread Grid stress of this tree, and
# bench_net's reads of 64 KiB and 1 MiB at rotating offsets and like for like (--offset0).
# The rivals and UCX come from .bench-carry/ (bench/make_carry.sh makes it on Debian 12;
# carry it with .device). Logs in $OUT; a short table on stdout.
#   source .device/kit.sh setup && bash bench/host_check.sh [steps]
# steps (default all): ab stress net. Environment: OLD (tarball of the older tree, default
# .bench-carry/old.tar: make it with `git archive REV > .bench-carry/old.tar`), EXTRA (more
# TAG=TREE pairs for the A/B, e.g. a variant's tarball), AB_N and AB_T (rounds and seconds of
# the A/B: 6, 170), STRESS_S (8), NET_ROUNDS (5).
set -u
OUTD=${OUT:-/tmp/out}
mkdir -p "$OUTD"
STEPS=${1:-ab stress net}
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
log() { echo "== $(date -u +%T) $* ($(uptime | sed 's/.*load/load/'))"; }
source "$(dirname "$0")/carry_env.sh"
B=/tmp/hc
log build
(meson setup $B -Dbuildtype=release >/dev/null && ninja -C $B) > "$OUTD/build.log" 2>&1 || { tail -30 "$OUTD/build.log"; exit 1; }
if has ab; then
  log "ab: ${OLD:-.bench-carry/old.tar} against this tree"
  OUT=$OUTD/ab bash bench/grid_ab.sh -n ${AB_N:-6} -t ${AB_T:-170} old=${OLD:-.bench-carry/old.tar} new=. ${EXTRA:-} > "$OUTD/ab.txt" 2>&1
  grep -E '^==|Grid:|each run' "$OUTD/ab.txt"
  for f in "$OUTD"/ab/ab/new-*.json; do python3 bench/targets.py < "$f" | grep -E "processes|reclaim"; done | sort | uniq -c | head -8
fi
if has stress; then
  S=${STRESS_S:-8}
  log "stress ${S}s, 16 threads"
  UNIMEM_STRESS_SECONDS=$S UNIMEM_STRESS_THREADS=16 $B/tests/stress/grid_procs --tap --jobs=1 > "$OUTD/grid_procs.log" 2>&1
  echo "grid_procs: rc $? $(grep -cE '^ok' "$OUTD/grid_procs.log") ok, $(grep -cE '^not ok' "$OUTD/grid_procs.log") not ok"
  UNIMEM_STRESS_SECONDS=$S UNIMEM_STRESS_THREADS=16 $B/tests/stress/stress --tap --jobs=1 --filter 'stress/grid*' > "$OUTD/stress.log" 2>&1
  echo "stress/grid*: rc $? $(grep -cE '^ok' "$OUTD/stress.log") ok, $(grep -cE '^not ok' "$OUTD/stress.log") not ok"
  $B/tests/test_grid --jobs=4 > "$OUTD/test_grid.log" 2>&1; grep -E "Synthesis" "$OUTD/test_grid.log"
fi
if has net; then
  export LD_LIBRARY_PATH=$PWD/.bench-carry/ucx/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} PATH=$PWD/.bench-carry/ucx/bin:$PATH
  for m in "" --offset0; do
    log "bench_net reads ${m:-rotating}"
    timeout 280 $B/bench/bench_net --rounds ${NET_ROUNDS:-5} --ops read --sizes 64,1024 $m > "$OUTD/net${m}.md" 2>> "$OUTD/net.err"
    echo "rc $?"; grep "^| read" "$OUTD/net${m}.md"
  done
fi
log done
