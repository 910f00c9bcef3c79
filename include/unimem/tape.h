/* SPDX-License-Identifier: MIT */
/* unimem Tape: a bump allocator over a Block, with an atomic cursor and instant rewind. */
#ifndef UNIMEM_TAPE_H
#define UNIMEM_TAPE_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

/* ABI: the struct is visible so that take and clear can be inline. Changing it bumps the
 * soversion. Fields are private to unimem; use the functions. */
typedef struct unimem_tape {
	/* Offset of the next free byte. Atomic (__atomic builtins); may pass `capacity`
	 * for a moment while a take that does not fit backs out. Alone on its cache line. */
	uint64_t cursor;
	unsigned char pad_[UNIMEM_CACHE_LINE - sizeof(uint64_t)];
	unsigned char *base;      /* first byte of the Tape inside its Block */
	uint64_t capacity;        /* bytes */
	unimem_block *block;      /* the Block the Tape lives in */
	uint32_t flags;           /* private */
	uint32_t reserved_;
} __attribute__((aligned(UNIMEM_CACHE_LINE))) unimem_tape;

/* Start a Tape of at least `bytes` bytes on a new pinned Block that the Tape owns.
 * Returns 0 and sets *out, or a negative errno as unimem_block_open() (*out = NULL). */
UNIMEM_API int unimem_tape_start(unimem_tape **out, size_t bytes);

/* As unimem_tape_start(), with unimem_block_open() flags (UNIMEM_BLOCK_UNPINNED, ...). */
UNIMEM_API int unimem_tape_start_flags(unimem_tape **out, size_t bytes, unsigned flags);

/* Close a Tape from unimem_tape_start() and its Block. NULL is a no-op, and so is a
 * Tape that belongs to a Layout (the Layout closes it). */
UNIMEM_API void unimem_tape_close(unimem_tape *t);

UNIMEM_API const unimem_block *unimem_tape_block(const unimem_tape *t);

/* The slow path of unimem_tape_take(), for a take whose fetch-add found the cursor not
 * aligned or the Tape full; `old` is what the fetch-add returned (the caller then owns
 * [old, old + size)). Call unimem_tape_take() instead. Thread-safe. */
UNIMEM_API void *unimem_tape_take_slow(unimem_tape *t, size_t size, size_t align, uint64_t old);

/* Reserve `size` bytes aligned to `align` (a power of two; alignment is of the address).
 * Returns the memory, or NULL when the Tape cannot fit it or `align` is not a power of
 * two. Never returns overlapping memory, whatever the threads; never wraps. A take that
 * does not fit leaves the room it could not use to later, smaller takes (when no other
 * thread took meanwhile).
 * Lock-free and thread-safe. Fast path: one fetch-add of `size`, taken when the cursor is
 * already aligned, which it stays while takes are multiples of their alignment (64 B at
 * 16, 256 B at 64, ...). Otherwise one compare-exchange more pads the take; when another
 * thread took in between, up to `size` bytes are left unused and the take is retried.
 * size 0 returns a valid, aligned pointer that must not be written; it owns no byte, so
 * under concurrency it may fall inside another take's range. */
UNIMEM_INLINE void *unimem_tape_take(unimem_tape *t, size_t size, size_t align)
{
	const uint64_t cap = t->capacity;
	const uintptr_t mask = (uintptr_t)align - 1;
	if (UNIMEM_UNLIKELY(align == 0 || (align & mask) != 0 || size > cap || align > cap))
		return NULL;
	/* No load first: the fetch-add does not wait on one. */
	const uint64_t old = __atomic_fetch_add(&t->cursor, (uint64_t)size, __ATOMIC_RELAXED);
	const uintptr_t at = (uintptr_t)t->base + (uintptr_t)old;
	if (UNIMEM_LIKELY((at & mask) == 0 && old <= cap - size))
		return (void *)at;
	return unimem_tape_take_slow(t, size, align, old);
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
	const uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	/* The base is page aligned (huge-page aligned in a huge Block): aligning the offset
	 * aligns the address, and keeps the chain from the load to the store short. */
	uint64_t start;
	if (UNIMEM_LIKELY((base & mask) == 0))
		start = (cur + mask) & ~(uint64_t)mask;
	else
		start = (uint64_t)(((base + (uintptr_t)cur + mask) & ~mask) - base);
	if (UNIMEM_UNLIKELY(cur > cap || start > cap - size))
		return NULL;
	__atomic_store_n(&t->cursor, start + size, __ATOMIC_RELAXED);
	return (void *)(base + (uintptr_t)start);
}

/* Rewind: everything taken is free again (the bytes are not zeroed). One atomic store.
 * Clearing while other threads take is the caller's business: the cursor stays sound,
 * but memory handed out before the clear is handed out again. */
UNIMEM_INLINE void unimem_tape_clear(unimem_tape *t)
{
	__atomic_store_n(&t->cursor, 0, __ATOMIC_RELEASE);
}

/* A per-thread chunk of a Tape: a thread takes a large piece of the shared cursor once
 * (one atomic fetch-add), then takes from that piece with plain loads and stores, so that
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

/* Bytes taken so far, alignment padding included (<= capacity). */
UNIMEM_INLINE size_t unimem_tape_used(const unimem_tape *t)
{
	uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	return (size_t)(cur < t->capacity ? cur : t->capacity);
}

/* Bytes the Tape can hold. */
UNIMEM_INLINE size_t unimem_tape_capacity(const unimem_tape *t)
{
	return (size_t)t->capacity;
}

UNIMEM_END_DECLS

#endif
