/* SPDX-License-Identifier: MIT */
/* Grid: the out-of-line part (take and give are inline in <unimem/grid.h>). */
#include "base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The inverse of an odd number modulo 2^64 (Newton's iteration: each step doubles the
 * correct low bits; d * d == 1 mod 8 gives 3 to start with). */
static uint64_t odd_inverse(uint64_t d)
{
	uint64_t x = d;
	for (int k = 0; k < 5; k++)
		x *= 2 - d * x;
	return x;
}

/* Set up g over a new Block opened with `flags`; 0 or a negative errno (g is then left
 * without a Block). */
static int umi_grid_init(unimem_grid *g, size_t cell_size, size_t cells, unsigned flags)
{
	memset(g, 0, sizeof *g);
	if (cell_size == 0 || cells == 0)
		return -EINVAL;
	size_t cell = umi_round_up(cell_size, UNIMEM_CACHE_LINE);
	if (!cell || cells > SIZE_MAX / cell)
		return -EINVAL;
	size_t span = cell * cells;
	size_t words = cells / 64 + (cells % 64 != 0);
	/* The bitmap follows the cells at a cache-line boundary (span is a multiple of 64). */
	if (words > (SIZE_MAX - span) / sizeof(uint64_t))
		return -EINVAL;
	size_t bytes = span + words * sizeof(uint64_t);

	unimem_block *b;
	int err = unimem_block_open(&b, bytes, flags);
	if (err)
		return err;

	unsigned char *base = unimem_block_ptr(b);
	uint64_t *bits = (uint64_t *)(void *)(base + span);
	/* The Block is zeroed: set the bits of the cells that exist; the bits past the last
	 * cell stay 0 forever (never free), so neither take nor the popcount sees them. */
	for (size_t w = 0; w < words; w++) {
		size_t n = cells - w * 64 < 64 ? cells - w * 64 : 64;
		bits[w] = n == 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
	}

	unsigned shift = (unsigned)__builtin_ctzll((unsigned long long)cell);
	uint64_t odd = (uint64_t)cell >> shift;
	/* Each guess slot starts in its own region of the bitmap (at a word boundary), so
	 * that threads on different slots start on different words. */
	for (unsigned k = 0; k < UNIMEM_GRID_SLOTS; k++)
		g->slot[k][0] = (uint64_t)k * words / UNIMEM_GRID_SLOTS * 64; /* < count */
	g->base = base;
	g->bits = bits;
	g->cell_size = cell;
	g->count = cells;
	g->span = span;
	g->odd_inverse = odd_inverse(odd);
	g->odd_limit = UINT64_MAX / odd;
	g->shift = shift;
	g->words = words;
	g->block = b;
	/* Publish the initialised pool to threads that get the pointer without a barrier
	 * of their own. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return 0;
}

static void umi_grid_fini(unimem_grid *g)
{
	unimem_block_close(g->block);
	g->block = NULL;
}

int unimem_grid_open_flags(unimem_grid **out, size_t cell_size, size_t cells, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	unimem_grid *g = aligned_alloc(UNIMEM_CACHE_LINE, sizeof *g);
	if (!g)
		return -ENOMEM;
	int err = umi_grid_init(g, cell_size, cells, flags);
	if (err) {
		free(g);
		return err;
	}
	*out = g;
	return 0;
}

int unimem_grid_open(unimem_grid **out, size_t cell_size, size_t cells)
{
	return unimem_grid_open_flags(out, cell_size, cells, 0);
}

void unimem_grid_close(unimem_grid *g)
{
	if (!g)
		return;
	umi_grid_fini(g);
	free(g);
}

size_t unimem_grid_available(const unimem_grid *g)
{
	if (!g)
		return 0;
	size_t n = 0;
	for (uint64_t w = 0; w < g->words; w++)
		n += (size_t)__builtin_popcountll(__atomic_load_n(&g->bits[w], __ATOMIC_RELAXED));
	return n;
}

const unimem_block *unimem_grid_block(const unimem_grid *g)
{
	return g ? g->block : NULL;
}
