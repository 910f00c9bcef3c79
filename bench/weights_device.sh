#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 16 on the GPU machine, one call: build, the weights tests (C gpu suite, Python
# against safetensors), a random Llama checkpoint made with transformers (1.5 GB, 3 shards)
# and its logits check, bench/bench_weights.py on it and on an 8 GiB file, and the open +
# map of a 16 GiB Block. Logs in $OUT; a short table on stdout.
#   source ../.device/kit.sh setup && bash bench/weights_device.sh [steps]
# steps (default all but net and sweep): build tests llama bench big block; also net, sweep
set -u
OUTD=${OUT:-/tmp/out}
mkdir -p "$OUTD"
PY=${PY:-/opt/torch/.venv/bin/python3}
B=/tmp/b
DATA=${DATA:-/var/tmp/unimem-weights}
STEPS=${1:-build tests llama bench big block}
export PYTHONPATH=$PWD/python UNIMEM_FFI_LIBRARY=$B/src/libunimem-ffi.so PYTHONUNBUFFERED=1
mkdir -p "$DATA"
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
log() { echo "== $(date -u +%T) $*"; }

{ nproc; free -g; df -T "$DATA" /tmp; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
  cat /sys/kernel/mm/transparent_hugepage/shmem_enabled /sys/kernel/mm/transparent_hugepage/enabled;
  uname -r; $PY -c 'import torch, safetensors, transformers; print(torch.__version__, safetensors.__version__, transformers.__version__)'; } > "$OUTD/machine.txt" 2>&1
head -3 "$OUTD/machine.txt" | tr '\n' ' '; echo

if has build; then
  log build
  (meson setup $B -Dgpu_tests=true -Dbuildtype=release >/dev/null && ninja -C $B) > "$OUTD/build.log" 2>&1 || { tail -30 "$OUTD/build.log"; exit 1; }
fi
if has tests; then
  log tests
  $B/tests/test_gpu --jobs=4 --filter 'gpu/weights*' > "$OUTD/tests.log" 2>&1
  $B/tests/test_weights --jobs=4 >> "$OUTD/tests.log" 2>&1
  grep -E "Synthesis|FAIL" "$OUTD/tests.log"
  $PY tests/python/test_weights_torch.py tree $B/src/libunimem-ffi.so > "$OUTD/torch.log" 2>&1
  echo "python: $(grep -c '^ok' "$OUTD/torch.log") ok, $(grep -c '^not ok' "$OUTD/torch.log") not ok"; grep -E "^not ok|^#" "$OUTD/torch.log" | head -5
fi
if has llama; then
  log llama
  [ -e "$DATA/llama/model.safetensors.index.json" ] || $PY bench/llama_check.py make "$DATA/llama" > "$OUTD/llama.log" 2>&1
  $PY bench/llama_check.py check "$DATA/llama" >> "$OUTD/llama.log" 2>&1
  grep -E "^(ok|FAIL|made)|Error" "$OUTD/llama.log"
fi
if has bench; then
  log bench 1.5 GB
  $PY bench/bench_weights.py --reps ${REPS:-3} --json "$OUTD/bench_llama.json" "$DATA/llama" > "$OUTD/bench_llama.md" 2> "$OUTD/bench_llama.err"
  cat "$OUTD/bench_llama.md"
fi
if has big; then
  log big
  [ -e "$DATA/big.safetensors" ] || $PY bench/llama_check.py big "$DATA/big.safetensors" ${BIG_GIB:-8} >> "$OUTD/big.log" 2>&1
  $PY bench/bench_weights.py --reps 1 --rows unimem_cuda,safetensors_cuda,raw_odirect,h2d_pinned \
    --json "$OUTD/bench_big.json" "$DATA/big.safetensors" > "$OUTD/bench_big.md" 2>> "$OUTD/big.log"
  cat "$OUTD/bench_big.md"
