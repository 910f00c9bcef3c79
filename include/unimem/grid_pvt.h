/* SPDX-License-Identifier: MIT */
/* unimem Grid: private kernels and the layout of a Grid inside its Block. Installed for
 * <unimem/grid.h> and <unimem/grids.h>; not for direct inclusion, and nothing here is API:
 * names, fields and values change without notice (the layout version in the Block's
 * header says which one a Block holds).
 *
 * The Block of a Grid (every offset a multiple of 64; docs/GRID.md draws it):
 *   [0, span)        the cells, cell i at i * cell_size
 *   bits             free hint: bit i set = cell i is probably in the shared pool
 *   state            one uint32_t per cell, its owner (the truth; the bits only help find
 *                    free cells): 0 in the shared pool, HELD | r taken through attachment
 *                    r, CACHED | t in the cache of holder slot t (given there), PRE | r << 16
 *                    | t << 8 | k claimed by a refill of slot t (attachment r) into place k
 *                    of its cache: there still, or taken from there (the fast take does not
 *                    write it; a give takes it for taken, unless it is in t's cache at k)
 *   slots            holder slots: one per thread (per attachment) using the Grid, each a
 *                    cache of up to `cap` cell indices, owned by that thread alone
 *   recs             attachments: one per unimem_grid handle (process), its identity
 *   header           the last 128 bytes of the Block: magic, layout version, shape, offsets
 */
#ifndef UNIMEM_GRID_H
/* Not for direct inclusion: <unimem/grid.h> defines what this needs, then includes it. */
#include "grid.h"
#elif !defined(UNIMEM_GRID_PVT_H)
#define UNIMEM_GRID_PVT_H

UNIMEM_BEGIN_DECLS

#define UNIMEM_GRID_PVT_MAGIC UINT64_C(0x31444952474d4d55) /* "UMMGRID1" little-endian */
#define UNIMEM_GRID_PVT_VERSION 6u /* 5: slots sized by the cache; 6: the PRE state */
#define UNIMEM_GRID_PVT_CACHE 256u /* the most cells one holder slot caches */
#define UNIMEM_GRID_PVT_SLOTS 128u /* holder slots (threads with a cache) per Grid */
#define UNIMEM_GRID_PVT_RECS 64u   /* attachments (handles) per Grid at once */
#define UNIMEM_GRID_PVT_WAYS 4u    /* per-thread entries: Grids a thread uses at full speed */
#define UNIMEM_GRID_PVT_HELD 0x40000000u   /* state: taken, low bits = attachment */
#define UNIMEM_GRID_PVT_CACHED 0x80000000u /* state: in a cache, low bits = slot */
#define UNIMEM_GRID_PVT_PRE 0xc0000000u    /* state: a refill's: attachment, slot, place */
#define UNIMEM_GRID_PVT_INDEX 0x0000ffffu  /* state: the attachment or slot */
#define UNIMEM_GRID_PVT_PLACE 0x000000ffu  /* state, PRE: the place in the slot's cache */
#define UNIMEM_GRID_PVT_HDR_BYTES 128u
#define UNIMEM_GRID_PVT_STALE 0xffffffffu  /* steal flag: a thief died on this cache */
#define UNIMEM_GRID_PVT_THIEF 0x7fu        /* steal token: the thief's attachment + 1 */
#define UNIMEM_GRID_PVT_SEQ_SHIFT 7u       /* steal token: above it, the steal's number */

/* Cache capacity of a pool of `count` cells: a sixteenth of the pool, at most 256 (DPDK's
 * rte_mempool caches up to 512); pools of fewer than 32 cells cache nothing (every take and
 * give goes to the shared pool). */
#define UNIMEM_GRID_PVT_CAP(count)                                                        \
	((count) / 16u >= UNIMEM_GRID_PVT_CACHE ? UNIMEM_GRID_PVT_CACHE                   \
	 : (count) / 16u >= 2u                  ? (uint32_t)((count) / 16u)               \
						: 0u)

