/* SPDX-License-Identifier: MIT */
/* unimem Tape: a bump allocator over a Block, with an atomic cursor and instant rewind. */
#ifndef UNIMEM_TAPE_H
#define UNIMEM_TAPE_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

/* ABI: the struct is visible so that take and clear can be inline. Changing it bumps the
 * soversion (0.2.0: `id_` and `solo_` added in the second cache line, `reserved_`
 * became `slot_`; the size stays two cache lines). Fields are private to unimem; use the
 * functions. */
typedef struct unimem_tape {
	/* The cursor word, atomic (__atomic builtins); read it through unimem_tape_offset_().
	 * Low UNIMEM_TAPE_OFFSET_BITS_ (48) bits: the offset of the next free byte, which may
	 * pass `capacity` for a moment while a take that does not fit backs out (it stays
	 * below 2^47: see UNIMEM_TAPE_CAPACITY_MAX). High 16 bits: the epoch, clears so far
	 * (wrapping), which unimem_tape_clear() bumps in the same store that rewinds the
	 * offset. Alone on its cache line. */
	uint64_t cursor;
	unsigned char pad_[UNIMEM_CACHE_LINE - sizeof(uint64_t)];
	unsigned char *base;      /* first byte of the Tape inside its Block */
	uint64_t capacity;        /* bytes, at most UNIMEM_TAPE_CAPACITY_MAX */
	unimem_block *block;      /* the Block the Tape lives in */
	uint32_t flags;           /* private */
	uint32_t slot_;           /* which entry of a thread's unimem_tape_local_ table */
	/* High 48 bits: a number unique to this Tape in the process (1, 2, ...), a new one at
	 * each open and at each clear that wraps the epoch; low 16 bits 0. Atomic. A per-thread
	 * chunk holds room only while its key is unimem_tape_key_(): id_ | the epoch. */
	uint64_t id_;
	/* 0 before the first take, then the unimem_tape_local_ table address of the one
	 * thread that took so far, then UNIMEM_TAPE_SHARED_ for good once a second one
	 * took: from then on unimem_tape_take() serves every thread from its own chunk. */
	uintptr_t solo_;
} __attribute__((aligned(UNIMEM_CACHE_LINE))) unimem_tape;

/* The cursor word's offset bits (private). */
#define UNIMEM_TAPE_OFFSET_BITS_ 48
#define UNIMEM_TAPE_OFFSET_MASK_ ((((uint64_t)1) << UNIMEM_TAPE_OFFSET_BITS_) - 1)

/* The largest capacity of a Tape (32 TiB): unimem_tape_start() and unimem_layout_open()
 * refuse more with -ENOMEM (as a size the machine cannot back). With it, the offset in
 * the cursor word stays below 2^47 even while failed takes back out (below 3 capacities:
 * only the one thread that takes alone adds before it checks, every other take
 * compares-and-swaps), so it never carries into the epoch bits. */
#define UNIMEM_TAPE_CAPACITY_MAX (((uint64_t)1) << 45)

/* The offset of a cursor word (private: every reader of the cursor goes through it). */
static inline __attribute__((always_inline)) uint64_t unimem_tape_offset_(uint64_t word)
{
	return word & UNIMEM_TAPE_OFFSET_MASK_;
}

/* The key of a per-thread chunk of Tape t taken from cursor word `word` (private): the
 * Tape's id_ | the word's epoch. */
static inline __attribute__((always_inline)) uint64_t
unimem_tape_key_(const unimem_tape *t, uint64_t word)
{
	return __atomic_load_n(&t->id_, __ATOMIC_RELAXED) | (word >> UNIMEM_TAPE_OFFSET_BITS_);
}

/* A thread's cached chunk of one Tape (private; unimem_tape_take() finds it by itself). */
typedef struct unimem_tape_local {
	uint64_t key;       /* unimem_tape_key_() of the word its room came from; 0: none */
	uintptr_t next;     /* next free byte */
	uintptr_t end;      /* one past the room */
	uint64_t grab;      /* bytes of the next grab */
} unimem_tape_local;

#define UNIMEM_TAPE_LOCAL_WAYS 8
#define UNIMEM_TAPE_SHARED_ ((uintptr_t)1)

/* Each thread's table of cached chunks, one entry per Tape slot_ (private). */
UNIMEM_API extern __thread unimem_tape_local unimem_tape_local_[8]; /* UNIMEM_TAPE_LOCAL_WAYS */

/* Start a Tape of at least `bytes` bytes on a new pinned Block that the Tape owns.
 * Returns 0 and sets *out, or a negative errno as unimem_block_open() (*out = NULL);
 * -ENOMEM also for more than UNIMEM_TAPE_CAPACITY_MAX bytes. */
UNIMEM_API int unimem_tape_start(unimem_tape **out, size_t bytes);

