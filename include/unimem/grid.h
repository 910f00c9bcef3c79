/* SPDX-License-Identifier: MIT */
/* unimem Grid: a lock-free pool of fixed-size cells over one Block.
 *
 * The algorithm (chosen by measurement, see docs/BENCHMARKS.md): one bit per cell, set
 * while the cell is in the pool. give() is one atomic fetch-or, whose old bit is also the
 * race-free double-give check; take() clears the bit of the cell it guesses is free with
 * one atomic bit-clear, and scans the bitmap only when the guess was wrong. The guess is
 * per thread without thread-local storage: a hash of the stack address picks one of
 * UNIMEM_GRID_SLOTS guesses, each on its own cache line and starting in its own region of
 * the bitmap, so that threads mostly work on cells (and bitmap words) of their own. A
 * guess is the cell its thread gave last (LIFO: still hot in that core's cache), or the
 * one after the cell it took last. Two atomic read-modify-writes per take+give pair, no
 * locks, no ABA (a bit is the whole state of its cell), no allocation and no system call
 * after open. */
#ifndef UNIMEM_GRID_H
#define UNIMEM_GRID_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

/* Guess slots per Grid (a power of two). */
#define UNIMEM_GRID_SLOT_BITS 4
#define UNIMEM_GRID_SLOTS (1 << UNIMEM_GRID_SLOT_BITS)

/* ABI: the struct is visible so that take and give can be inline; the generated pools of
 * <unimem/grids.h> embed it. Changing it bumps the soversion. Fields are private to unimem;
 * use the functions.
 *
 * The Block holds the cells from its first byte (cell i at base + i * cell_size), then the
 * free bitmap at the next 64-byte boundary. */
typedef struct unimem_grid {
	/* Read-only after open; what the hot paths read, on one cache line. */
	unsigned char *base;     /* cell 0 (the Block's first byte) */
	uint64_t *bits;          /* free bitmap: bit i % 64 of word i / 64 set = cell i is free */
	uint64_t cell_size;      /* bytes, a positive multiple of 64 */
	uint64_t count;          /* cells */
	uint64_t span;           /* count * cell_size */
	uint64_t odd_inverse;    /* (cell_size >> shift) is odd: its inverse modulo 2^64 */
	uint64_t odd_limit;      /* UINT64_MAX / (cell_size >> shift) */
	uint32_t shift;          /* trailing zero bits of cell_size */
	uint32_t flags;          /* private */
	/* The guesses: slot[k][0] is the index of a cell that is probably free, always
	 * < count; one slot per cache line, written by the threads that hash to it. */
	uint64_t slot[UNIMEM_GRID_SLOTS][UNIMEM_CACHE_LINE / sizeof(uint64_t)];
	/* Cold. */
	uint64_t words;          /* 64-bit words of the bitmap */
	unimem_block *block;     /* owned by the Grid */
} __attribute__((aligned(UNIMEM_CACHE_LINE))) unimem_grid;

/* Open a pool of `cells` cells of `cell_size` bytes, rounded up to a multiple of 64, on a
 * new pinned Block that the Grid owns. Cells are 64-byte aligned (page aligned when the
 * size is a multiple of the page size), never share a cache line, and are zeroed at open
 * (not when given back). All cells start in the pool.
 * Returns 0 and sets *out, or a negative errno with *out set to NULL:
 *   -EINVAL  out is NULL, cell_size or cells is 0, or the sizes overflow
 *   -EPERM / -ENOMEM  as unimem_block_open()
 * Thread-safe. */
UNIMEM_API int unimem_grid_open(unimem_grid **out, size_t cell_size, size_t cells);

/* As unimem_grid_open(), with unimem_block_open() flags (UNIMEM_BLOCK_UNPINNED, ...). */
UNIMEM_API int unimem_grid_open_flags(unimem_grid **out, size_t cell_size, size_t cells,
				      unsigned flags);

/* Close the Grid and its Block; cells still out become invalid. NULL is a no-op.
 * Not safe against concurrent use of the same Grid. */
UNIMEM_API void unimem_grid_close(unimem_grid *g);

/* Cells that take() could return now (a popcount of the bitmap). Exact when no thread
 * is in the middle of a take or give; a snapshot otherwise. Thread-safe. */
UNIMEM_API size_t unimem_grid_available(const unimem_grid *g);

/* The Block that holds the cells (cell 0 at its first byte). */
UNIMEM_API const unimem_block *unimem_grid_block(const unimem_grid *g);

/* Cell size in bytes (the size asked for, rounded up to a multiple of 64). */
UNIMEM_INLINE size_t unimem_grid_cell_size(const unimem_grid *g)
{
	return (size_t)g->cell_size;
}

/* Number of cells. */
UNIMEM_INLINE size_t unimem_grid_cells(const unimem_grid *g)
{
	return (size_t)g->count;
}

/* ---- private to unimem: the inline kernels, shared with <unimem/grids.h> ---- */

/* This thread's guess slot. The address of a local variable lies in the calling thread's
 * stack, and threads have stacks of their own: hashing it (in 64 KiB steps, so that call
 * depth rarely matters) spreads threads over the slots without thread-local storage.
 * Threads that share a slot, or a thread that moves between two, only guess worse. */
UNIMEM_INLINE uint64_t *umi_grid_hint(unimem_grid *g)
{
	char probe;
	const uint64_t sp = (uint64_t)(uintptr_t)&probe;
	const uint64_t k = ((sp >> 16) * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - UNIMEM_GRID_SLOT_BITS);
	return &g->slot[k][0];
}