/* A holder slot (in the Block). Its owner thread runs take and give on `cache` with plain
 * loads and stores, between busy = 1 and busy = 0; a thief (another thread, any process,
 * when the shared pool is dry) sets `steal` to a token of its own (its attachment + 1, and
 * above UNIMEM_GRID_PVT_SEQ_SHIFT the steal's number), makes every owner see it, waits for
 * busy == 0 and empties the cache; an owner that sees `steal` leaves its cache alone and
 * copies the token into `ack`. The thief's ways to make the owner see it: the owner's ack
 * (everything it did before is then visible, and it will see the flag from then on), the
 * kernel's word that the owner's thread sleeps off its CPU, else membarrier (docs/GRID.md,
 * "The fence").
 * 128-byte aligned and UNIMEM_GRID_PVT_SLOT_BYTES(cap) long, a multiple of 128 (the cache
 * holds `cap` entries, the header's): Intel's L2 fetches lines in 128-byte pairs, and one
 * owner's stores into the end of its cache must not share a pair with the next owner's
 * busy and n (slots are handed out lowest first, so neighbours are busy together). Slot t
 * is at unimem_grid_pvt_slot_at(g, t).
 * A thief that dies mid-drain leaves entries whose cells are back in the pool (maybe taken
 * since): reclaim then sets `steal` to STALE, which keeps the owner off its fast paths and
 * thieves off the slot, until the owner's slow path drops those entries and clears it. So
 * the fast take pops a given cell without looking at its state. */
typedef struct unimem_grid_pvt_slot {
	uint32_t busy;  /* the owner is inside a take or give on its cache */
	uint32_t n;     /* cells in the cache's entries [0, n) */
	uint32_t steal; /* 0, the token of the thief emptying this cache, or STALE */
	uint32_t owner; /* 0 free, else the attachment + 1 of the owner thread */
	int32_t tid;    /* the owner thread (gettid) */
	uint32_t rover; /* the cell where this slot's next refill starts looking */
	uint32_t ack;   /* the last steal token the owner saw (it stays off the cache) */
	uint32_t fresh; /* cache places [0, fresh) hold a refill's cells (state PRE) */
	uint32_t pad[8];
	/* Then, right after these 64 bytes, the cache: `cap` cell indices
	 * (unimem_grid_pvt_cache); the slot's rest to a multiple of 128 is never touched. */
} unimem_grid_pvt_slot;

/* The cache of slot s: its `cap` entries follow the slot's 64 bytes. */
UNIMEM_PVT_INLINE uint32_t *unimem_grid_pvt_cache(unimem_grid_pvt_slot *s)
{
	return (uint32_t *)(void *)(s + 1);
}

/* The bytes of one holder slot whose cache holds `cap` cells: a multiple of 128. */
#define UNIMEM_GRID_PVT_SLOT_BYTES(cap) ((64u + 4u * (uint32_t)(cap) + 127u) / 128u * 128u)

/* Holder slot t of g (t < UNIMEM_GRID_PVT_SLOTS). */
UNIMEM_PVT_INLINE unimem_grid_pvt_slot *unimem_grid_pvt_slot_at(const unimem_grid *g, uint32_t t)
{
	return (unimem_grid_pvt_slot *)(void *)((unsigned char *)g->slots +
						(size_t)t * g->slot_bytes);
}

/* An attachment (in the Block): who holds a handle on the Grid. */
typedef struct unimem_grid_pvt_rec {
	uint64_t ident;  /* 0 free, else pid << 32 | start time (clock ticks, low 32 bits) */
	uint32_t closed; /* the handle was closed: everything it holds may be reclaimed */
	uint32_t pad;
} unimem_grid_pvt_rec;