/* As unimem_tape_start(), with unimem_block_open() flags (UNIMEM_BLOCK_UNPINNED, ...). */
UNIMEM_API int unimem_tape_start_flags(unimem_tape **out, size_t bytes, unsigned flags);

/* Close a Tape from unimem_tape_start() and its Block. NULL is a no-op, and so is a
 * Tape that belongs to a Layout (the Layout closes it). */
UNIMEM_API void unimem_tape_close(unimem_tape *t);

UNIMEM_API const unimem_block *unimem_tape_block(const unimem_tape *t);

/* The slow path of unimem_tape_take(), for a take whose fetch-add found the cursor not
 * aligned or the Tape full; `old` is the cursor word the fetch-add returned (the caller
 * then owns [offset, offset + size) of it). Call unimem_tape_take() instead. Thread-safe. */
UNIMEM_API void *unimem_tape_take_slow(unimem_tape *t, size_t size, size_t align, uint64_t old);

/* The shared-cursor take (private): one fetch-add of `size` on the Tape's cursor. Only the
 * one thread that takes from the Tape alone calls it; every other take (refills, chunk
 * grabs, large takes, the loaders' rooms) compares-and-swaps, so that at most one take at
 * a time adds to the cursor before it knows whether it fits (UNIMEM_TAPE_CAPACITY_MAX). */
static inline __attribute__((always_inline)) void *
unimem_tape_take_cursor_(unimem_tape *t, size_t size, size_t align)
{
	const uint64_t cap = t->capacity;
	const uintptr_t mask = (uintptr_t)align - 1;
	if (UNIMEM_UNLIKELY(align == 0 || (align & mask) != 0 || size > cap || align > cap))
		return NULL;
	/* No load first: the fetch-add does not wait on one. size <= cap: the offset does
	 * not carry into the epoch bits. */
	const uint64_t old = __atomic_fetch_add(&t->cursor, (uint64_t)size, __ATOMIC_RELAXED);
	const uint64_t off = unimem_tape_offset_(old);
	const uintptr_t at = (uintptr_t)t->base + (uintptr_t)off;
	if (UNIMEM_LIKELY((at & mask) == 0 && off <= cap - size))
		return (void *)at;
	return unimem_tape_take_slow(t, size, align, old);
}

/* The slow paths of unimem_tape_take(): the first take of a thread on a Tape (claim),
 * and a per-thread chunk that is empty, too small or from before a clear (refill).
 * Call unimem_tape_take() instead. Thread-safe. */
UNIMEM_API void *unimem_tape_take_claim(unimem_tape *t, size_t size, size_t align);
UNIMEM_API void *unimem_tape_take_refill(unimem_tape *t, size_t size, size_t align);

/* Reserve `size` bytes aligned to `align` (a power of two; alignment is of the address).
 * Returns the memory, or NULL when the Tape cannot fit it or `align` is not a power of
 * two. Never returns overlapping memory, whatever the threads; never wraps.
 * Lock-free and thread-safe, and threads do not fight over the cursor:
 * - While one thread alone takes from the Tape: one fetch-add of `size` on the cursor,
 *   as unimem_tape_take_owned() but atomic; used() counts exactly what was taken
 *   (padding included). A take that does not fit leaves the room it could not use to
 *   later, smaller takes (when no other thread took meanwhile). When the cursor is not
 *   aligned, one compare-exchange more pads the take.
 * - Once a second thread took from it (for the rest of the Tape's life), each thread
 *   takes from its own chunk of the Tape, found by itself in a small thread-local table
 *   (UNIMEM_TAPE_LOCAL_WAYS entries, by Tape): no atomic operation, no shared write; a
 *   chunk is grabbed from the cursor in bulk (4 KiB, doubling to 1 MiB, at most 1/16 of
 *   the capacity; a take over half a grab goes to the cursor, by compare-and-swap).
 *   The fast path reads the cursor word (no write) for its epoch. used() then counts the
 *   bytes handed to chunks: room a chunk did not hand out yet counts as used, at most one
 *   grab per thread and Tape (and per Tape that evicted another from the table). When no
 *   whole grab fits, the take is served from the cursor, then refused (NULL): up to one
 *   grab per thread may go unused on a full Tape. unimem_tape_clear() invalidates every
 *   chunk (the epoch bits of the cursor word, stored with the rewind; a chunk's key is
 *   the epoch of the very word its grab swapped), and a Tape closed and opened again at
 *   the same address never meets a chunk of the old one (id_ is unique per open).
 * size 0 returns a valid, aligned pointer that must not be written; it owns no byte, so
 * under concurrency it may fall inside another take's range. */
