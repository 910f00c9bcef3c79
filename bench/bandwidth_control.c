/* SPDX-License-Identifier: MIT */
/* Control for the bandwidth rows of unimem bench: the same procedure (4 buffers of each
 * kind, made in rotating order, 12 rotating repetitions of read then memset) with two
 * groups of each kind, so the spread between like and like shows.
 *   cc -O2 -Ibench -Iinclude -Ibuild/include bench/bandwidth_control.c -Lbuild/src -lunimem */
#define _GNU_SOURCE
#include <unimem/unimem.h>
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static __attribute__((noinline)) uint64_t rs(const uint64_t *p, size_t n)
{
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = 0; i + 4 <= n; i += 4) {
		a += p[i];
		b += p[i + 1];
		c += p[i + 2];
		d += p[i + 3];
	}
	return a + b + c + d;
}
/* kinds: 0 Block, 1 malloc, 2 Block, 3 malloc */
int main()
{
	size_t size = 256 << 20;
	enum { I = 4, K = 4, R = 12 };
	unsigned char *buf[K][I];
	for (int i = 0; i < I; i++)
		for (int k0 = 0; k0 < K; k0++) {
			int k = (k0 + i) % K;
			if (k % 2 == 0) {
				unimem_block *b;
				unimem_block_open(&b, size, 0);
				buf[k][i] = unimem_block_ptr(b);
			} else {
				buf[k][i] = malloc(size);
			}
			memset(buf[k][i], 1, size);
		}
	double s[K][R];
	for (int r = -1; r < R; r++) {
		int inst = (r + I) % I;
		for (int j = 0; j < K; j++) {
			int k = (j + r + 1) % K;
			unsigned char *p = buf[k][inst];
			double t0 = umb_now_ns();
			uint64_t x = rs((uint64_t *)p, size / 8);
			UMB_USE(x);
			double t1 = umb_now_ns();
			memset(p, r & 0x7f, size);
			UMB_CLOBBER();
			if (r >= 0)
				s[k][r] = size / (t1 - t0);
		}
	}
	const char *nm[K] = {"Block A", "malloc A", "Block B", "malloc B"};
	for (int k = 0; k < K; k++) {
		struct umb_stats st = umb_stats_of(s[k], R);
		printf("%-9s %.1f (%.1f..%.1f)\n", nm[k], st.median, st.min, st.max);
	}
}
