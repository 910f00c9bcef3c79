/* SPDX-License-Identifier: MIT */
/* The generic Grid and every generated pool of this build (UNIMEM_GRID_FOREACH) behind one
 * table of calls, for tests that run the same checks on all of them. Header only: each
 * translation unit that includes it gets its own static copies. */
#ifndef UNIMEM_TESTS_POOLS_H
#define UNIMEM_TESTS_POOLS_H

#include <unimem/unimem.h>

#include <stdbool.h>
#include <stddef.h>

struct pool_ops {
	const char *name;
	size_t cell, count; /* 0 for the generic Grid: chosen at open */
	/* open: unimem_grid_open (plain) or _open_flags; the pools ignore cell and count */
	int (*open)(void **out, size_t cell, size_t count, unsigned flags, bool plain);
	void (*close)(void *g);
	void *(*take)(void *g);
	int (*give)(void *g, void *cell);
	size_t (*available)(const void *g);
	const unimem_block *(*block)(const void *g);
	unimem_grid *(*grid)(void *g); /* the generic view */
};

static int generic_open(void **out, size_t cell, size_t count, unsigned flags, bool plain)
{
	return plain ? unimem_grid_open((unimem_grid **)out, cell, count)
		     : unimem_grid_open_flags((unimem_grid **)out, cell, count, flags);
}
static void generic_close(void *g)
{
	unimem_grid_close(g);
}
static void *generic_take(void *g)
{
	return unimem_grid_take(g);
}
static int generic_give(void *g, void *cell)
{
	return unimem_grid_give(g, cell);
}
static size_t generic_available(const void *g)
{
	return unimem_grid_available(g);
}
static const unimem_block *generic_block(const void *g)
{
	return unimem_grid_block(g);
}
static unimem_grid *generic_grid(void *g)
{
	return g;
}

static const struct pool_ops generic_grid_ops __attribute__((unused)) = {
	"grid", 0, 0, generic_open, generic_close, generic_take, generic_give,
	generic_available, generic_block, generic_grid,
};

#ifdef UNIMEM_GRID_FOREACH
#define UNIMEM_TESTS_POOL_OPS(NAME, CELL, COUNT)                                              \
	static int pool_open_##NAME(void **out, size_t cell, size_t count, unsigned flags,     \
				    bool plain)                                                \
	{                                                                                     \
		(void)cell, (void)count;                                                      \
		return plain ? unimem_grid_##NAME##_open((unimem_grid_##NAME **)out)           \
			     : unimem_grid_##NAME##_open_flags((unimem_grid_##NAME **)out, flags); \
	}                                                                                     \
	static void pool_close_##NAME(void *g)                                                \
	{                                                                                     \
		unimem_grid_##NAME##_close(g);                                                \
	}                                                                                     \
	static void *pool_take_##NAME(void *g)                                                \
	{                                                                                     \
		return unimem_grid_##NAME##_take(g);                                          \
	}                                                                                     \
	static int pool_give_##NAME(void *g, void *cell)                                      \
	{                                                                                     \
		return unimem_grid_##NAME##_give(g, cell);                                    \
	}                                                                                     \
	static size_t pool_available_##NAME(const void *g)                                    \
	{                                                                                     \
		return unimem_grid_##NAME##_available(g);                                     \
	}                                                                                     \
	static const unimem_block *pool_block_##NAME(const void *g)                           \
	{                                                                                     \
		return unimem_grid_##NAME##_block(g);                                         \
	}                                                                                     \
	static unimem_grid *pool_grid_##NAME(void *g)                                         \
	{                                                                                     \
		return unimem_grid_##NAME##_grid(g);                                          \
	}
UNIMEM_GRID_FOREACH(UNIMEM_TESTS_POOL_OPS)
#undef UNIMEM_TESTS_POOL_OPS
#define UNIMEM_TESTS_POOL_ENTRY(NAME, CELL, COUNT)                                            \
	{ #NAME, CELL, COUNT, pool_open_##NAME, pool_close_##NAME, pool_take_##NAME,           \
	  pool_give_##NAME, pool_available_##NAME, pool_block_##NAME, pool_grid_##NAME },
/* Every generated pool; NPOOLS of them (0 with -Dgrids=[]). */
static const struct pool_ops pool_table[] __attribute__((unused)) = {
	UNIMEM_GRID_FOREACH(UNIMEM_TESTS_POOL_ENTRY)
};
#undef UNIMEM_TESTS_POOL_ENTRY
#define NPOOLS (sizeof pool_table / sizeof pool_table[0])
#else
static const struct pool_ops pool_table[1] __attribute__((unused));
#define NPOOLS 0
#endif

#endif
