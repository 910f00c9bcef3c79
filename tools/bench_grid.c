/* SPDX-License-Identifier: MIT */
/* `unimem bench` Grid groups: the Grid's take + give beside its rivals (grid_candidates.c,
 * grid_queues.c, the DPDK plugin) and the malloc families, in the patterns of issue 15:
 *   grid           1 thread, bursts of BATCH takes then BATCH gives, 64 B x 4096
 *   grid_pairs     1 thread, take+give pairs, 64 B x 4096 (and 4 KiB x 256: grid_pairs_4k)
 *   grid_2t        2 threads, pairs on one 64 B x 4096 pool
 *   grid_2t_4k     2 threads, pairs on one 4 KiB x 256 pool
 *   grid_pc        a producer thread takes, a consumer thread gives (cells cross threads)
 *   grid_nt        every CPU, pairs on one 64 B x 4096 pool (where there are more than 2),
 *                  with each row's scaling over its own one-thread pairs
 * Threads are the pinned workers of workers.c; ns per operation per thread, wall clock. */
#include <unimem/unimem.h>

#include "bench.h"
#include "grid_candidates.h"
#include "workers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum kind { BURST, PAIRS, PRODCONS };

struct pattern {
	const char *id;
	const char *what;
	size_t cell, cells;
	int threads;
	enum kind kind;
};

struct job {
	const struct grid_candidate *c;
	void *pool;
	long n;
	enum kind kind;
	struct umb_spsc *q;
	void **ptr[WORKERS_MAX];
};

static bool job_run(void *ctx, int w, int n)
{
	struct job *j = ctx;
	(void)n;
	switch (j->kind) {
	case BURST:
		return j->c->burst(j->pool, j->ptr[w], j->n);
	case PAIRS:
		return j->c->pairs(j->pool, j->n);
	case PRODCONS:
		return w == 0 ? j->c->produce(j->pool, j->q, j->n) : j->c->consume(j->pool, j->q, j->n);
	}
	return false;
}

static const struct grid_candidate *rows_of[MAX_ROWS];
static int nrows_of;
static const char *plugin_why;

static void candidates(void)
{
	if (nrows_of)
		return;
	grid_candidates_name_heaps();
	for (int i = 0; grid_candidates[i] && nrows_of < MAX_ROWS; i++)
		rows_of[nrows_of++] = grid_candidates[i];
	const struct grid_candidate *const *p = grid_plugin_candidates(&plugin_why);
	for (; *p && nrows_of < MAX_ROWS; p++)
		rows_of[nrows_of++] = *p;
}

/* One timed run: ns per operation per thread, or NaN when it failed. */
static double time_run(struct job *j, int threads)
{
	if (j->q)
		umb_spsc_reset(j->q);
	double ns = workers_run(threads, job_run, j);
	if (ns < 0)
		return NAN;
	double ops = (double)j->n * (j->kind == BURST ? BATCH : 1);
	return ns / ops;
}

