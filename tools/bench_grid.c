/* SPDX-License-Identifier: MIT */
/* `unimem bench` group: the Grid's take + give beside its rivals (grid_candidates.c) and
 * the malloc families, one thread. */
#include <unimem/unimem.h>

#include "bench.h"
#include "grid_candidates.h"

#include <stdio.h>

void bench_grid(int reps, long batches)
{
	const size_t cell = 64, cells = 4096;
	struct group *g = group_new("grid", "ns", 1);
	snprintf(g->title, sizeof g->title, "Grid take + give (%zu B cells)", cell);
	snprintf(g->note, sizeof g->note,
		 "per take+give pair: %d takes then %d gives. Ratios: row / unimem_grid.", BATCH,
		 BATCH);
	g->base = 0;
	int nc = 0;
	void *pool[MAX_ROWS] = { NULL };
	for (; grid_candidates[nc] && nc < MAX_ROWS - ALLOC_COUNT; nc++) {
		const struct grid_candidate *c = grid_candidates[nc];
		struct row *r = row_new(g, c->name);
		int e = c->open(&pool[nc], cell, cells);
		if (e)
			row_skip(r, "%s failed: %s", c->opened_by, unimem_strerror(e));
	}
	int n = nc + ALLOC_COUNT;
	for (int a = 0; a < ALLOC_COUNT; a++) {
		struct row *r = row_new(g, allocs[a].name);
		if (!allocs[a].present)
			row_skip(r, "%s: skipped", allocs[a].note);
	}
	static double s[MAX_ROWS][MAX_REPS];
	bool bad[MAX_ROWS] = { false };
	void *ptr[BATCH];
	for (int r = -2; r < reps; r++) {
		if (r == -2)
			progress("grid: %d repetitions", reps);
		for (int j = 0; j < n; j++) {
			int k = (j + r + 2) % n;
			if (g->rows[k].skipped)
				continue;
			long m = r < 0 ? batches / 4 + 1 : batches;
			bool ok = true;
			double t0 = umb_now_ns();
			if (k < nc)
				ok = grid_candidates[k]->run(pool[k], ptr, m);
			else
				tb_malloc(&allocs[k - nc], ptr, m);
			double t1 = umb_now_ns();
			bad[k] |= !ok;
			if (r >= 0)
				s[k][r] = (t1 - t0) / ((double)batches * BATCH);
		}
	}
	rows_finish(g, n, s, bad, reps, "a take or give failed");
	for (int k = 0; k < nc; k++)
		if (pool[k])
			grid_candidates[k]->close(pool[k]);
}
