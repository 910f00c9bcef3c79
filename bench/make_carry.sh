#!/bin/bash
# SPDX-License-Identifier: MIT
# Assemble .bench-carry/ on this Debian 12 machine for the GPU machine (device tool), which
# has none of the rivals installed: the DPDK plugin of `unimem bench` and the libraries it
# needs (lib/), ck's headers (include/), jemalloc, mimalloc and tcmalloc (lib/), and UCX with
# ucx_perftest, ucx_info and ip(8) and their libraries (ucx/). bench/carry_env.sh and
# bench/weights_device.sh use them there. Needs the packages of the README's test command
# and a build of the tools (default: build/, or the directory given). About 7 MiB.
#   bash bench/make_carry.sh [BUILD_DIR]
set -eu
B=${1:-build}
C=.bench-carry
L=/usr/lib/x86_64-linux-gnu
[ -f "$B/tools/unimem-bench-dpdk.so" ] || { echo "no $B/tools/unimem-bench-dpdk.so: build with libdpdk-dev installed" >&2; exit 1; }
mkdir -p $C/lib $C/include $C/ucx/bin $C/ucx/lib/ucx
# The libraries a binary needs, beside the C library's own (the device machine has those).
deps() { ldd "$@" | awk '/=>/ { print $3 }' | sort -u |
	grep -v -E '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s)\.so|ld-linux'; }
cp "$B/tools/unimem-bench-dpdk.so" $C/
cp -L $L/librte_mempool_ring.so.23 $C/lib/
for f in $(deps $C/unimem-bench-dpdk.so $C/lib/librte_mempool_ring.so.23); do cp -L "$f" $C/lib/; done
cp -L $L/libjemalloc.so.2 $L/libmimalloc.so.2 $L/libtcmalloc_minimal.so.4 $C/lib/
for d in $(dpkg -L libck-dev | sed -n 's|^/usr/include/\([^/]*\).*|\1|p' | sort -u); do
	cp -r "/usr/include/$d" $C/include/
done
cp -L $L/libucp.so.0 $L/libuct.so.0 $L/libucs.so.0 $L/libucm.so.0 $C/ucx/lib/
cp -L $L/ucx/libuct_cma.so.0 $C/ucx/lib/ucx/
cp "$(command -v ucx_perftest)" "$(command -v ucx_info)" $C/ucx/bin/
cp -L "$(command -v ip)" $C/ucx/bin/
for f in $(deps $C/ucx/bin/* $C/ucx/lib/*.so.0 $C/ucx/lib/ucx/*.so.0); do
	[ -e "$C/ucx/lib/$(basename "$f")" ] || cp -L "$f" $C/ucx/lib/
done
du -sh $C