static struct group *measure(const struct pattern *pt, int reps, double target_ms)
{
	struct group *g = group_new(pt->id, "ns", 1);
	snprintf(g->title, sizeof g->title, "Grid: %s", pt->what);
	const char *per = pt->kind == PRODCONS ? "per cell (taken on one thread, given on another)"
			  : pt->kind == BURST	  ? "per take+give (1000 takes, then 1000 gives)"
						  : "per take+give pair, per thread";
	snprintf(g->note, sizeof g->note, "%s, %zu B x %zu cells, %d thread%s%s. Ratios: row / "
		 "first row (above 1: the Grid is faster).%s%s", per, pt->cell, pt->cells,
		 pt->threads, pt->threads > 1 ? "s" : "",
		 pt->threads > 1 && !workers_pinned() ? " (NOT pinned)" : "",
		 plugin_why ? " " : "", plugin_why ? plugin_why : "");
	g->base = 0;
	void *pool[MAX_ROWS] = { NULL };
	long n[MAX_ROWS];
	bool bad[MAX_ROWS] = { false };
	static double s[MAX_ROWS][MAX_REPS];
	struct umb_spsc *q = pt->kind == PRODCONS ? aligned_alloc(64, sizeof *q) : NULL;
	static void *ptrbuf[WORKERS_MAX][BATCH];
	for (int k = 0; k < nrows_of; k++) {
		const struct grid_candidate *c = rows_of[k];
		struct row *r = row_new(g, c->name);
		const char *why = c->absent ? c->absent() : NULL;
		n[k] = pt->kind == BURST ? 20 : 20000;
		if (why) {
			row_skip(r, "%s", why);
			continue;
		}
		if (pt->threads > 1 && !c->shared) {
			row_skip(r, "not thread-safe");
			continue;
		}
		if (pt->kind == PRODCONS && !q) {
			row_skip(r, "out of memory");
			continue;
		}
		int e = c->open(&pool[k], pt->cell, pt->cells);
		if (e == -ENOTSUP) /* not in this build */
			row_skip(r, "%s", c->opened_by);
		else if (e)
			row_skip(r, "%s failed: %s", c->opened_by, unimem_strerror(e));
	}
	if (g->rows[0].skipped && nrows_of > 2 && !g->rows[2].skipped)
		g->base = 2; /* no generated pool of this shape: the generic Grid */
	progress("%s: %d repetitions", pt->id, reps);
	for (int r = -2; r < reps; r++) {
		for (int j = 0; j < nrows_of; j++) {
			int k = (j + r + 2) % nrows_of;
			if (g->rows[k].skipped || bad[k])
				continue;
			struct job jb = { rows_of[k], pool[k], n[k], pt->kind, q, { NULL } };
			for (int w = 0; w < pt->threads; w++)
				jb.ptr[w] = ptrbuf[w];
			double t = time_run(&jb, pt->threads);
			if (!isfinite(t)) {
				bad[k] = true;
				continue;
			}
			if (r == -2) { /* calibrate: each run about target_ms */
				double ops = target_ms * 1e6 / (t > 0.05 ? t : 0.05);
				if (pt->kind == BURST)
					ops /= BATCH;
				n[k] = ops < 2 ? 2 : ops > 5e7 ? 50000000 : (long)ops;
			}
			if (r >= 0)
				s[k][r] = t;
		}
	}
	rows_finish(g, nrows_of, s, bad, reps, "a take found nothing or a give was refused");
	for (int k = 0; k < nrows_of; k++)
		if (pool[k])
			rows_of[k]->close(pool[k]);
	free(q);
	return g;
}

void bench_grid(int reps, bool quick)
{
	candidates();
	double ms = quick ? 1.5 : 4;
	int cpus = workers_cpus();
	static const struct pattern burst = { "grid", "1 thread, bursts", 64, 4096, 1, BURST };
	static const struct pattern one = { "grid_pairs", "1 thread, take+give pairs", 64, 4096, 1, PAIRS };
	static const struct pattern one4k = { "grid_pairs_4k", "1 thread, take+give pairs, 4 KiB cells",
					      4096, 256, 1, PAIRS };
	static const struct pattern two = { "grid_2t", "2 threads, 4096-cell pool", 64, 4096, 2, PAIRS };
	static const struct pattern two4k = { "grid_2t_4k", "2 threads, 256 x 4 KiB pool", 4096, 256,
					      2, PAIRS };
	static const struct pattern pc = { "grid_pc", "producer/consumer (cells cross threads)", 64,
					   4096, 2, PRODCONS };
	measure(&burst, reps, ms);
	struct group *g1 = measure(&one, reps, ms);
	measure(&one4k, reps, ms);
	if (cpus < 2) {
		progress("grid: one CPU: no patterns with threads");
		return;
	}
	measure(&two, reps, ms);
	measure(&two4k, reps, ms);
	measure(&pc, reps, ms);
	if (cpus <= 2)
		return;
	static char what[64];
	struct pattern all = { "grid_nt", what, 64, 4096, cpus < WORKERS_MAX ? cpus : WORKERS_MAX, PAIRS };
	snprintf(what, sizeof what, "%d threads, 4096-cell pool", all.threads);
	struct group *gn = measure(&all, reps, ms);
	/* Scaling: N threads' throughput over one thread's, each row over its own. */
	for (int k = 0; k < gn->nrows; k++) {
		double t1 = med(g1, k, 0), tn = med(gn, k, 0);
		if (isfinite(t1) && isfinite(tn) && tn > 0)
			snprintf(gn->rows[k].note, sizeof gn->rows[k].note, "%.1fx one thread's throughput",
				 all.threads * t1 / tn);
	}
}