fi
if has block; then
  # 16 GiB Blocks, each a fresh process: 4 KiB pages; private Blocks (UNIMEM_BLOCK_PRIVATE,
  # anonymous memory: huge pages through anonymous THP, with the machine as lent); then
  # UNIMEM_BLOCK_HUGE through shmem transparent huge pages (shmem_enabled set to advise for
  # these runs only) and through a hugetlb pool (vm.nr_hugepages set for these runs only);
  # both are put back after.
  log block 16 GiB
  THP=/sys/kernel/mm/transparent_hugepage/shmem_enabled
  thp0=$(sed 's/.*\[\(.*\)\].*/\1/' $THP); hp0=$(cat /proc/sys/vm/nr_hugepages)
  trap 'echo $thp0 > $THP; echo $hp0 > /proc/sys/vm/nr_hugepages' EXIT
  block() { # pages mode threads huge [private]
    UNIMEM_GPU_MAP_THREADS=$3 $PY - "$@" <<'PYEOF' 2>&1 | tee -a "$OUTD/block.log"
import sys, time, unimem
pages, mode, threads, huge = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == '1'
private = len(sys.argv) > 5 and sys.argv[5] == '1'
keep = unimem.Block(1 << 20, pinned=False); keep.gpu_map()  # driver and context up first
n = 16 << 30
t0 = time.perf_counter(); b = unimem.Block(n, pinned=(mode == 'pinned'), huge=huge, private=private); t1 = time.perf_counter()
b.gpu_map(); t2 = time.perf_counter()
hp = [l.split()[1] for l in open('/proc/meminfo') if l.startswith(('ShmemHugePages', 'HugePages_Free', 'AnonHugePages'))]
print('16 GiB %-8s %-8s huge=%d private=%d map threads %2s: open %.3f s + map %.3f s = %.3f s, %5.1f GB/s  (AnonHugePages kB, ShmemHugePages kB, HugePages_Free: %s)'
      % (pages, mode, huge, private, threads, t1 - t0, t2 - t1, t2 - t0, n / (t2 - t0) / 1e9, ' '.join(hp)))
PYEOF
  }
  # BLOCK_QUICK=1: the default threads only, pinned and unpinned, each kind twice.
  if [ "${BLOCK_QUICK:-0}" = 1 ]; then k4="pinned 8 unpinned 8"; kp="pinned 8 unpinned 8 pinned 8 unpinned 8"; kt="pinned 8 unpinned 8 pinned 8 unpinned 8"; kh="pinned 8 unpinned 8 pinned 8"
  else k4="unpinned 8 pinned 8 pinned 1 unpinned 16"; kp="pinned 8 unpinned 8 pinned 16 pinned 8 unpinned 8"; kt="unpinned 8 pinned 8 pinned 1 unpinned 16 pinned 16 unpinned 8 pinned 8"; kh="pinned 8 unpinned 8 pinned 8"; fi
  set -- $k4; while [ $# -gt 1 ]; do block 4k $1 $2 0; shift 2; done
  block 4k pinned 8 0 1  # private, 4 KiB pages
  set -- $kp; while [ $# -gt 1 ]; do block anon-thp $1 $2 1 1; shift 2; done
  [ "${BLOCK_PRIVATE_ONLY:-0}" = 1 ] && kt= && kh=
  echo advise > $THP
  set -- $kt; while [ $# -gt 1 ]; do block thp $1 $2 1; shift 2; done
  echo $thp0 > $THP; echo 8200 > /proc/sys/vm/nr_hugepages; echo "hugetlb pool: $(cat /proc/sys/vm/nr_hugepages) pages" | tee -a "$OUTD/block.log"
  set -- $kh; while [ $# -gt 1 ]; do block hugetlb $1 $2 1; shift 2; done
  echo $hp0 > /proc/sys/vm/nr_hugepages; trap - EXIT
fi
if has net; then
  # Issue 17 on this host: UCX and ip(8) from Debian carried in .bench-carry/ucx (lib/: libucp,
  # libuct, libucs, libucm, libgomp, iproute2's libraries; bin/: ucx_perftest, ucx_info, ip).
  log net
  export LD_LIBRARY_PATH=$PWD/.bench-carry/ucx/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} PATH=$PWD/.bench-carry/ucx/bin:$PATH
  { command -v ip; ucx_info -v | head -2; } 2>&1 | tee "$OUTD/net.log"
  $B/tests/test_net --jobs=4 >> "$OUTD/net.log" 2>&1; grep -E "Synthesis|FAIL" "$OUTD/net.log"
  timeout 420 $B/bench/bench_net --rounds ${NET_ROUNDS:-3} > "$OUTD/bench_net.md" 2>> "$OUTD/net.log"; echo "bench_net rc $?"
  cat "$OUTD/bench_net.md"; ip netns list | head -3
fi
if has sweep; then
  log sweep threads x chunk, warm, 8 GiB
  $PY - "$DATA/big.safetensors" <<'PYEOF' 2>&1 | tee "$OUTD/sweep.log"
import os, sys, time, torch, unimem.torch
path = sys.argv[1]
size = os.path.getsize(path)
torch.zeros(1, device='cuda'); torch.cuda.synchronize()
unimem.torch.load_file(path, device='cuda')  # warm the cache and the allocator
for chunk in (4, 8, 16):
    for threads in (4, 8, 12, 16):
        os.environ['UNIMEM_WEIGHTS_CHUNK'] = str(chunk << 20)
        os.environ['UNIMEM_WEIGHTS_THREADS'] = str(threads)
        best = 1e9
        for _ in range(2):
            t0 = time.perf_counter(); out = unimem.torch.load_file(path, device='cuda')
            torch.cuda.synchronize(); best = min(best, time.perf_counter() - t0); del out
        print('chunk %2d MiB threads %2d: %.3f s %.1f GB/s' % (chunk, threads, best, size / best / 1e9))
PYEOF
fi
log done
# At most 8 files come back from the device tool: the small logs go into one.
(cd "$OUTD" && for f in machine.txt tests.log torch.log llama.log big.log block.log net.log sweep.log bench_llama.err; do
   [ -e $f ] && { echo "### $f"; cat $f; rm -f $f; }; done > details.txt)
