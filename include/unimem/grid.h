/* SPDX-License-Identifier: MIT */
/* unimem Grid: a pool of fixed-size cells whose whole state lives in its Block.
 *
 * Another process that looked the Block up (unimem_block_lookup) or received it
 * (unimem_block_recv) attaches to the same pool (unimem_grid_attach). Each thread that
 * uses a Grid gets a holder slot in the Block with a small cache of cells: take pops it and
 * give pushes it with plain loads and stores (no locked instruction, but for the compare-
 * and-swap that makes the checked give race-exact); the cache refills from and flushes to
 * the shared pool in bulk, and a take that finds the shared pool dry empties the caches of
 * other holders (idle threads strand nothing) and reclaims the cells of holders that died.
 * Every cell's owner is written in the Block (per-cell state), so unimem_grid_reclaim()
 * gives back whatever a dead process held, whatever instruction it died on.
 * docs/GRID.md has the protocol; tests/model/ proves it in Promela. */
#ifndef UNIMEM_GRID_H
#define UNIMEM_GRID_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

struct unimem_grid_pvt_slot;
struct unimem_grid_pvt_hdr;
struct unimem_grid_pvt_rec;

/* ABI: the struct is visible so that take and give can be inline; the generated pools of
 * <unimem/grids.h> embed it. Changing it bumps the soversion. Fields are private to unimem;
 * use the functions. The handle is this process's view of the pool: pointers into its
 * mapping of the Block, and the Grid's shape (checked against the Block's header). */
typedef struct unimem_grid {
	/* Read-only after open; what the hot paths read. */
	unsigned char *base;     /* cell 0 (the Block's first byte) */
	uint32_t *state;         /* per-cell owner words, in the Block */
	uint64_t gen;            /* this handle's identity in this process (never 0) */
	uint64_t cell_size;      /* bytes, a positive multiple of 64 */
	uint64_t count;          /* cells */
	uint64_t span;           /* count * cell_size */
	uint64_t odd_inverse;    /* (cell_size >> shift) is odd: its inverse modulo 2^64 */
	uint64_t odd_limit;      /* UINT64_MAX / (cell_size >> shift) */
	uint32_t shift;          /* trailing zero bits of cell_size */
	uint32_t cap;            /* cells a holder slot caches */
	/* Cold. */
	uint64_t *bits;          /* free hint bitmap, in the Block */
	uint64_t words;          /* 64-bit words of the bitmap */
	struct unimem_grid_pvt_slot *slots;
	struct unimem_grid_pvt_rec *recs;
	struct unimem_grid_pvt_hdr *hdr;
	unimem_block *block;
	struct unimem_grid *next; /* this process's live handles */
	uint32_t rec;            /* this handle's attachment record */
	uint32_t flags;          /* private */
	int32_t pid;             /* the process the record belongs to */
	uint32_t slot_bytes;     /* the stride of the holder slots (UNIMEM_GRID_PVT_SLOT_BYTES) */
} __attribute__((aligned(UNIMEM_CACHE_LINE))) unimem_grid;

/* Open a pool of `cells` cells of `cell_size` bytes, rounded up to a multiple of 64, on a
 * new pinned Block that the Grid owns; the Block also holds the pool's state (after the
 * cells), so that other processes can attach to it. Cells are 64-byte aligned (page
 * aligned when the size is a multiple of the page size), never share a cache line, and
 * are zeroed at open (not when given back). All cells start in the pool.
 * Returns 0 and sets *out, or a negative errno with *out set to NULL:
 *   -EINVAL  out is NULL, cell_size or cells is 0, cells >= 2^32, or the sizes overflow
 *   -EPERM / -ENOMEM  as unimem_block_open()
 * Thread-safe. */
UNIMEM_API int unimem_grid_open(unimem_grid **out, size_t cell_size, size_t cells);

/* As unimem_grid_open(), with unimem_block_open() flags (UNIMEM_BLOCK_UNPINNED, ...). */
UNIMEM_API int unimem_grid_open_flags(unimem_grid **out, size_t cell_size, size_t cells,
				      unsigned flags);

/* A handle on the Grid that Block `b` already holds (opened by unimem_grid_open in this or
 * another process, the Block looked up or received): the same pool, the same cells.
 * The Block is borrowed: keep it open until unimem_grid_close() of this handle; closing
 * the handle leaves it open. Every field of the Block's header is checked against the
 * Block's size before anything is used, so a Block written by a hostile peer gives an
 * error, never a crash. Returns 0 and sets *out, or a negative errno with *out set to
 * NULL and the Block untouched:
 *   -EINVAL  out or b is NULL, or the Block holds no Grid (no magic, or a header whose
 *            shape, offsets or sizes do not fit the Block)
 *   -EPROTO  a Grid of a layout version this library does not know
 *   -EUSERS  the Grid already has its most attachments (64) open; unimem_grid_reclaim()
 *            on another handle frees those of dead processes
 *   -ENOMEM
 * Thread-safe. Holders of one Grid must share a pid namespace (a holder's liveness is
 * judged by its pid). */
UNIMEM_API int unimem_grid_attach(unimem_grid **out, unimem_block *b);

/* As unimem_grid_attach(), and the Grid must have cells of exactly `cell_size` bytes and
 * `cells` cells (else -EINVAL): what the generated unimem_grid_<C>x<N>_attach() call. */
UNIMEM_API int unimem_grid_attach_as(unimem_grid **out, unimem_block *b, size_t cell_size,
				     size_t cells);

