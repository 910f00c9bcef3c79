/* SPDX-License-Identifier: MIT */
/* `unimem bench` groups over the Block: open + close against malloc and mmap, and read
 * and write bandwidth against malloc memory. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "bench.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

enum { BK_PINNED, BK_UNPINNED, BK_MALLOC, BK_POPULATE, BK_ANCHOR, BK_N };

static const char *const bk_names[BK_N] = {
	"unimem_block_open (pinned)",
	"unimem_block_open UNPINNED (lazy)",
	"malloc + memset",
	"mmap + MAP_POPULATE",
	"mmap + MAP_POPULATE + mlock (anchor)",
};

struct bk {
	unimem_block *b;
	void *p;
};

static int bk_open(int k, struct bk *h, size_t size)
{
	switch (k) {
	case BK_PINNED:
		return unimem_block_open(&h->b, size, 0);
	case BK_UNPINNED:
		return unimem_block_open(&h->b, size, UNIMEM_BLOCK_UNPINNED);
	case BK_MALLOC:
		h->p = malloc(size);
		if (!h->p)
			return -ENOMEM;
		UMB_OPAQUE(h->p); /* or the compiler turns malloc + memset into calloc */
		memset(h->p, 0, size);
		UMB_USE(h->p);
		UMB_CLOBBER(); /* the memset is not dead */
		return 0;
	case BK_POPULATE:
	case BK_ANCHOR:
		h->p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (h->p == MAP_FAILED)
			return -errno;
		if (k == BK_ANCHOR && mlock(h->p, size) != 0) {
			int err = errno == ENOMEM || errno == EAGAIN ? -EPERM : -errno;
			munmap(h->p, size);
			return err;
		}
		return 0;
	}
	return -EINVAL;
}

static void bk_close(int k, struct bk *h, size_t size)
{
	switch (k) {
	case BK_PINNED:
	case BK_UNPINNED:
		unimem_block_close(h->b);
		break;
	case BK_MALLOC:
		free(h->p);
		break;
	default:
		munmap(h->p, size);
	}
}

void bench_block(size_t mib, int reps, int warm)
{
	static char id[2][32];
	char *gid = id[mib > 16];
	snprintf(gid, 32, "block_open_%zumib", mib);
	struct group *g = group_new(gid, "ms", 3);
	snprintf(g->title, sizeof g->title, "Block open + close, %zu MiB", mib);
	g->metric[0] = "open";
	g->metric[1] = "close";
	g->metric[2] = "open+close";
	g->base = BK_ANCHOR;
	snprintf(g->note, sizeof g->note,
		 "open: from nothing to zeroed memory of this size (pinned rows: resident and "
		 "locked); close: give it all back. Ratios: row / anchor.");
	size_t size = mib << 20;
	static double s[BK_N][3][MAX_REPS];
	int err[BK_N] = { 0 };
	for (int k = 0; k < BK_N; k++)
		row_new(g, bk_names[k]);
	for (int r = -warm; r < reps; r++) {
		progress("block open+close %zu MiB: %s %d of %d", mib, r < 0 ? "warm-up" : "repetition",
			 r < 0 ? r + warm + 1 : r + 1, r < 0 ? warm : reps);
		for (int j = 0; j < BK_N; j++) {
			int k = (j + r + warm) % BK_N; /* rotate the order */
			if (err[k])
				continue;
			struct bk h = { NULL, NULL };
			double t0 = umb_now_ns();
			int e = bk_open(k, &h, size);
			double t1 = umb_now_ns();
			if (e) {
				err[k] = e;
				continue;
			}
			bk_close(k, &h, size);
			double t2 = umb_now_ns();
			if (r >= 0) {
				s[k][0][r] = (t1 - t0) / 1e6;
				s[k][1][r] = (t2 - t1) / 1e6;
				s[k][2][r] = (t2 - t0) / 1e6;
			}
		}
	}
	for (int k = 0; k < BK_N; k++) {
		if (err[k] == -EPERM && k == BK_ANCHOR) {
			struct rlimit rl;
			getrlimit(RLIMIT_MEMLOCK, &rl);
			row_skip(&g->rows[k], "failed: mlock refused by RLIMIT_MEMLOCK (%llu bytes)",
				 (unsigned long long)rl.rlim_cur);
			continue;
		}
		if (err[k]) {
			row_skip(&g->rows[k], "failed: %s", unimem_strerror(err[k]));
			continue;
		}
		for (int m = 0; m < 3; m++)
			g->rows[k].m[m] = umb_stats_of(s[k][m], reps);
	}
	snprintf(g->rows[BK_UNPINNED].note, sizeof g->rows[BK_UNPINNED].note,
		 "lazy: no page is faulted until first touch");
	/* glibc raises its mmap threshold after freeing a mapped chunk (up to 32 MiB on
	 * 64-bit): smaller buffers then come back from the heap, already resident. */
	if (mib <= 32 && !err[BK_MALLOC])
		snprintf(g->rows[BK_MALLOC].note, sizeof g->rows[BK_MALLOC].note,
			 "glibc reuses the freed heap: memset of resident pages, no faults");
}