/* The header (the Block's last 128 bytes). */
typedef struct unimem_grid_pvt_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_bytes;
	uint64_t block_bytes;
	uint64_t cell_size;
	uint64_t count;
	uint64_t off_bits, off_state, off_slots, off_recs;
	uint32_t nslots, nrecs, cap, slot_bytes;
	uint32_t reclaim_lock; /* 0, or the attachment + 1 of the running reclaim */
	uint32_t pad[5];
} __attribute__((aligned(64))) unimem_grid_pvt_hdr;

/* A thread's entry for one Grid handle (thread-local, indexed by gen % WAYS). */
typedef struct unimem_grid_pvt_tls_entry {
	uint64_t gen;               /* the handle's gen, 0 for none */
	unimem_grid_pvt_slot *slot; /* this thread's slot of that Grid */
	uint32_t tag;               /* CACHED | slot */
	uint32_t held;              /* HELD | attachment */
	uint32_t pre;               /* PRE | attachment << 16 | slot << 8 (place 0) */
	uint32_t pad;
} unimem_grid_pvt_tls_entry;

extern UNIMEM_API __thread unimem_grid_pvt_tls_entry unimem_grid_pvt_tls[UNIMEM_GRID_PVT_WAYS];

/* The out-of-line paths (src/grid_slow.c): a take whose cache was empty (refill from the
 * shared pool, steal from idle caches, reclaim from dead holders), and a give whose cache
 * was full (flush half) or that has no cache. */
UNIMEM_API uint64_t unimem_grid_pvt_take_slow(unimem_grid *g);
UNIMEM_API int unimem_grid_pvt_give_slow(unimem_grid *g, uint64_t i, int checked);

UNIMEM_PVT_INLINE const unimem_grid_pvt_tls_entry *umi_grid_entry(const unimem_grid *g)
{
	const unimem_grid_pvt_tls_entry *e = &unimem_grid_pvt_tls[g->gen & (UNIMEM_GRID_PVT_WAYS - 1)];
	return UNIMEM_LIKELY(e->gen == g->gen) ? e : NULL;
}

/* Whether state v, which has the HELD bit, is this entry's slot's PRE at a place of its
 * cache below n that still holds cell i: a refill's cell not yet handed out (a give of it
 * is refused). A HELD cell costs one bit test. */
UNIMEM_PVT_INLINE bool umi_grid_pre_cached(const unimem_grid_pvt_tls_entry *e,
					   const uint32_t *cache, uint32_t n, uint32_t v, uint64_t i)
{
	return UNIMEM_UNLIKELY(v & UNIMEM_GRID_PVT_CACHED) &&
	       (v & ~UNIMEM_GRID_PVT_PLACE) == e->pre && (v & UNIMEM_GRID_PVT_PLACE) < n &&
	       __atomic_load_n(&cache[v & UNIMEM_GRID_PVT_PLACE], __ATOMIC_RELAXED) == i;
}

/* Take: pop this thread's cache (no locked instruction), else the slow path. Returns the
 * cell's index or UINT64_MAX. `count` and `cap` are the Grid's (constants in generated
 * pools). A refill's cell (below `fresh`) goes out with a load of its state and no store,
 * when that still names this slot at this place: a store there is what a consumer giving
 * the cells just taken fights over (the state words of 16 cells share a line); anything
 * else (another slot's give took the cell while it was here) goes to the slow path, which
 * drops it. A cell given into this cache is marked taken (HELD) without a look at its
 * state: no one else may move a cached cell, and while an entry may be stale (a thief
 * died on it), `steal` is not 0 (STALE, above). */