/* Close this handle: the calling process's caches of it go back to the pool, its holder
 * slots are freed, and cells this handle took and did not give back become reclaimable
 * (unimem_grid_reclaim() on another handle returns them). A Grid from unimem_grid_open()
 * closes its Block (other processes' mappings stay); an attached one leaves the Block to
 * its caller. Waits for a thief (another process's take, emptying this handle's caches)
 * to let go, at most a second: the caches of one that does not (stopped, or hostile) go
 * back to the pool anyway, and its slot comes back by reclaim once that thief is gone.
 * NULL is a no-op. Not safe against concurrent use of the same handle. */
UNIMEM_API void unimem_grid_close(unimem_grid *g);

/* Give back every cell held by holders that no longer exist: processes that died (SIGKILL,
 * crash; their caches and the cells they took), and handles that were closed with cells
 * still out. A cell a dead holder was writing comes back with whatever bytes it holds; a
 * cell it had passed on to a live process comes back too (it was still the dead one's).
 * Detected without races: each attachment records its process's pid and start time, so a
 * reused pid is not mistaken for the holder; a zombie counts as dead. Returns the number
 * of cells given back (0 when none), -EINVAL for NULL, or -EBUSY when another reclaim
 * held the Grid's reclaim lock for a second and its process is alive (stopped, say, or a
 * hostile peer; one that died is broken). One reclaim runs at a time per Grid (others wait
 * for it); safe against any take and give of live holders, in any process. Takes about
 * 2 µs per 1000 cells (0.15-0.3 ms per 100,000 measured) plus a /proc read per
 * attachment. */
UNIMEM_API long unimem_grid_reclaim(unimem_grid *g);

/* Cells that take() could return now: the shared pool's free cells plus the cells in
 * every holder's cache (which a take reaches by stealing when the shared pool is dry).
 * Exact when no thread is in the middle of a take or give; a snapshot otherwise; cells of
 * dead holders are not counted until reclaimed. Thread-safe. */
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

#include "grid_pvt.h"

/* ---- the hot paths ---- */

/* A free cell (cell_size bytes, 64-byte aligned), or NULL when no cell is free: neither in
 * the shared pool, nor in any holder's cache, nor held by a dead holder. Never hands one
 * cell to two holders. Thread-safe, and safe across processes. The common case pops this
 * thread's cache with plain loads and stores (no locked instruction): the cell this thread
 * gave last comes back first (LIFO, still hot in its cache). A take that finds the shared
 * pool dry robs the idle caches of this process (microseconds) and, only when those hold
 * nothing, those of other processes: microseconds where their threads take or give (they
 * acknowledge) or sleep (the kernel tells), else one RCU grace period (about 10 ms). */
UNIMEM_INLINE void *unimem_grid_take(unimem_grid *g)
{
	const uint64_t i = umi_grid_take_index(g, g->count, g->cap);
	if (UNIMEM_UNLIKELY(i == UINT64_MAX))
		return NULL;
	return g->base + (size_t)(i * g->cell_size);
}

/* The index of a cell pointer, or UINT64_MAX for NULL, foreign or misaligned pointers.
 * The math is a shift and one multiply (exact division by the odd part of the cell size),
 * no divide. */
UNIMEM_INLINE uint64_t unimem_grid_index(const unimem_grid *g, const void *cell)
{
	/* NULL lands outside [base, base + span): base is a mapping, never near address 0. */
	const uint64_t off = (uint64_t)((uintptr_t)cell - (uintptr_t)g->base);
	if (UNIMEM_UNLIKELY(off >= g->span || (off & (((uint64_t)1 << g->shift) - 1))))
		return UINT64_MAX;
	/* off >> shift is a multiple of the odd part d of the cell size exactly when its
	 * product with d's inverse is <= UINT64_MAX / d; the product is then the quotient. */
	const uint64_t i = (off >> g->shift) * g->odd_inverse;
	return UNIMEM_UNLIKELY(i > g->odd_limit) ? UINT64_MAX : i;
}

/* Give a cell back to the pool. Returns 0, or:
 *   -EINVAL    NULL, a pointer outside the cells, or inside a cell but not at its start
 *   -EALREADY  the cell is already in the pool (given twice); of two threads (or
 *              processes) giving the same cell at once, exactly one gets 0
 * A refused give leaves the pool as it was. Thread-safe, and safe across processes: one
 * compare-and-swap (the race-exact double-give check) and a push on this thread's cache.
 * What the holder wrote is visible to the next taker (release/acquire). A cell given
 * twice is not always seen (docs/GRID.md): not once someone took it again, and not while
 * a refill has it in another thread's cache; the cell is still handed out once then. */
UNIMEM_INLINE int unimem_grid_give(unimem_grid *g, void *cell)
{
	const uint64_t i = unimem_grid_index(g, cell);
	if (UNIMEM_UNLIKELY(i == UINT64_MAX))
		return -UNIMEM_EINVAL;
	return umi_grid_put(g, i, g->cap, true);
}

/* As unimem_grid_give() without the locked instruction: foreign and misaligned pointers
 * are still refused (-EINVAL), and so is a cell already in the pool (-EALREADY), but two
 * threads giving the same cell AT THE SAME TIME may both get 0 and corrupt the pool. For
 * callers that know each cell has one holder (the usual case); no locked instruction in
 * the common case. */
UNIMEM_INLINE int unimem_grid_give_unchecked(unimem_grid *g, void *cell)
{
	const uint64_t i = unimem_grid_index(g, cell);
	if (UNIMEM_UNLIKELY(i == UINT64_MAX))
		return -UNIMEM_EINVAL;
	return umi_grid_put(g, i, g->cap, false);
}

UNIMEM_END_DECLS

#endif