/* ---- bandwidth ---------------------------------------------------------------------- */

static __attribute__((noinline)) uint64_t read_sum(const uint64_t *p, size_t n)
{
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	for (size_t i = 0; i + 4 <= n; i += 4) {
		a0 += p[i];
		a1 += p[i + 1];
		a2 += p[i + 2];
		a3 += p[i + 3];
	}
	return a0 + a1 + a2 + a3;
}

#define BW_MAX_INSTANCES 4

/* Several buffers of each kind, used in turn: in these VMs the bandwidth of a buffer
 * depends on where its pages land (measured: 15 to 29 GB/s for buffers of one kind, best
 * of 5 reads each), more than on the kind of buffer. */
void bench_bandwidth(size_t mib, int reps, int instances)
{
	struct group *rd = group_new("read_bandwidth", "GB/s", 1);
	struct group *wr = group_new("write_bandwidth", "GB/s", 1);
	snprintf(rd->title, sizeof rd->title, "Read bandwidth, %zu MiB", mib);
	snprintf(wr->title, sizeof wr->title, "Write bandwidth (memset), %zu MiB", mib);
	snprintf(rd->note, sizeof rd->note,
		 "sum of 64-bit words, 4 accumulators, over %d buffers of each kind in turn; "
		 "higher is better. Ratios: row / malloc.", instances);
	snprintf(wr->note, sizeof wr->note,
		 "glibc memset over the whole buffer, %d buffers of each kind in turn; higher is "
		 "better. Ratios: row / malloc.", instances);
	rd->higher_better = wr->higher_better = true;
	rd->base = wr->base = 1;
	size_t size = mib << 20;
	unimem_block *b[BW_MAX_INSTANCES] = { NULL };
	unsigned char *m[BW_MAX_INSTANCES] = { NULL };
	const char *bname = "unimem Block (pinned)";
	int e = 0;
	for (int i = 0; i < instances && !e; i++) {
		/* Alternate which kind is made first: recently freed memory comes back first. */
		if (i % 2)
			m[i] = malloc(size);
		e = unimem_block_open(&b[i], size, 0);
		if (e) {
			e = unimem_block_open(&b[i], size, UNIMEM_BLOCK_UNPINNED);
			bname = "unimem Block (unpinned: pinning refused)";
		}
		if (i % 2 == 0)
			m[i] = malloc(size);
		if (!e && !m[i])
			e = -ENOMEM;
	}
	row_new(rd, bname);
	row_new(rd, "malloc memory");
	row_new(wr, bname);
	row_new(wr, "malloc memory");
	if (e) {
		rd->skipped = wr->skipped = true;
		snprintf(rd->note, sizeof rd->note, "no buffers: %s", unimem_strerror(e));
		memcpy(wr->note, rd->note, sizeof wr->note);
		for (int i = 0; i < instances; i++) {
			unimem_block_close(b[i]);
			free(m[i]);
		}
		return;
	}
	for (int i = 0; i < instances; i++) {
		memset(unimem_block_ptr(b[i]), 1, size); /* also faults an unpinned Block in */
		memset(m[i], 1, size);
	}
	static double sr[2][MAX_REPS], sw[2][MAX_REPS];
	for (int r = -1; r < reps; r++) {
		progress("bandwidth %zu MiB: %s %d of %d", mib, r < 0 ? "warm-up" : "repetition",
			 r < 0 ? 1 : r + 1, r < 0 ? 1 : reps);
		int inst = (r + instances) % instances;
		for (int j = 0; j < 2; j++) {
			int k = (j + r + 1) % 2;
			unsigned char *p = k == 0 ? unimem_block_ptr(b[inst]) : m[inst];
			double t0 = umb_now_ns();
			uint64_t sum = read_sum((const uint64_t *)p, size / 8);
			UMB_USE(sum);
			double t1 = umb_now_ns();
			memset(p, r & 0x7f, size);
			UMB_USE(p);
			UMB_CLOBBER();
			double t2 = umb_now_ns();
			if (r >= 0) {
				sr[k][r] = (double)size / (t1 - t0);
				sw[k][r] = (double)size / (t2 - t1);
			}
		}
	}
	for (int k = 0; k < 2; k++) {
		rd->rows[k].m[0] = umb_stats_of(sr[k], reps);
		wr->rows[k].m[0] = umb_stats_of(sw[k], reps);
	}
	for (int i = 0; i < instances; i++) {
		unimem_block_close(b[i]);
		free(m[i]);
	}
}

