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

/* Reserve `size` bytes aligned to `align` (a power of two; alignment is of the address).
 * Returns the memory, or NULL when the Tape cannot fit it or `align` is not a power of
 * two. Never returns overlapping memory, whatever the threads; never wraps. A take that
 * does not fit leaves the room it could not use to later, smaller takes.
 * Lock-free and thread-safe: one relaxed load and one fetch-add when uncontended.
 * size 0 returns a valid, aligned pointer that must not be written. */
UNIMEM_INLINE void *unimem_tape_take(unimem_tape *t, size_t size, size_t align)
{
	const uint64_t cap = t->capacity;
	const uintptr_t base = (uintptr_t)t->base;
	if (UNIMEM_UNLIKELY(((align - 1) & align) != 0 || align == 0 || size > cap || align > cap))
		return NULL;
	const uintptr_t mask = (uintptr_t)align - 1;
	uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	for (;;) {
		/* cur <= cap here or the check below refuses; no sum can overflow 64 bits. */
		uintptr_t at = base + (uintptr_t)cur;
		uint64_t need = (uint64_t)(((at + mask) & ~mask) - at) + size;
		if (UNIMEM_UNLIKELY(cur > cap || need > cap - cur))
			return NULL;
		uint64_t old = __atomic_fetch_add(&t->cursor, need, __ATOMIC_RELAXED);
		if (UNIMEM_LIKELY(old == cur))
			return (void *)(((at + mask) & ~mask));
		/* Another thread moved the cursor: we own [old, old + need). Use it if the
		 * aligned start still fits inside, else give it back when we are still last. */
		at = base + (uintptr_t)old;
		uintptr_t start = (at + mask) & ~mask;
		if (old <= cap && need <= cap - old && start - at + size <= need)
			return (void *)start;
		uint64_t end = old + need;
		__atomic_compare_exchange_n(&t->cursor, &end, old, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
		cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	}
}

/* As unimem_tape_take() for a caller that owns the Tape: no other thread takes or
 * clears it meanwhile. Plain load and store, no atomic read-modify-write. */
UNIMEM_INLINE void *unimem_tape_take_owned(unimem_tape *t, size_t size, size_t align)
{
	const uint64_t cap = t->capacity;
	if (UNIMEM_UNLIKELY(((align - 1) & align) != 0 || align == 0 || size > cap || align > cap))
		return NULL;
	const uintptr_t mask = (uintptr_t)align - 1;
	uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	uintptr_t at = (uintptr_t)t->base + (uintptr_t)cur;
	uintptr_t start = (at + mask) & ~mask;
	uint64_t need = (uint64_t)(start - at) + size;
	if (UNIMEM_UNLIKELY(cur > cap || need > cap - cur))
		return NULL;
	__atomic_store_n(&t->cursor, cur + need, __ATOMIC_RELAXED);
	return (void *)start;
}

/* Rewind: everything taken is free again (the bytes are not zeroed). One atomic store.
 * Clearing while other threads take is the caller's business: the cursor stays sound,
 * but memory handed out before the clear is handed out again. */
UNIMEM_INLINE void unimem_tape_clear(unimem_tape *t)
{
	__atomic_store_n(&t->cursor, 0, __ATOMIC_RELEASE);
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