UNIMEM_INLINE void *unimem_tape_take(unimem_tape *t, size_t size, size_t align)
{
	const uintptr_t solo = __atomic_load_n(&t->solo_, __ATOMIC_RELAXED);
	if (UNIMEM_LIKELY(solo == (uintptr_t)unimem_tape_local_))
		return unimem_tape_take_cursor_(t, size, align);
	if (UNIMEM_LIKELY(solo == UNIMEM_TAPE_SHARED_)) {
		unimem_tape_local *l = &unimem_tape_local_[t->slot_];
		const uintptr_t mask = (uintptr_t)align - 1;
		const uintptr_t at = l->next, end = l->end;
		const uintptr_t start = (at + mask) & ~mask;
		/* The clear that rewound the cursor changed its epoch bits in the same store. */
		const uint64_t key =
			unimem_tape_key_(t, __atomic_load_n(&t->cursor, __ATOMIC_RELAXED));
		/* An entry of another Tape or epoch, or none (key 0), refills. */
		if (UNIMEM_LIKELY(l->key == key &&
				  align != 0 && (align & mask) == 0 && start >= at &&
				  start <= end && size <= end - start)) {
			l->next = start + size;
			return (void *)start;
		}
		return unimem_tape_take_refill(t, size, align);
	}
	return unimem_tape_take_claim(t, size, align);
}

/* As unimem_tape_take() for a caller that owns the Tape: no other thread takes or
 * clears it meanwhile. Plain load and store, no atomic read-modify-write. */
UNIMEM_INLINE void *unimem_tape_take_owned(unimem_tape *t, size_t size, size_t align)
{
	const uint64_t cap = t->capacity;
	const uintptr_t base = (uintptr_t)t->base;
	const uintptr_t mask = (uintptr_t)align - 1;
	if (UNIMEM_UNLIKELY(align == 0 || (align & mask) != 0 || size > cap || align > cap))
		return NULL;
	const uint64_t word = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	const uint64_t cur = unimem_tape_offset_(word);
	/* The base is page aligned (huge-page aligned in a huge Block): aligning the offset
	 * aligns the address. Aligned on the whole word, the epoch bits ride along (no carry:
	 * cur + mask < 2^46 whenever cur <= cap), and the chain from the load to the store
	 * stays as short as without them. */
	uint64_t next;
	if (UNIMEM_LIKELY((base & mask) == 0))
		next = (word + mask) & ~(uint64_t)mask;
	else
		next = word - cur + (uint64_t)(((base + (uintptr_t)cur + mask) & ~mask) - base);
	const uint64_t start = unimem_tape_offset_(next);
	if (UNIMEM_UNLIKELY(cur > cap || start > cap - size))
		return NULL;
	__atomic_store_n(&t->cursor, next + size, __ATOMIC_RELAXED);
	return (void *)(base + (uintptr_t)start);
}

/* The slow path of unimem_tape_clear() (private), for the clear in 65,536 that wraps the
 * epoch: it rewinds the cursor, then gives the Tape a new id_. Call unimem_tape_clear(). */
UNIMEM_API void unimem_tape_clear_wrap(unimem_tape *t);

/* Rewind: everything taken is free again (the bytes are not zeroed). One load and ONE
 * plain atomic store of the cursor word: offset 0 and the next epoch, which invalidates
 * every thread's cached chunk of this Tape. (Once in 65,536 clears the epoch wraps to 0:
 * that clear also stores a new id_ after the cursor, out of line, so that no chunk from
 * 65,536 clears ago matches again.) Clearing while other threads take is the caller's
 * business: the cursor stays sound, but memory handed out before the clear is handed
 * out again. */
UNIMEM_INLINE void unimem_tape_clear(unimem_tape *t)
{
	/* All offset bits set, plus one: offset 0, epoch + 1 (0 on the wrap). */
	const uint64_t next =
		(__atomic_load_n(&t->cursor, __ATOMIC_RELAXED) | UNIMEM_TAPE_OFFSET_MASK_) + 1;
	if (UNIMEM_LIKELY(next != 0))
		__atomic_store_n(&t->cursor, next, __ATOMIC_RELEASE);
	else
		unimem_tape_clear_wrap(t);
}

