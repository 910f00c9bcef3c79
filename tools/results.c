/* SPDX-License-Identifier: MIT */
/* `unimem bench`: the run's results, the groups measured so far, and their bookkeeping
 * (the groups' files fill them, report.c prints them; this file calls neither). */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct group groups[MAX_GROUPS];
int ngroups;
const struct bench_options *opt;
struct allocator allocs[ALLOC_COUNT];

void progress(const char *fmt, ...)
{
	if (opt->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("unimem bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

struct group *group_new(const char *id, const char *unit, int nmetric)
{
	struct group *g = &groups[ngroups++];
	memset(g, 0, sizeof *g);
	g->id = id;
	g->unit = unit;
	g->nmetric = nmetric;
	g->metric[0] = "time";
	g->base = -1;
	return g;
}

struct row *row_new(struct group *g, const char *name)
{
	struct row *r = &g->rows[g->nrows++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	return r;
}

void row_skip(struct row *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	r->skipped = true;
	vsnprintf(r->note, sizeof r->note, fmt, ap);
	va_end(ap);
}

/* Close a group's measured rows: the statistics of samples[k] for each row that ran, or a
 * skip saying `why` for a row whose run failed. */
void rows_finish(struct group *g, int n, double samples[][MAX_REPS], const bool *bad,
			int reps, const char *why)
{
	for (int k = 0; k < n; k++) {
		if (g->rows[k].skipped)
			continue;
		if (bad[k])
			row_skip(&g->rows[k], "%s", why);
		else
			g->rows[k].m[0] = umb_stats_of(samples[k], reps);
	}
}

/* Median of row's metric, or NaN when skipped. */
double med(const struct group *g, int row, int metric)
{
	if (!g || row < 0 || row >= g->nrows || g->rows[row].skipped)
		return NAN;
	return g->rows[row].m[metric].median;
}

double ratio(const struct group *g, int row, int metric)
{
	return med(g, row, metric) / med(g, g->base, metric);
}
