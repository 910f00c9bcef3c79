/* SPDX-License-Identifier: MIT */
/* Grid internals shared by src/grid.c (open, attach, close), src/grid_slow.c (the slow
 * paths of take and give, holder slots, stealing) and src/grid_reclaim.c. Never installed. */
#ifndef UNIMEM_GRID_INT_H
#define UNIMEM_GRID_INT_H

#include "base.h"

#include <time.h>

#define UMI_GRID_OWNS_BLOCK 1u /* from unimem_grid_open: close closes the Block */

#define UMI_GRID_HELD UNIMEM_GRID_PVT_HELD
#define UMI_GRID_CACHED UNIMEM_GRID_PVT_CACHED
#define UMI_GRID_IDX UNIMEM_GRID_PVT_INDEX
#define UMI_GRID_PRE UNIMEM_GRID_PVT_PRE

/* The state of a cell that a refill of slot t (of attachment rec) claimed into place 0 of
 * its cache (place k: this + k). */
static inline uint32_t umi_grid_pre(uint32_t rec, uint32_t t)
{
	return UMI_GRID_PRE | (rec & 0x3fu) << 16 | (t & 0xffu) << 8;
}

/* Whether state v is a refill's (PRE): attachment in bits 16-21, slot 8-15, place 0-7
 * (bits 22-29 are 0 in every PRE this library writes). */
static inline bool umi_grid_is_pre(uint32_t v)
{
	return (v & UMI_GRID_PRE) == UMI_GRID_PRE;
}

/* A PRE's attachment, slot, and whether it has bits no PRE of this library has. */
static inline uint32_t umi_grid_pre_rec(uint32_t v)
{
	return v >> 16 & 0x3fu;
}

static inline uint32_t umi_grid_pre_slot(uint32_t v)
{
	return v >> 8 & 0xffu;
}

static inline bool umi_grid_pre_junk(uint32_t v)
{
	return (v & 0x3fc00000u) != 0;
}

/* Whether state v says that the entry at place k of a slot's cache is still there: given
 * there (`tag`), or put there by a refill (`pre`, the slot's PRE at place 0). */
static inline bool umi_grid_entry_is(uint32_t v, uint32_t tag, uint32_t pre, uint32_t k)
{
	return v == tag || v == (pre | k);
}

/* A slot's cache emptied: no entries, none of them a refill's. */
static inline void umi_grid_slot_empty(unimem_grid_pvt_slot *s)
{
	__atomic_store_n(&s->n, 0u, __ATOMIC_RELAXED);
	__atomic_store_n(&s->fresh, 0u, __ATOMIC_RELAXED);
}
#define UMI_GRID_NO_REC UINT32_MAX

/* Where everything of a Grid of this shape lies in its Block. */
struct umi_grid_layout {
	uint64_t span, words, off_bits, off_state, off_slots, off_recs, bytes;
	uint32_t cap;        /* cells a holder slot caches */
	uint32_t slot_bytes; /* UNIMEM_GRID_PVT_SLOT_BYTES(cap) */
};

/* The number of g's holder slot s (unimem_grid_pvt_slot_at's inverse). */
static inline uint32_t umi_grid_slot_index(const unimem_grid *g, const unimem_grid_pvt_slot *s)
{
	return (uint32_t)(((const unsigned char *)s - (const unsigned char *)g->slots) / g->slot_bytes);
}

/* Entries a slot's memory has room for (its cache's bound, whatever n a peer wrote). */
static inline uint32_t umi_grid_slot_room(const unimem_grid *g)
{
	return (g->slot_bytes - (uint32_t)sizeof(unimem_grid_pvt_slot)) / 4u;
}

/* The layout of `count` cells of `cell` bytes (a positive multiple of 64); -EINVAL when
 * the shape is impossible or the sizes overflow. */
int umi_grid_layout_of(uint64_t cell, uint64_t count, struct umi_grid_layout *l);

/* Cells a refill claims for a cache of `cap` cells: half of it (at least 1). */
static inline uint32_t umi_grid_refill(uint32_t cap)
{
	return cap / 2 ? cap / 2 : 1;
}

/* The cell where holder slot t's first refill starts (its rover at open; later refills
 * start in the word where the last one ended, at the same bit): slots take groups of a
 * refill's cells (at least 32, a multiple of 32) in turn, so that the state words of the
 * first holders (slots are handed out from 0) lie in 128-byte groups of their own
 * (off_state is 128-byte aligned; Intel's L2 fetches lines in 128-byte pairs). */