/* A per-thread chunk of a Tape: a thread takes a large piece of the shared cursor once
 * (one compare-and-swap), then takes from that piece with plain loads and stores, so that
 * threads sharing one Tape do not fight over its cursor's cache line.
 *
 *     unimem_tape_chunk c;                     // one per thread (stack or thread-local)
 *     unimem_tape_chunk_init(&c, tape, 0);     // 0: UNIMEM_TAPE_CHUNK_DEFAULT bytes a grab
 *     float *x = unimem_tape_chunk_take(&c, 256, 16);
 *
 * Takes from chunks never overlap each other nor takes made straight from the Tape,
 * whatever the threads. A chunk belongs to one thread at a time (it is not thread-safe);
 * the Tape behind it is shared. Its room is cache-line aligned and whole cache lines, so
 * two threads' chunks never share a line. Room a chunk grabbed and did not hand out stays
 * taken (counted by unimem_tape_used()) until the Tape is cleared: at most one grab per
 * chunk. A take larger than half a grab goes to the Tape directly. When the Tape cannot
 * give a whole grab, the take is served from what is left, then refused (NULL).
 *
 * After unimem_tape_clear(), call unimem_tape_chunk_reset() on every chunk of that Tape
 * before it takes again: a chunk that kept its room across a clear hands out memory that
 * the Tape hands out again (clear while others take is the caller's business).
 * ABI: the struct is visible so that take can be inline; fields are private. */
typedef struct unimem_tape_chunk {
	uintptr_t next;     /* next free byte; 1 with end 0 when the chunk holds no room */
	uintptr_t end;      /* one past the chunk's room */
	unimem_tape *tape;
	uint64_t grab;      /* bytes taken from the Tape a refill, a multiple of 64 */
} unimem_tape_chunk;

/* Bytes a chunk grabs at a time when unimem_tape_chunk_init() is given 0. */
#define UNIMEM_TAPE_CHUNK_DEFAULT ((size_t)64 * 1024)

/* Set up a chunk over Tape `t` that grabs `grab` bytes at a time (rounded up to a
 * multiple of 64; 0 means UNIMEM_TAPE_CHUNK_DEFAULT). It holds no room until its first
 * take. Never fails; cheap (no call into the library). */
UNIMEM_INLINE void unimem_tape_chunk_init(unimem_tape_chunk *c, unimem_tape *t, size_t grab)
{
	if (grab == 0)
		grab = UNIMEM_TAPE_CHUNK_DEFAULT;
	if (grab > (size_t)1 << 62)
		grab = (size_t)1 << 62;
	c->next = 1;
	c->end = 0;
	c->tape = t;
	c->grab = ((uint64_t)grab + (UNIMEM_CACHE_LINE - 1)) & ~(uint64_t)(UNIMEM_CACHE_LINE - 1);
}

/* The slow path of unimem_tape_chunk_take(): grab new room from the Tape (or serve a
 * large take from the Tape directly). Returns the memory or NULL as unimem_tape_take().
 * Call unimem_tape_chunk_take() instead. Not thread-safe for `c`; thread-safe for the Tape. */
UNIMEM_API void *unimem_tape_chunk_refill(unimem_tape_chunk *c, size_t size, size_t align);

/* Take `size` bytes aligned to `align` (a power of two) from the chunk, grabbing more
 * room from its Tape when the chunk runs out. Returns the memory, or NULL when the Tape
 * cannot fit it or `align` is not a power of two. size 0 returns a valid, aligned pointer
 * that must not be written. No atomic operation on the fast path: two compares, one store.
 * Not thread-safe for `c` (one thread per chunk); thread-safe against other chunks and
 * takes of the same Tape. */
UNIMEM_INLINE void *unimem_tape_chunk_take(unimem_tape_chunk *c, size_t size, size_t align)
{
	const uintptr_t mask = (uintptr_t)align - 1;
	const uintptr_t at = c->next, end = c->end;
	/* No wrap: user-space addresses stay below 2^63 and align <= 2^63 on 64-bit
	 * targets; 32-bit ones check it. An empty chunk (next 1, end 0) always refills. */
	const uintptr_t start = (at + mask) & ~mask;
	if (UNIMEM_LIKELY(align != 0 && (align & mask) == 0 && start <= end &&
			  size <= end - start && (sizeof(uintptr_t) >= 8 || start >= at))) {
		c->next = start + size;
		return (void *)start;
	}
	return unimem_tape_chunk_refill(c, size, align);
}

/* Forget the chunk's room (it stays taken on the Tape until the next clear). Call it
 * after unimem_tape_clear() of the chunk's Tape, before the chunk takes again. */
UNIMEM_INLINE void unimem_tape_chunk_reset(unimem_tape_chunk *c)
{
	c->next = 1;
	c->end = 0;
}

/* Bytes taken so far, alignment padding included (<= capacity). Once several threads
 * took from the Tape, room handed to their chunks counts as taken (unimem_tape_take()). */
UNIMEM_INLINE size_t unimem_tape_used(const unimem_tape *t)
{
	uint64_t cur = unimem_tape_offset_(__atomic_load_n(&t->cursor, __ATOMIC_RELAXED));
	return (size_t)(cur < t->capacity ? cur : t->capacity);
}

/* Bytes the Tape can hold. */
UNIMEM_INLINE size_t unimem_tape_capacity(const unimem_tape *t)
{
	return (size_t)t->capacity;
}

UNIMEM_END_DECLS

#endif
