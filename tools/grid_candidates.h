/* SPDX-License-Identifier: MIT */
/* The contenders of `unimem bench`'s grid group: fixed-size cell pools, each measured as
 * BATCH takes then BATCH gives, `batches` times, on one thread (bench_grid.c).
 *
 * Adding a rival is adding an entry: a file that defines one `struct grid_candidate`
 * (GRID_CANDIDATE_LOOP builds its timed loop from inline take and give functions, so that
 * no call through a pointer is timed), its name in grid_candidates[] (grid_candidates.c),
 * and the file in tools/meson.build (behind the dependency it needs, if any). */
#ifndef UNIMEM_TOOLS_GRID_CANDIDATES_H
#define UNIMEM_TOOLS_GRID_CANDIDATES_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

struct grid_candidate {
	const char *name;        /* the row's name */
	const char *opened_by;   /* what open calls, for the note when it fails */
	/* A pool of `cells` free cells of `cell` bytes (a multiple of 64) in *pool: 0 or a
	 * negative errno (the row is then skipped, saying why). */
	int (*open)(void **pool, size_t cell, size_t cells);
	/* `batches` times: BATCH takes into ptr[0..BATCH), then their BATCH gives. False when
	 * a take found nothing or a give was refused. */
	bool (*run)(void *pool, void **ptr, long batches);
	void (*close)(void *pool);
	/* Take and give may run on several threads at once on one pool (for the patterns
	 * with threads; the group today measures one thread). */
	bool shared;
};

/* NULL-terminated, the base row (the Grid) first. */
extern const struct grid_candidate *const grid_candidates[];

/* static bool fn(void *pool, void **ptr, long batches), over inline
 * void *take(type *pool) and int give(type *pool, void *cell) (0: given back). */
#define GRID_CANDIDATE_LOOP(fn, type, take, give)                                         \
	static __attribute__((noinline)) bool fn(void *pool_, void **ptr, long batches)   \
	{                                                                                 \
		type *pool = pool_;                                                       \
		int err = 0;                                                              \
		for (long k = 0; k < batches; k++) {                                      \
			for (int i = 0; i < BATCH; i++) {                                 \
				void *p = take(pool);                                     \
				UMB_OPAQUE(p);                                            \
				ptr[i] = p;                                               \
			}                                                                 \
			UMB_CLOBBER();                                                    \
			for (int i = 0; i < BATCH; i++)                                   \
				err |= give(pool, ptr[i]);                                \
			UMB_CLOBBER();                                                    \
		}                                                                         \
		return err == 0 && ptr[BATCH - 1] != NULL;                                \
	}

#endif