/* Claim cell `i` if it is free: one atomic bit-clear (lock btr on x86-64). Acquire:
 * whatever the giver wrote to the cell is visible to the taker. */
UNIMEM_INLINE bool umi_grid_claim(unimem_grid *g, uint64_t i)
{
	const uint64_t bit = (uint64_t)1 << (i & 63);
	return (__atomic_fetch_and(&g->bits[i >> 6], ~bit, __ATOMIC_ACQUIRE) & bit) != 0;
}

/* The guess after taking cell `i`: the next cell, which a pool that hands out cells in
 * order (a fresh one, a thread's region) has free. */
UNIMEM_INLINE uint64_t umi_grid_next(uint64_t i, uint64_t count)
{
	/* A generated pool passes its count as a constant: a power of two wraps with a mask. */
	if (__builtin_constant_p(count) && (count & (count - 1)) == 0)
		return (i + 1) & (count - 1);
	return i + 1 < count ? i + 1 : 0;
}

/* The slow path of take: the guess was wrong. Scan the bitmap once round, starting at
 * word `w`; claim the first free cell found, leave the guess after it and return its
 * index, or UINT64_MAX when every word was seen empty. A cell that stays free during the
 * whole scan is found; one given to a word the scan has already passed may be missed.
 * `words` and `count` are the Grid's (constants in the generated pools). */
static inline uint64_t umi_grid_scan(unimem_grid *g, uint64_t *hint, uint64_t w,
				     uint64_t words, uint64_t count)
{
	for (uint64_t n = words; n; n--) {
		uint64_t v = __atomic_load_n(&g->bits[w], __ATOMIC_RELAXED);
		while (v) {
			const uint64_t i = (w << 6) | (uint64_t)__builtin_ctzll(v);
			if (umi_grid_claim(g, i)) {
				__atomic_store_n(hint, umi_grid_next(i, count), __ATOMIC_RELAXED);
				return i;
			}
			v = __atomic_load_n(&g->bits[w], __ATOMIC_RELAXED);
		}
		if (++w == words)
			w = 0;
	}
	return UINT64_MAX;
}

/* Take: try this thread's guess, scan when it was wrong. Returns the cell's index or
 * UINT64_MAX. */
UNIMEM_INLINE uint64_t umi_grid_take_index(unimem_grid *g, uint64_t words, uint64_t count)
{
	uint64_t *hint = umi_grid_hint(g);
	const uint64_t i = __atomic_load_n(hint, __ATOMIC_RELAXED);
	if (UNIMEM_LIKELY(umi_grid_claim(g, i))) {
		__atomic_store_n(hint, umi_grid_next(i, count), __ATOMIC_RELAXED);
		return i;
	}
	return umi_grid_scan(g, hint, i >> 6, words, count);
}

/* Give back cell `i` (< count, checked by the caller): one atomic fetch-or. Its old bit
 * tells a double give, atomically: of two threads giving the same cell, exactly one sees
 * the bit clear. Release: what the holder wrote is visible to the next taker. The cell
 * becomes this thread's guess. */
UNIMEM_INLINE int umi_grid_release(unimem_grid *g, uint64_t i)
{
	const uint64_t bit = (uint64_t)1 << (i & 63);
	if (UNIMEM_UNLIKELY(__atomic_fetch_or(&g->bits[i >> 6], bit, __ATOMIC_RELEASE) & bit))
		return -UNIMEM_EALREADY;
	__atomic_store_n(umi_grid_hint(g), i, __ATOMIC_RELAXED);
	return 0;
}

/* ---- the hot paths ---- */

/* A free cell (cell_size bytes, 64-byte aligned), or NULL when the pool had no free cell:
 * exact when no other thread gives meanwhile; with concurrent gives, take never fails
 * while some cell stays free for its whole duration. Never hands one cell to two holders.
 * Lock-free and thread-safe: one atomic bit-clear when the guess is right (LIFO per
 * thread: the cell a thread gave last comes back first to it, still hot in its cache). */
UNIMEM_INLINE void *unimem_grid_take(unimem_grid *g)
{
	const uint64_t i = umi_grid_take_index(g, g->words, g->count);
	if (UNIMEM_UNLIKELY(i == UINT64_MAX))
		return NULL;
	return g->base + (size_t)(i * g->cell_size);
}

/* Give a cell back to the pool. Returns 0, or:
 *   -EINVAL    NULL, a pointer outside the cells, or inside a cell but not at its start
 *   -EALREADY  the cell is already in the pool (given twice); of two threads giving the
 *              same cell at once, exactly one gets 0
 * A refused give leaves the pool as it was. Lock-free and thread-safe: one atomic
 * fetch-or. The index math is a shift and one multiply (exact division by the odd part
 * of the cell size), no divide. */
UNIMEM_INLINE int unimem_grid_give(unimem_grid *g, void *cell)
{
	/* NULL lands outside [base, base + span): base is a mapping, never near address 0. */
	const uint64_t off = (uint64_t)((uintptr_t)cell - (uintptr_t)g->base);
	if (UNIMEM_UNLIKELY(off >= g->span || (off & (((uint64_t)1 << g->shift) - 1))))
		return -UNIMEM_EINVAL;
	/* off >> shift is a multiple of the odd part d of the cell size exactly when its
	 * product with d's inverse is <= UINT64_MAX / d; the product is then the quotient. */
	const uint64_t i = (off >> g->shift) * g->odd_inverse;
	if (UNIMEM_UNLIKELY(i > g->odd_limit))
		return -UNIMEM_EINVAL;
	return umi_grid_release(g, i);
}

UNIMEM_END_DECLS

#endif
