/* SPDX-License-Identifier: MIT */
/* Tape: the out-of-line part (take and clear are inline in <unimem/tape.h>). */
#include "tape_pvt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void umi_tape_init(unimem_tape *t, unimem_block *b, unsigned char *base, size_t bytes,
		   uint32_t flags)
{
	memset(t, 0, sizeof *t);
	t->base = base;
	t->capacity = bytes;
	t->block = b;
	t->flags = flags;
	/* Unique per open (from 1: a table entry's epoch 0 means none), so that a Tape
	 * opened at the address of a closed one never meets the closed one's chunks. */
	static uint64_t opens;
	uint64_t id = __atomic_add_fetch(&opens, 1, __ATOMIC_RELAXED);
	t->epoch_ = id << 32;
	t->slot_ = (uint32_t)(id % UNIMEM_TAPE_LOCAL_WAYS);
}

__thread unimem_tape_local unimem_tape_local_[UNIMEM_TAPE_LOCAL_WAYS];

void *unimem_tape_take_claim(unimem_tape *t, size_t size, size_t align)
{
	const uintptr_t me = (uintptr_t)unimem_tape_local_;
	uintptr_t solo = 0;
	/* First taker: the Tape is this thread's until another takes. */
	if (__atomic_compare_exchange_n(&t->solo_, &solo, me, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED) ||
	    solo == me)
		return unimem_tape_take_cursor_(t, size, align);
	if (solo != UNIMEM_TAPE_SHARED_)
		__atomic_store_n(&t->solo_, UNIMEM_TAPE_SHARED_, __ATOMIC_RELAXED);
	return unimem_tape_take_refill(t, size, align);
}

enum { LOCAL_GRAB_MIN = 4096, LOCAL_GRAB_MAX = 64 * 1024 };

void *unimem_tape_take_refill(unimem_tape *t, size_t size, size_t align)
{
	if (align == 0 || (align & (align - 1)) != 0)
		return NULL;
	unimem_tape_local *l = &unimem_tape_local_[t->slot_];
	const uint64_t epoch = __atomic_load_n(&t->epoch_, __ATOMIC_RELAXED);
	/* Another Tape's entry or an older epoch: start small again (an evicted chunk's
	 * rest stays taken until its Tape is cleared: small grabs bound what thrashing
	 * between two Tapes of one slot wastes). */
	uint64_t grab = l->epoch == epoch ? l->grab : LOCAL_GRAB_MIN;
	uint64_t most = (t->capacity / 16) & ~(uint64_t)(UNIMEM_CACHE_LINE - 1);
	if (grab > most)
		grab = most;
	if (size > grab / 2 || align > grab / 2)
		return unimem_tape_take_cursor_(t, size, align);
	unsigned char *room = unimem_tape_take_cursor_(t, (size_t)grab, UNIMEM_CACHE_LINE);
	if (!room) /* Not a whole grab left: serve this take from the cursor. */
		return unimem_tape_take_cursor_(t, size, align);
	uintptr_t at = (uintptr_t)room;
	uintptr_t start = (at + (align - 1)) & ~(uintptr_t)(align - 1);
	l->epoch = epoch;
	l->next = start + size;
	l->end = at + (uintptr_t)grab;
	l->grab = grab < LOCAL_GRAB_MAX ? grab * 2 : grab;
	return (void *)start;
}

int unimem_tape_start_flags(unimem_tape **out, size_t bytes, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	unimem_tape *t = aligned_alloc(UNIMEM_CACHE_LINE, sizeof *t);
	if (!t)
		return -ENOMEM;
	unimem_block *b;
	int err = unimem_block_open(&b, bytes, flags);
	if (err) {
		free(t);
		return err;
	}
	umi_tape_init(t, b, unimem_block_ptr(b), unimem_block_size(b), UMI_TAPE_OWNS_BLOCK);
	*out = t;
	return 0;
}

int unimem_tape_start(unimem_tape **out, size_t bytes)
{
	return unimem_tape_start_flags(out, bytes, 0);
}

void unimem_tape_close(unimem_tape *t)
{
	if (!t || (t->flags & UMI_TAPE_BORROWED))
		return;
	if (t->flags & UMI_TAPE_OWNS_BLOCK)
		unimem_block_close(t->block);
	free(t);
}

const unimem_block *unimem_tape_block(const unimem_tape *t)
{
	return t ? t->block : NULL;
}

