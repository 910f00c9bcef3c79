/* SPDX-License-Identifier: MIT */
/* Tape: the out-of-line part (take and clear are inline in <unimem/tape.h>). */
#include "tape_pvt.h"
#include "block_pvt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Tape numbers: unique in the process, from 1 (a table entry's key 0 means none), below
 * 2^48 (2^48 opens and epoch wraps would take centuries). */
static uint64_t next_number(void)
{
	static uint64_t numbers;
	return __atomic_add_fetch(&numbers, 1, __ATOMIC_RELAXED) & UNIMEM_TAPE_OFFSET_MASK_;
}

void umi_tape_init(unimem_tape *t, unimem_block *b, unsigned char *base, size_t bytes,
		   uint32_t flags)
{
	memset(t, 0, sizeof *t);
	t->base = base;
	t->capacity = bytes;
	t->block = b;
	t->flags = flags;
	uint64_t n = next_number();
	__atomic_store_n(&t->id_, n << (64 - UNIMEM_TAPE_OFFSET_BITS_), __ATOMIC_RELAXED);
	t->slot_ = (uint32_t)(n % UNIMEM_TAPE_LOCAL_WAYS);
}

void unimem_tape_clear_wrap(unimem_tape *t)
{
	/* Rewind first (epoch 0), then the new id_, released: a refill that reads the new
	 * id_ (acquiring it before its compare-and-swap) swaps a word of epoch 0 or later,
	 * and one that reads the old id_ keys its chunk to an id that no Tape has any more.
	 * Chunks of epoch 0 from 65,536 clears ago match only between the two stores, that
	 * is while a take runs concurrently with the clear (the caller's business). */
	__atomic_store_n(&t->cursor, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t->id_, next_number() << (64 - UNIMEM_TAPE_OFFSET_BITS_),
			 __ATOMIC_RELEASE);
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

/* A take from the cursor by compare-and-swap: it never adds to the cursor what does not
 * fit (only the thread that takes alone fetch-adds, so the offset stays bounded: see
 * UNIMEM_TAPE_CAPACITY_MAX). `align` is a power of two. Sets *word to the cursor word it
 * swapped (its epoch is the one the room belongs to). NULL when it does not fit. */
static void *take_cas(unimem_tape *t, size_t size, size_t align, uint64_t *word)
{
	const uint64_t cap = t->capacity;
	const uintptr_t base = (uintptr_t)t->base, mask = (uintptr_t)align - 1;
	uint64_t w = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	for (;;) {
		const uint64_t cur = unimem_tape_offset_(w);
		if (cur > cap)
			return NULL;
		uintptr_t at = base + (uintptr_t)cur;
		uint64_t p = (uint64_t)(((at + mask) & ~mask) - at);
		if (p > cap - cur || size > cap - cur - p)
			return NULL;
		if (__atomic_compare_exchange_n(&t->cursor, &w, w + p + size, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			if (word)
				*word = w;
			return (void *)(at + p);
		}
	}
}

/* Grabs double from 4 KiB to 1 MiB (at most 1/16 of the capacity). Large grabs keep the
 * cursor's cache line quiet: every chunk take reads it for the epoch, so each grab costs
 * every other thread a miss. With 64 KiB grabs, 16 threads on the H200 host took 2.3x a
 * lone thread; a thread that takes little never grabs much (the doubling). */
enum { LOCAL_GRAB_MIN = 4096, LOCAL_GRAB_MAX = 1024 * 1024 };

void *unimem_tape_take_refill(unimem_tape *t, size_t size, size_t align)
{
	if (align == 0 || (align & (align - 1)) != 0)
		return NULL;
	unimem_tape_local *l = &unimem_tape_local_[t->slot_];
	/* Before the swap, acquired: see unimem_tape_clear_wrap(). */
	const uint64_t id = __atomic_load_n(&t->id_, __ATOMIC_ACQUIRE);
	const uint64_t key = id | (__atomic_load_n(&t->cursor, __ATOMIC_RELAXED) >>
				   UNIMEM_TAPE_OFFSET_BITS_);
	/* Another Tape's entry or an older epoch: start small again (an evicted chunk's
	 * rest stays taken until its Tape is cleared: small grabs bound what thrashing
	 * between two Tapes of one slot wastes). */
	uint64_t grab = l->key == key ? l->grab : LOCAL_GRAB_MIN;
	uint64_t most = (t->capacity / 16) & ~(uint64_t)(UNIMEM_CACHE_LINE - 1);
	if (grab > most)
		grab = most;
	if (size > grab / 2 || align > grab / 2)
		return take_cas(t, size, align, NULL);
	uint64_t w;
	unsigned char *room = take_cas(t, (size_t)grab, UNIMEM_CACHE_LINE, &w);
	if (!room) /* Not a whole grab left: serve this take from the cursor. */
		return take_cas(t, size, align, NULL);
	uintptr_t at = (uintptr_t)room;
	uintptr_t start = (at + (align - 1)) & ~(uintptr_t)(align - 1);
	/* The epoch of the word the grab swapped: a clear before the swap is seen. */
	l->key = id | (w >> UNIMEM_TAPE_OFFSET_BITS_);
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
	/* More than the offset bits of the cursor word say: -ENOMEM, as a size the machine
	 * cannot back, once bad input has had its -EINVAL. */
	int bad = umi_block_check_open(bytes, flags);
	if (bad)
		return bad;
	if ((uint64_t)bytes > UNIMEM_TAPE_CAPACITY_MAX)
		return -ENOMEM;
	unimem_tape *t = aligned_alloc(UNIMEM_CACHE_LINE, sizeof *t);
	if (!t)
		return -ENOMEM;
	unimem_block *b;
	int err = unimem_block_open(&b, bytes, flags);
	if (err) {
		free(t);
		return err;
	}
	/* Rounded up to huge pages past it (the size asked was not). */
	if ((uint64_t)unimem_block_size(b) > UNIMEM_TAPE_CAPACITY_MAX) {
		unimem_block_close(b);
		free(t);
		return -ENOMEM;
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
		return take_cas(t, size, align, NULL);
	/* Cache-line aligned, whole lines: two threads' chunks never share a line. */
	unsigned char *room = take_cas(t, (size_t)c->grab, UNIMEM_CACHE_LINE, NULL);
	if (!room) /* Not a whole grab left: serve this take from what is left. */
		return take_cas(t, size, align, NULL);
	/* size and align are at most half a grab: the aligned take fits the new room. */
	uintptr_t at = (uintptr_t)room;
	uintptr_t start = (at + (align - 1)) & ~(uintptr_t)(align - 1);
	c->next = start + size;
	c->end = at + (uintptr_t)c->grab;
	return (void *)start;
}

/* A take that does not fit adds its size to the cursor before it knows, and gives it back
 * only while it is still the last. Only the thread that takes alone fetch-adds (the other
 * takes compare-and-swap), so the offset passes the capacity by one take at most, plus
 * what a failed give-back left, which this bounds: once the excess passes a whole
 * capacity, pull the cursor back to the capacity (nothing above it is anyone's: every take
 * that succeeds ends at or below it). The offset stays below 3 capacities. */
static void *refuse(unimem_tape *t, uint64_t cap)
{
	uint64_t w = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	for (uint64_t cur = unimem_tape_offset_(w); cur > cap && cur - cap > cap;
	     cur = unimem_tape_offset_(w))
		if (__atomic_compare_exchange_n(&t->cursor, &w, w - cur + cap, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			break;
	return NULL;
}

void *unimem_tape_take_slow(unimem_tape *t, size_t size, size_t align, uint64_t old)
{
	const uint64_t cap = t->capacity;
	const uintptr_t base = (uintptr_t)t->base, mask = (uintptr_t)align - 1;
	const uint64_t off = unimem_tape_offset_(old);
	uint64_t end = old + size; /* the fetch-add gave this thread [off, off + size) */
	uint64_t pad = off <= cap ? (uint64_t)(((base + off + mask) & ~mask) - (base + off)) : 0;
	if (off <= cap && pad <= cap - off && size <= cap - off - pad) {
		/* It fits once padded: extend the range by the padding while still last. */
		if (__atomic_compare_exchange_n(&t->cursor, &end, end + pad, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return (void *)(base + off + pad);
		/* Another thread took after us: [off, off + size) stays unused. Retry. */
	} else {
		/* It does not fit: give the room back while still last, so that smaller
		 * takes can use it. */
		if (__atomic_compare_exchange_n(&t->cursor, &end, old, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return NULL;
		return refuse(t, cap);
	}
	if (unimem_tape_offset_(__atomic_load_n(&t->cursor, __ATOMIC_RELAXED)) > cap)
		return refuse(t, cap);
	return take_cas(t, size, align, NULL);
}

/* Take room for `len` bytes at `align` (a power of two): one compare-exchange from the
 * cursor word as it was (*before, epoch bits included) to the room's end, so that a
 * failure later can give back exactly this take, padding included. NULL when it does not
 * fit. */
void *umi_tape_take_room(unimem_tape *t, size_t len, size_t align, uint64_t *before)
{
	return take_cas(t, len, align, before);
}

/* Give back the take that moved the cursor from the word `before` to the offset `end`,
 * only while it is still the last one (nobody took after it, and no clear came between);
 * otherwise it stays taken, unused. */
void umi_tape_give_back(unimem_tape *t, uint64_t before, uint64_t end)
{
	uint64_t now = (before & ~UNIMEM_TAPE_OFFSET_MASK_) | end;
	__atomic_compare_exchange_n(&t->cursor, &now, before, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}
