/* SPDX-License-Identifier: MIT */
/* The grid group's table of contenders, and the two that are always there: the generic
 * Grid and the mutex free list. Rivals that need a package live in files of their own. */
#include <unimem/unimem.h>

#include "grid_candidates.h"
#include "mutex_list.h"

#include <stdlib.h>

/* ---- unimem_grid, generic ------------------------------------------------------------ */

static int grid_open(void **pool, size_t cell, size_t cells)
{
	unimem_grid *g = NULL;
	int e = unimem_grid_open(&g, cell, cells);
	*pool = g;
	return e;
}

static void grid_close(void *pool)
{
	unimem_grid_close(pool);
}

static inline void *grid_take(unimem_grid *g)
{
	return unimem_grid_take(g);
}

static inline int grid_give(unimem_grid *g, void *p)
{
	return unimem_grid_give(g, p);
}

GRID_CANDIDATE_LOOP(grid_run, unimem_grid, grid_take, grid_give)

static const struct grid_candidate grid_unimem = {
	"unimem_grid_take + give (generic)", "unimem_grid_open",
	grid_open, grid_run, grid_close, true,
};

/* ---- mutex free list ----------------------------------------------------------------- */

static int mfl_open(void **pool, size_t cell, size_t cells)
{
	struct umb_mutex_list *f = malloc(sizeof *f);
	int e = f ? umb_mutex_list_init(f, cell, cells) : -ENOMEM;
	if (e) {
		free(f);
		f = NULL;
	}
	*pool = f;
	return e;
}

static void mfl_close(void *pool)
{
	if (pool)
		umb_mutex_list_fini(pool);
	free(pool);
}

GRID_CANDIDATE_LOOP(mfl_run, struct umb_mutex_list, umb_mutex_list_take, umb_mutex_list_give)

static const struct grid_candidate grid_mutex_list = {
	"mutex free list", "aligned_alloc", mfl_open, mfl_run, mfl_close, true,
};

/* ---- the table ------------------------------------------------------------------------ */

const struct grid_candidate *const grid_candidates[] = {
	&grid_unimem,
	&grid_mutex_list,
	NULL,
};