UNIMEM_PVT_INLINE uint64_t umi_grid_take_index(unimem_grid *g, uint64_t count, uint32_t cap)
{
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(g);
	if (UNIMEM_LIKELY(e != NULL)) {
		unimem_grid_pvt_slot *s = e->slot;
		__atomic_store_n(&s->busy, 1u, __ATOMIC_RELAXED);
		/* The busy store comes before the steal load in program order; a thief's
		 * membarrier makes that order hold for it (an asymmetric fence). */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (UNIMEM_LIKELY(__atomic_load_n(&s->steal, __ATOMIC_ACQUIRE) == 0)) {
			const uint32_t n = __atomic_load_n(&s->n, __ATOMIC_RELAXED);
			if (UNIMEM_LIKELY(n - 1u < cap)) {
				const uint32_t i = __atomic_load_n(&unimem_grid_pvt_cache(s)[n - 1],
								   __ATOMIC_RELAXED);
				/* The bound keeps junk in a shared Block from reaching outside it. */
				const bool fresh = n - 1 < __atomic_load_n(&s->fresh, __ATOMIC_RELAXED);
				if (UNIMEM_LIKELY(i < count) &&
				    (!fresh || UNIMEM_LIKELY(__atomic_load_n(&g->state[i], __ATOMIC_RELAXED) ==
							     (e->pre | (n - 1))))) {
					if (fresh)
						__atomic_store_n(&s->fresh, n - 1, __ATOMIC_RELAXED);
					else
						__atomic_store_n(&g->state[i], e->held, __ATOMIC_RELAXED);
					__atomic_store_n(&s->n, n - 1, __ATOMIC_RELAXED);
					__atomic_store_n(&s->busy, 0u, __ATOMIC_RELEASE);
					return i;
				}
			}
		}
		__atomic_store_n(&s->busy, 0u, __ATOMIC_RELEASE);
	}
	return unimem_grid_pvt_take_slow(g);
}

/* Give back cell `i` (< count, checked by the caller): its state goes from taken to
 * cached (checked: with one compare-and-swap, so of two threads giving one cell exactly
 * one wins; unchecked: a plain store, no locked instruction, and a double give is still
 * refused when it is not concurrent), then a push on this thread's cache. Taken: HELD,
 * or a refill's PRE, unless that names this slot and a place of its cache that still
 * holds the cell (a refill's cell not yet handed out). Every other case (a double give,
 * no cache, a full cache) goes to the slow path. */
UNIMEM_PVT_INLINE int umi_grid_put(unimem_grid *g, uint64_t i, uint32_t cap, bool checked)
{
	uint32_t *st = &g->state[i];
	uint32_t v = __atomic_load_n(st, __ATOMIC_RELAXED);
	if (UNIMEM_UNLIKELY(!(v & UNIMEM_GRID_PVT_HELD)))
		return -UNIMEM_EALREADY;
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(g);
	if (UNIMEM_LIKELY(e != NULL)) {
		unimem_grid_pvt_slot *s = e->slot;
		__atomic_store_n(&s->busy, 1u, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (UNIMEM_LIKELY(__atomic_load_n(&s->steal, __ATOMIC_ACQUIRE) == 0)) {
			const uint32_t n = __atomic_load_n(&s->n, __ATOMIC_RELAXED);
			uint32_t *cache = unimem_grid_pvt_cache(s);
			if (UNIMEM_LIKELY(n < cap) && !umi_grid_pre_cached(e, cache, n, v, i)) {
				bool ok = true;
				if (checked)
					ok = __atomic_compare_exchange_n(st, &v, e->tag, false,
									 __ATOMIC_RELEASE, __ATOMIC_RELAXED);
				else
					__atomic_store_n(st, e->tag, __ATOMIC_RELEASE);
				if (UNIMEM_LIKELY(ok)) {
					__atomic_store_n(&cache[n], (uint32_t)i, __ATOMIC_RELAXED);
					__atomic_store_n(&s->n, n + 1, __ATOMIC_RELAXED);
					__atomic_store_n(&s->busy, 0u, __ATOMIC_RELEASE);
					return 0;
				}
			}
		}
		__atomic_store_n(&s->busy, 0u, __ATOMIC_RELEASE);
	}
	return unimem_grid_pvt_give_slow(g, i, checked);
}

UNIMEM_END_DECLS

#endif
