/* SPDX-License-Identifier: MIT */
/* `unimem bench`: what its groups and its report share.
 *
 * A group is a table of rows (contenders) with up to MAX_METRICS measured metrics each;
 * each bench_*() function below measures one group (two for bench_block_bandwidth) and
 * appends it to groups[]. report.c prints them. */
#ifndef UNIMEM_TOOLS_BENCH_H
#define UNIMEM_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "harness.h"

#define MAX_ROWS 16
#define MAX_METRICS 3
#define MAX_REPS 64
#define MAX_GROUPS 24
#define BATCH 1000          /* allocations a batch: 1000 takes/mallocs, then clear/frees */
#define TAKE_SIZE 64
#define TAKE_ALIGN 16

struct row {
	char name[80];
	char note[320];
	bool skipped;
	struct umb_stats m[MAX_METRICS];
};

struct group {
	const char *id;
	char title[160];
	const char *unit;
	const char *metric[MAX_METRICS];
	int nmetric;
	int base;            /* the row that ratios divide by; -1: none */
	bool higher_better;  /* bandwidth */
	bool skipped;
	char note[320];
	int nrows;
	struct row rows[MAX_ROWS];
};

/* The run: its options, the groups measured so far, the malloc families (results.c). */
extern const struct bench_options *opt;
extern struct group groups[MAX_GROUPS];
extern int ngroups;
extern struct allocator allocs[ALLOC_COUNT];

/* Bookkeeping (results.c). */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct group *group_new(const char *id, const char *unit, int nmetric);
struct row *row_new(struct group *g, const char *name);
void row_skip(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Close a group's measured rows: the statistics of samples[k] for each row that ran, or a
 * skip saying `why` for a row whose run failed. */
void rows_finish(struct group *g, int n, double samples[][MAX_REPS], const bool *bad, int reps,
		 const char *why);
/* Median of row's metric, or NaN when skipped; ratio: that over the base row's. */
double med(const struct group *g, int row, int metric);
double ratio(const struct group *g, int row, int metric);

/* The groups. */
void bench_block(size_t mib, int reps, int warm);                 /* bench_block.c */
void bench_bandwidth(size_t mib, int reps, int instances);        /* bench_block.c */
void bench_tape(int reps, long batches);                          /* bench_tape.c */
/* nthreads threads on one Tape (2..64) */
void bench_threads(int reps, long batches, int nthreads);         /* bench_tape.c */
void bench_clear(int reps, long n8);                              /* bench_tape.c */
void bench_grid(int reps, bool quick);                            /* bench_grid.c */
void bench_grid_procs(int reps, bool quick);                      /* bench_grid_procs.c */

/* `batches` times: BATCH mallocs of TAKE_SIZE bytes, then BATCH frees (bench_tape.c). */
void tb_malloc(const struct allocator *a, void **ptr, long batches);

/* The report (report.c): tables on stdout, or one JSON object. */
void report_text(const struct machine *start, const struct machine *end, double secs);
void report_json(const struct machine *start, const struct machine *end, double secs);

#endif