void *unimem_tape_chunk_refill(unimem_tape_chunk *c, size_t size, size_t align)
{
	if (!c || !c->tape || align == 0 || (align & (align - 1)) != 0)
		return NULL;
	unimem_tape *t = c->tape;
	/* A big take would waste much of a fresh grab, or not fit one: the Tape serves it
	 * and the chunk keeps its room. */
	if (size > c->grab / 2 || align > c->grab / 2)
		return unimem_tape_take_cursor_(t, size, align);
	/* Cache-line aligned, whole lines: two threads' chunks never share a line. */
	unsigned char *room = unimem_tape_take_cursor_(t, (size_t)c->grab, UNIMEM_CACHE_LINE);
	if (!room) /* Not a whole grab left: serve this take from what is left. */
		return unimem_tape_take_cursor_(t, size, align);
	/* size and align are at most half a grab: the aligned take fits the new room. */
	uintptr_t at = (uintptr_t)room;
	uintptr_t start = (at + (align - 1)) & ~(uintptr_t)(align - 1);
	c->next = start + size;
	c->end = at + (uintptr_t)c->grab;
	return (void *)start;
}

/* A take that does not fit adds its size to the cursor before it knows, and gives it back
 * only while it is still the last: under contention on a full Tape the cursor can creep
 * past the capacity by one failed take after another. Nothing above the capacity is
 * anyone's (every take that succeeds ends at or below it), so once the excess passes a
 * whole capacity, pull the cursor back to the capacity: it can never wrap. */
static void *refuse(unimem_tape *t, uint64_t cap)
{
	uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	while (cur > cap && cur - cap > cap)
		if (__atomic_compare_exchange_n(&t->cursor, &cur, cap, true, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			break;
	return NULL;
}

void *unimem_tape_take_slow(unimem_tape *t, size_t size, size_t align, uint64_t old)
{
	const uint64_t cap = t->capacity;
	const uintptr_t base = (uintptr_t)t->base, mask = (uintptr_t)align - 1;
	uint64_t end = old + size; /* the fetch-add gave this thread [old, end) */
	uint64_t pad = old <= cap ? (uint64_t)(((base + old + mask) & ~mask) - (base + old)) : 0;
	if (old <= cap && pad <= cap - old && size <= cap - old - pad) {
		/* It fits once padded: extend the range by the padding while still last. */
		if (__atomic_compare_exchange_n(&t->cursor, &end, end + pad, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return (void *)(base + old + pad);
		/* Another thread took after us: [old, old + size) stays unused. Retry. */
	} else {
		/* It does not fit: give the room back while still last, so that smaller
		 * takes can use it. */
		if (__atomic_compare_exchange_n(&t->cursor, &end, old, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return NULL;
		return refuse(t, cap);
	}
	uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	for (;;) {
		if (cur > cap)
			return refuse(t, cap);
		uintptr_t at = base + (uintptr_t)cur;
		uint64_t p = (uint64_t)(((at + mask) & ~mask) - at);
		if (p > cap - cur || size > cap - cur - p)
			return NULL;
		if (__atomic_compare_exchange_n(&t->cursor, &cur, cur + p + size, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return (void *)(at + p);
	}
}

/* Take room for `len` bytes at `align` (a power of two): one compare-exchange from the
 * cursor as it was (*before) to the room's end, so that a failure later can give back
 * exactly this take, padding included. NULL when it does not fit. */
void *umi_tape_take_room(unimem_tape *t, size_t len, size_t align, uint64_t *before)
{
	const uint64_t cap = t->capacity;
	const uintptr_t base = (uintptr_t)t->base, mask = (uintptr_t)align - 1;
	uint64_t cur = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	for (;;) {
		if (cur > cap)
			return NULL;
		uint64_t pad = (uint64_t)(((base + cur + mask) & ~mask) - (base + cur));
		if (pad > cap - cur || len > cap - cur - pad)
			return NULL;
		if (__atomic_compare_exchange_n(&t->cursor, &cur, cur + pad + len, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			*before = cur;
			return (void *)(base + cur + pad);
		}
	}
}

/* Give back the take that moved the cursor from `before` to `end`, only while it is still
 * the last one (nobody took after it); otherwise it stays taken, unused. */
void umi_tape_give_back(unimem_tape *t, uint64_t before, uint64_t end)
{
	__atomic_compare_exchange_n(&t->cursor, &end, before, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}
