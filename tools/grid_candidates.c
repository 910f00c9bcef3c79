/* SPDX-License-Identifier: MIT */
/* The Grid groups' table of contenders, and those that are always there: the generated
 * Grid (checked and unchecked give), the generic Grid, the mutex free list and the malloc
 * families. Rivals that need a package live in files of their own. */
#include <unimem/unimem.h>
#include <unimem/grids.h>

#include "grid_candidates.h"
#include "mutex_list.h"

#include <stdlib.h>

/* ---- unimem_grid, generated: the shapes the patterns use (bench_grid.c) ---------------- */

/* The shapes' loops (GRID_CANDIDATE_LOOPS over each generated pool's inline take and
 * give), checked and unchecked: `burst`..`consume` of a struct grid_candidate. */
#define GEN_SHAPE(name, T)                                                                \
	static inline void *name##_take(T *g) { return T##_take(g); }                     \
	static inline int name##_give(T *g, void *p) { return T##_give(g, p); }           \
	static inline int name##_giveu(T *g, void *p) { return T##_give_unchecked(g, p); } \
	GRID_CANDIDATE_LOOPS(name##_c, T, name##_take, name##_give)                       \
	GRID_CANDIDATE_LOOPS(name##_u, T, name##_take, name##_giveu)                      \
	static const struct grid_candidate name##_loops[2] = {                            \
		{ GRID_CANDIDATE_FNS(name##_c) }, { GRID_CANDIDATE_FNS(name##_u) },       \
	};

#ifdef UNIMEM_GRID_64X4096_CELL
GEN_SHAPE(g64, unimem_grid_64x4096)
#endif
#ifdef UNIMEM_GRID_4096X256_CELL
GEN_SHAPE(g4k, unimem_grid_4096x256)
#endif

/* The generated pool of the pattern's shape, when this build generated it (-Dgrids), and
 * the loops of that shape (checked or unchecked give). */
struct gen_pool {
	const struct grid_candidate *loops;
	void *g;
};

static int gen_open(void **pool, size_t cell, size_t cells, int unchecked)
{
	struct gen_pool *p = calloc(1, sizeof *p);
	int e = p ? -ENOTSUP : -ENOMEM;
	*pool = NULL;
	(void)cell, (void)cells, (void)unchecked; /* unused when -Dgrids has neither shape */
#ifdef UNIMEM_GRID_64X4096_CELL
	if (p && cell == 64 && cells == 4096) {
		p->loops = &g64_loops[unchecked];
		e = unimem_grid_64x4096_open((unimem_grid_64x4096 **)&p->g);
	}
#endif
#ifdef UNIMEM_GRID_4096X256_CELL
	if (p && cell == 4096 && cells == 256) {
		p->loops = &g4k_loops[unchecked];
		e = unimem_grid_4096x256_open((unimem_grid_4096x256 **)&p->g);
	}
#endif
	if (e) {
		free(p);
		return e;
	}
	*pool = p;
	return 0;
}

static int genc_open(void **pool, size_t cell, size_t cells)
{
	return gen_open(pool, cell, cells, 0);
}

static int genu_open(void **pool, size_t cell, size_t cells)
{
	return gen_open(pool, cell, cells, 1);
}

static void gen_close(void *pool)
{
	struct gen_pool *p = pool;
	if (p)
		unimem_grid_close(p->g); /* a generated pool is one generic Grid (its ABI) */
	free(p);
}

/* One call through a pointer per run, not per take: the timed loops are the shape's. */
static bool gen_burst(void *pool, void **ptr, long b)
{
	const struct gen_pool *p = pool;
	return p->loops->burst(p->g, ptr, b);
}

static bool gen_pairs(void *pool, long n)
{
	const struct gen_pool *p = pool;
	return p->loops->pairs(p->g, n);
}

static bool gen_produce(void *pool, struct umb_spsc *q, long n)
{
	const struct gen_pool *p = pool;
	return p->loops->produce(p->g, q, n);
}

static bool gen_consume(void *pool, struct umb_spsc *q, long n)
{
	const struct gen_pool *p = pool;
	return p->loops->consume(p->g, q, n);
}

static const struct grid_candidate grid_generated = {
	.name = "unimem Grid, generated (checked give)",
	.opened_by = "unimem_grid_<shape>_open (-Dgrids has no pool of this shape)",
	.open = genc_open, .close = gen_close, GRID_CANDIDATE_FNS(gen), .shared = true,
};

static const struct grid_candidate grid_generated_unchecked = {
	.name = "unimem Grid, generated, give_unchecked",
	.opened_by = "unimem_grid_<shape>_open (-Dgrids has no pool of this shape)",
	.open = genu_open, .close = gen_close, GRID_CANDIDATE_FNS(gen), .shared = true,
};

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

GRID_CANDIDATE_LOOPS(grid, unimem_grid, grid_take, grid_give)

static const struct grid_candidate grid_unimem = {
	.name = "unimem_grid_take + give (generic)", .opened_by = "unimem_grid_open",
	.open = grid_open, .close = grid_close, GRID_CANDIDATE_FNS(grid), .shared = true,
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

GRID_CANDIDATE_LOOPS(mfl, struct umb_mutex_list, umb_mutex_list_take, umb_mutex_list_give)

static const struct grid_candidate grid_mutex_list = {
	.name = "mutex free list", .opened_by = "aligned_alloc",
	.open = mfl_open, .close = mfl_close, GRID_CANDIDATE_FNS(mfl), .shared = true,
};

/* ---- the malloc families: malloc(cell) and free ------------------------------------- */

struct heap {
	const struct allocator *a;
	size_t cell;
};

static inline void *heap_take(struct heap *h)
{
	return h->a->malloc_fn(h->cell);
}

static inline int heap_give(struct heap *h, void *p)
{
	h->a->free_fn(p);
	return 0;
}

GRID_CANDIDATE_LOOPS(heap, struct heap, heap_take, heap_give)

static int heap_open_of(int which, void **pool, size_t cell)
{
	struct heap *h = malloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	h->a = &allocs[which];
	h->cell = cell;
	*pool = h;
	return 0;
}

static void heap_close(void *pool)
{
	free(pool);
}

#define HEAP(id, which)                                                                   \
	static int id##_open(void **pool, size_t cell, size_t cells)                       \
	{                                                                                 \
		(void)cells;                                                              \
		return heap_open_of(which, pool, cell);                                   \
	}                                                                                 \
	static const char *id##_absent(void)                                              \
	{                                                                                 \
		return allocs[which].present ? NULL : allocs[which].note;                 \
	}                                                                                 \
	static struct grid_candidate id = {                                               \
		.opened_by = "malloc", .open = id##_open, .close = heap_close,            \
		.absent = id##_absent, GRID_CANDIDATE_FNS(heap), .shared = true,          \
	};
HEAP(heap_glibc, ALLOC_GLIBC)
HEAP(heap_je, ALLOC_JEMALLOC)
HEAP(heap_mi, ALLOC_MIMALLOC)
HEAP(heap_tc, ALLOC_TCMALLOC)

/* The malloc rows take their names from allocs[] (known once the command started). */
void grid_candidates_name_heaps(void)
{
	heap_glibc.name = allocs[ALLOC_GLIBC].name;
	heap_je.name = allocs[ALLOC_JEMALLOC].name;
	heap_mi.name = allocs[ALLOC_MIMALLOC].name;
	heap_tc.name = allocs[ALLOC_TCMALLOC].name;
}

/* ---- the table ------------------------------------------------------------------------ */

extern const struct grid_candidate grid_crossbeam, grid_ck_ring;

const struct grid_candidate *const grid_candidates[] = {
	&grid_generated,
	&grid_generated_unchecked,
	&grid_unimem,
	&grid_crossbeam,
#ifdef UMB_HAVE_CK
	&grid_ck_ring,
#endif
	&grid_mutex_list,
	&heap_glibc,
	&heap_je,
	&heap_mi,
	&heap_tc,
	NULL,
};
