# SPDX-License-Identifier: MIT
# Sourced by the device scripts: the rivals carried in .bench-carry/ (the DPDK plugin and
# its libraries, ck's headers, the mallocs), for machines where none are installed;
# bench/make_carry.sh assembles it on Debian 12.
C=$PWD/.bench-carry
if [ -d "$C" ]; then
	export CPATH=$C/include${CPATH:+:$CPATH} LD_LIBRARY_PATH=$C/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export UNIMEM_BENCH_PLUGINS=$C
fi