static inline uint64_t umi_grid_start(uint32_t t, uint64_t count, uint32_t cap)
{
	const uint64_t step = (umi_grid_refill(cap) + 31u) / 32u * 32u;
	return (uint64_t)t % ((count + step - 1) / step) * step;
}

/* This process's identity as an attachment records it (pid << 32 | start time). */
uint64_t umi_grid_self_ident(void);

/* Whether the process an attachment names is still alive (not a zombie, same start time). */
bool umi_grid_ident_alive(uint64_t ident);

/* Whether this process may run caches (membarrier registered) and steal. */
bool umi_grid_membarrier_ok(void);

/* Issue the asymmetric fence that lets a thief see the busy flag of every owner in this
 * process (`other_processes` false: fast) or in every process (true: milliseconds); false
 * when the system refuses it. */
bool umi_grid_membarrier(bool other_processes);

/* Claim an attachment record for g in this process (g->rec, g->pid); -EUSERS when full. */
int umi_grid_claim_record(unimem_grid *g);

/* Give every cell of this handle's holder slots back to the shared pool and free the slots
 * (close); `tid` 0 for every thread, else only that thread's (thread exit). A slot whose
 * thief (another attachment, alive) has not let go of it within UMI_GRID_THIEF_WAIT_NS
 * (stopped, or a hostile peer) has its cells given back by compare-and-swap, as the
 * thief's drain would, and stays owned: freeing it under the thief would let the thief
 * empty the next owner's cache. Returns how many slots were left so (0 normally). */
uint32_t umi_grid_release_slots(unimem_grid *g, int32_t tid);

/* How long close and thread exit wait for a live thief to let go of a slot (a thief's
 * drain takes microseconds, its fence at most an RCU grace period: tens of ms). */
#define UMI_GRID_THIEF_WAIT_NS 1000000000ull

/* Return the cells HELD by attachment `rec` to the pool (close of that handle). */
void umi_grid_return_held(unimem_grid *g, uint32_t rec);

/* How long a reclaim waits for another one that runs (a live holder of the reclaim lock):
 * unimem_grid_reclaim() then returns -EBUSY; a dry take's reclaim waits less. */
#define UMI_GRID_RECLAIM_WAIT_NS 1000000000ull
#define UMI_GRID_RECLAIM_TAKE_WAIT_NS 100000000ull

/* Reclaim when some attachment other than g's is dead, for a dry take: the cells it gave
 * back; 1 when it had to wait for another reclaim (whose cells the take may find in the
 * pool now); 0 when no attachment is dead (no lock taken, no scan); -EBUSY when the other
 * reclaim did not end within UMI_GRID_RECLAIM_TAKE_WAIT_NS. */
long umi_grid_reclaim_if_dead(unimem_grid *g);

static inline uint64_t umi_grid_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Put cell i (state already 0) back in the bitmap. */
static inline void umi_grid_set_bit(unimem_grid *g, uint64_t i)
{
	__atomic_fetch_or(&g->bits[i >> 6], (uint64_t)1 << (i & 63), __ATOMIC_RELEASE);
}

/* The attachment + 1 of the thief a steal flag names (its token's low bits), or 0 for a
 * flag that names none alive or dead: 0, STALE, or junk in a shared Block. */
static inline uint32_t umi_grid_thief(uint32_t flag)
{
	const uint32_t by = flag & UNIMEM_GRID_PVT_THIEF;
	return flag == UNIMEM_GRID_PVT_STALE || by > UNIMEM_GRID_PVT_RECS ? 0u : by;
}

/* The process identity in the record of attachment `owner` (a slot's owner field:
 * attachment + 1), or 0 when `owner` names no record. */
static inline uint64_t umi_grid_owner_ident(const unimem_grid *g, uint32_t owner)
{
	if (!owner || owner > UNIMEM_GRID_PVT_RECS)
		return 0;
	return __atomic_load_n(&g->recs[owner - 1].ident, __ATOMIC_ACQUIRE);
}

/* The process registry (handles of this process), for thread exit and fork. */
void umi_grid_registry_lock(void);
void umi_grid_registry_unlock(void);
unimem_grid *umi_grid_registry_first(void);

/* Once per process: the thread-exit key and the fork handlers. */
void umi_grid_process_init(void);

/* This process's pid (cached, reset in the child of a fork). */
int umi_grid_getpid(void);

/* The calling thread's id (cached). */
int32_t umi_grid_tid(void);

#endif
