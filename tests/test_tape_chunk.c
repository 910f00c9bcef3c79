/* SPDX-License-Identifier: MIT */
/* Tape chunks (unimem_tape_chunk_*) and the padded / full paths of unimem_tape_take(). */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static unimem_tape *start(size_t bytes)
{
	unimem_tape *t = NULL;
	cr_assert_eq(unimem_tape_start_flags(&t, bytes, UNIMEM_BLOCK_UNPINNED), 0);
	return t;
}

static uintptr_t base_of(unimem_tape *t)
{
	return (uintptr_t)unimem_block_ptr(unimem_tape_block(t));
}

struct span {
	uintptr_t at;
	size_t len;
};

static int by_address(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* Every span inside the Tape and no two overlapping (empty spans only inside). */
static void check_disjoint(unimem_tape *t, struct span *s, size_t n)
{
	uintptr_t lo = base_of(t), hi = lo + unimem_tape_capacity(t);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		cr_assert_geq(s[i].at, lo);
		cr_assert_leq(s[i].at + s[i].len, hi);
		if (s[i].len)
			s[k++] = s[i];
	}
	n = k;
	qsort(s, n, sizeof *s, by_address);
	for (size_t i = 0; i < n; i++) {
		cr_assert_geq(s[i].at, lo);
		cr_assert_leq(s[i].at + s[i].len, hi);
		if (i)
			cr_assert_leq(s[i - 1].at + s[i - 1].len, s[i].at, "overlap at %zu", i);
	}
}

Test(tape_chunk, init_rounds_the_grab)
{
	unimem_tape *t = start(1 << 20);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 0);
	cr_assert_eq(c.grab, UNIMEM_TAPE_CHUNK_DEFAULT);
	unimem_tape_chunk_init(&c, t, 100);
	cr_assert_eq(c.grab, 128);
	cr_assert_eq(unimem_tape_used(t), 0, "init takes nothing from the Tape");
	unimem_tape_close(t);
}

Test(tape_chunk, takes_are_aligned_in_bounds_and_disjoint)
{
	unimem_tape *t = start(1 << 20);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 4096);
	static struct span s[4096];
	size_t n = 0;
	for (size_t align = 1; align <= 1024; align <<= 1)
		for (size_t size = 0; size < 300; size += 37) {
			unsigned char *p = unimem_tape_chunk_take(&c, size, align);
			cr_assert_not_null(p, "size %zu align %zu", size, align);
			cr_assert_eq((uintptr_t)p % align, 0);
			memset(p, 0x5a, size);
			s[n++] = (struct span){ (uintptr_t)p, size };
		}
	check_disjoint(t, s, n);
	unimem_tape_close(t);
}

Test(tape_chunk, grabs_whole_cache_lines)
{
	unimem_tape *t = start(1 << 20);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 1000);
	(void)unimem_tape_take(t, 3, 1); /* leave the cursor off a cache line */
	void *p = unimem_tape_chunk_take(&c, 8, 8);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % UNIMEM_CACHE_LINE, 0, "a grab starts on a cache line");
	cr_assert_eq(unimem_tape_used(t), 64 + 1024, "padding to the line, then the grab");
	unimem_tape_close(t);
}

Test(tape_chunk, refuses_bad_alignment_and_oversize)
{
	unimem_tape *t = start(1 << 16);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 4096);
	size_t bad[] = { 0, 3, 6, 48, 100, SIZE_MAX, ((size_t)1 << 63) + 1 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_null(unimem_tape_chunk_take(&c, 8, bad[i]), "align %zu", bad[i]);
		/* also with room in the chunk */
		cr_assert_not_null(unimem_tape_chunk_take(&c, 8, 8));
		cr_assert_null(unimem_tape_chunk_take(&c, 8, bad[i]), "align %zu", bad[i]);
	}
	cr_assert_null(unimem_tape_chunk_take(&c, unimem_tape_capacity(t) + 1, 1));
	cr_assert_null(unimem_tape_chunk_take(&c, SIZE_MAX, 1));
	cr_assert_null(unimem_tape_chunk_take(&c, 8, (size_t)1 << 63));
	unimem_tape_close(t);
}

Test(tape_chunk, size_zero_gives_a_valid_pointer)
{
	unimem_tape *t = start(1 << 16);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 4096);
	uintptr_t p = (uintptr_t)unimem_tape_chunk_take(&c, 0, 16);
	cr_assert_neq(p, 0);
	cr_assert_eq(p % 16, 0);
	cr_assert_geq(p, base_of(t));
	cr_assert_lt(p, base_of(t) + unimem_tape_capacity(t));
	unimem_tape_close(t);
}

Test(tape_chunk, fills_the_whole_tape_then_refuses)
{
	unimem_tape *t = start(1 << 16);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 1000); /* 1024: does not divide what is left at the end */
	(void)unimem_tape_take(t, 64 * 5, 64);
	size_t n = 0;
	while (unimem_tape_chunk_take(&c, 64, 64))
		n++;
	cr_assert_eq(n * 64 + 64 * 5, unimem_tape_capacity(t), "the tail is served too");
	cr_assert_null(unimem_tape_chunk_take(&c, 1, 1));
	cr_assert_eq(unimem_tape_used(t), unimem_tape_capacity(t));
	unimem_tape_close(t);
}

Test(tape_chunk, big_take_goes_to_the_tape_and_the_chunk_keeps_its_room)
{
	unimem_tape *t = start(1 << 20);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 4096);
	uintptr_t a = (uintptr_t)unimem_tape_chunk_take(&c, 64, 64);
	uintptr_t big = (uintptr_t)unimem_tape_chunk_take(&c, 5000, 64);
	uintptr_t b = (uintptr_t)unimem_tape_chunk_take(&c, 64, 64);
	cr_assert(a && big && b);
	cr_assert_eq(b, a + 64, "the chunk kept its room");
	cr_assert_geq(big, a + 4096, "the big take comes after the chunk");
	unimem_tape_close(t);
}

Test(tape_chunk, mixed_with_direct_takes_never_overlap)
{
	unimem_tape *t = start(1 << 20);
	unimem_tape_chunk c1, c2;
	unimem_tape_chunk_init(&c1, t, 512);
	unimem_tape_chunk_init(&c2, t, 2048);
	static struct span s[30000];
	size_t n = 0;
	unsigned seed = 7;
	for (;;) {
		size_t size = (size_t)(rand_r(&seed) % 300), align = (size_t)1 << (rand_r(&seed) % 8);
		int who = rand_r(&seed) % 4;
		void *p = who == 0 ? unimem_tape_take(t, size, align)
			: who == 1 ? unimem_tape_take_owned(t, size, align)
			: who == 2 ? unimem_tape_chunk_take(&c1, size, align)
				   : unimem_tape_chunk_take(&c2, size, align);
		if (!p)
			break;
		cr_assert_eq((uintptr_t)p % align, 0);
		s[n++] = (struct span){ (uintptr_t)p, size };
		cr_assert_lt(n, sizeof s / sizeof s[0]);
	}
	check_disjoint(t, s, n);
	unimem_tape_close(t);
}

Test(tape_chunk, reset_after_clear_starts_again_from_the_front)
{
	unimem_tape *t = start(1 << 20);
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 4096);
	uintptr_t first = (uintptr_t)unimem_tape_chunk_take(&c, 64, 64);
	cr_assert_eq(first, base_of(t));
	(void)unimem_tape_chunk_take(&c, 64, 64);
	unimem_tape_clear(t);
	unimem_tape_chunk_reset(&c);
	cr_assert_eq(unimem_tape_used(t), 0);
	cr_assert_eq((uintptr_t)unimem_tape_chunk_take(&c, 64, 64), base_of(t));
	cr_assert_eq(unimem_tape_used(t), 4096);
	unimem_tape_close(t);
}

/* Threads, each with its own chunk (or straight on the Tape), fill one Tape: every byte
 * handed out is written with its owner's mark and still holds it at the end. */
#define THREADS 4
#define MAX_SPANS 40000

struct worker {
	unimem_tape *t;
	int id;
	size_t n;
	struct span s[MAX_SPANS];
};

static void *fill(void *arg)
{
	struct worker *w = arg;
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, w->t, w->id == 0 ? 0 : 256u << w->id);
	unsigned seed = (unsigned)w->id * 7919u + 1;
	while (w->n < MAX_SPANS) {
		size_t size = 1 + (size_t)(rand_r(&seed) % 200);
		size_t align = (size_t)1 << (rand_r(&seed) % 7);
		/* thread 3 takes straight from the Tape, padded or not */
		unsigned char *p = w->id == 3 ? unimem_tape_take(w->t, size, align)
					      : unimem_tape_chunk_take(&c, size, align);
		if (!p)
			break;
		if ((uintptr_t)p % align)
			return (void *)1;
		memset(p, w->id + 1, size);
		w->s[w->n++] = (struct span){ (uintptr_t)p, size };
	}
	return NULL;
}

Test(tape_chunk, threads_never_overlap)
{
	unimem_tape *t = start(4u << 20);
	static struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i].t = t;
		w[i].id = i;
		w[i].n = 0;
		cr_assert_eq(pthread_create(&th[i], NULL, fill, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(th[i], &r);
		cr_assert_null(r, "thread %d got a misaligned take", i);
	}
	static struct span all[THREADS * MAX_SPANS];
	size_t n = 0;
	for (int i = 0; i < THREADS; i++)
		for (size_t k = 0; k < w[i].n; k++) {
			const unsigned char *p = (const unsigned char *)w[i].s[k].at;
			for (size_t b = 0; b < w[i].s[k].len; b++)
				cr_assert_eq(p[b], i + 1, "byte overwritten by another thread");
			all[n++] = w[i].s[k];
		}
	check_disjoint(t, all, n);
	unimem_tape_close(t);
}

/* The padded and the full paths of unimem_tape_take() (its fast path needs an aligned
 * cursor). */
Test(tape_take_paths, padding_extends_the_take)
{
	unimem_tape *t = start(1 << 16);
	uintptr_t a = (uintptr_t)unimem_tape_take(t, 3, 1);
	uintptr_t b = (uintptr_t)unimem_tape_take(t, 64, 16);
	cr_assert_eq(a, base_of(t));
	cr_assert_eq(b, base_of(t) + 16);
	cr_assert_eq(unimem_tape_used(t), 16 + 64);
	unimem_tape_close(t);
}

Test(tape_take_paths, a_take_that_does_not_fit_gives_its_room_back)
{
	unimem_tape *t = start(1 << 16);
	size_t cap = unimem_tape_capacity(t);
	cr_assert_not_null(unimem_tape_take(t, cap - 100, 1));
	cr_assert_null(unimem_tape_take(t, 101, 1));
	cr_assert_eq(unimem_tape_used(t), cap - 100, "the refused take left the cursor");
	cr_assert_null(unimem_tape_take(t, 100, 64), "fits unpadded, not once padded");
	cr_assert_eq(unimem_tape_used(t), cap - 100);
	cr_assert_not_null(unimem_tape_take(t, 100, 4));
	cr_assert_eq(unimem_tape_used(t), cap);
	unimem_tape_close(t);
}
