/* SPDX-License-Identifier: MIT */
/* Tape: alignment, refusal, no wrap, clear, and concurrent takes that never overlap. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unimem_tape *start(size_t bytes)
{
	unimem_tape *t = NULL;
	cr_assert_eq(unimem_tape_start(&t, bytes), 0);
	cr_assert_not_null(t);
	return t;
}

static unsigned char *base_of(unimem_tape *t)
{
	return unimem_block_ptr(unimem_tape_block(t));
}

Test(tape, start_owns_a_block_of_the_capacity)
{
	unimem_tape *t = start(10000);
	const unimem_block *b = unimem_tape_block(t);
	cr_assert_not_null(b);
	cr_assert_geq(unimem_tape_capacity(t), 10000);
	cr_assert_eq(unimem_tape_capacity(t), unimem_block_size(b));
	cr_assert_eq(unimem_tape_used(t), 0);
	cr_assert(unimem_block_pinned(b));
	unimem_tape_close(t);
	unimem_tape_close(NULL);

	cr_assert_eq(unimem_tape_start_flags(&t, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(unimem_tape_block(t)));
	unimem_tape_close(t);
}

Test(tape, start_bad_input)
{
	unimem_tape *t = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start(&t, 0), -EINVAL);
	cr_assert_null(t);
	t = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start(&t, SIZE_MAX), -EINVAL);
	cr_assert_null(t);
	cr_assert_eq(unimem_tape_start(NULL, 4096), -EINVAL);
	cr_assert_eq(unimem_tape_start_flags(&t, 4096, 1u << 9), -EINVAL);
}

Test(tape, takes_are_aligned_in_bounds_and_sequential)
{
	unimem_tape *t = start(1 << 20);
	unsigned char *base = base_of(t), *prev_end = base;
	for (size_t align = 1; align <= 4096; align <<= 1) {
		for (size_t size = 0; size < 70; size += 23) {
			unsigned char *p = unimem_tape_take(t, size, align);
			cr_assert_not_null(p, "size %zu align %zu", size, align);
			cr_assert_eq((uintptr_t)p % align, 0);
			cr_assert_geq(p, prev_end, "overlap");
			cr_assert_lt(p - prev_end, (ptrdiff_t)align, "more padding than needed");
			prev_end = p + size;
			cr_assert_eq(unimem_tape_used(t), (size_t)(prev_end - base));
			memset(p, 0x5a, size);
		}
	}
	cr_assert_leq(prev_end, base + unimem_tape_capacity(t));
	unimem_tape_close(t);
}

Test(tape, alignment_must_be_a_power_of_two)
{
	unimem_tape *t = start(4096);
	size_t bad[] = { 0, 3, 5, 6, 12, 48, 100, SIZE_MAX, ((size_t)1 << 63) + 1 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_null(unimem_tape_take(t, 8, bad[i]), "align %zu", bad[i]);
		cr_assert_null(unimem_tape_take_owned(t, 8, bad[i]), "align %zu", bad[i]);
	}
	cr_assert_eq(unimem_tape_used(t), 0, "a refused take moved the cursor");
	unimem_tape_close(t);
}

Test(tape, refuses_when_full_and_never_wraps)
{
	unimem_tape *t = start(4096);
	size_t cap = unimem_tape_capacity(t);
	unsigned char *base = base_of(t);
	/* Sizes and alignments that would wrap a 64-bit sum. */
	cr_assert_null(unimem_tape_take(t, SIZE_MAX, 1));
	cr_assert_null(unimem_tape_take(t, SIZE_MAX - 10, 16));
	cr_assert_null(unimem_tape_take(t, 1, (size_t)1 << 63));
	cr_assert_null(unimem_tape_take(t, cap + 1, 1));
	cr_assert_null(unimem_tape_take(t, 16, cap * 2));
	cr_assert_eq(unimem_tape_used(t), 0);
	/* Exactly full. */
	cr_assert_eq(unimem_tape_take(t, cap - 100, 1), base);
	/* A take that does not fit leaves the room to a smaller one. */
	cr_assert_null(unimem_tape_take(t, 101, 1));
	cr_assert_eq(unimem_tape_used(t), cap - 100);
	cr_assert_null(unimem_tape_take(t, 97, 8), "padding counts");
	unsigned char *p = unimem_tape_take(t, 100, 1);
	cr_assert_eq(p, base + cap - 100);
	cr_assert_null(unimem_tape_take(t, 1, 1));
	cr_assert_eq(unimem_tape_used(t), cap);
	p = unimem_tape_take(t, 0, 1);
	cr_assert_eq(p, base + cap, "size 0 at the end is the end");
	cr_assert_null(unimem_tape_take(t, 0, 2 * 4096));
	unimem_tape_close(t);
}

Test(tape, clear_rewinds)
{
	unimem_tape *t = start(8192);
	unsigned char *first = unimem_tape_take(t, 100, 64);
	cr_assert_not_null(unimem_tape_take(t, 5000, 8));
	cr_assert_gt(unimem_tape_used(t), 5000);
	unimem_tape_clear(t);
	cr_assert_eq(unimem_tape_used(t), 0);
	cr_assert_eq(unimem_tape_take(t, 100, 64), first);
	cr_assert_not_null(unimem_tape_take(t, unimem_tape_capacity(t) - 100, 1));
	unimem_tape_close(t);
}

Test(tape, owned_path_behaves_as_take)
{
	unimem_tape *t = start(4096);
	unsigned char *base = base_of(t);
	size_t cap = unimem_tape_capacity(t);
	cr_assert_eq(unimem_tape_take_owned(t, 10, 1), base);
	cr_assert_eq(unimem_tape_take_owned(t, 10, 16), base + 16);
	cr_assert_eq(unimem_tape_used(t), 26);
	cr_assert_null(unimem_tape_take_owned(t, cap, 1));
	cr_assert_null(unimem_tape_take_owned(t, SIZE_MAX, 1));
	cr_assert_eq(unimem_tape_used(t), 26);
	cr_assert_eq(unimem_tape_take_owned(t, cap - 26, 1), base + 26);
	cr_assert_null(unimem_tape_take_owned(t, 1, 1));
	/* The two paths share the cursor. */
	unimem_tape_clear(t);
	cr_assert_eq(unimem_tape_take(t, 8, 8), base);
	cr_assert_eq(unimem_tape_take_owned(t, 8, 8), base + 8);
	unimem_tape_close(t);
}

/* Threads take random sizes and alignments, fill what they got with their own tag,
 * and remember the ranges; afterwards every range still holds its tag (an overlap
 * would have overwritten one) and the sorted ranges do not intersect. */
#define THREADS 6
#define TAKES 20000

struct range {
	unsigned char *p;
	size_t size;
	unsigned tag;
};

struct worker {
	unimem_tape *t;
	unsigned tag;
	struct range *ranges;
	size_t n;
	bool owned_misuse;
};

static void *taker(void *arg)
{
	struct worker *w = arg;
	unsigned seed = w->tag * 7919u;
	for (size_t i = 0; i < TAKES; i++) {
		size_t size = (size_t)(rand_r(&seed) % 200);
		size_t align = (size_t)1 << (rand_r(&seed) % 8);
		unsigned char *p = unimem_tape_take(w->t, size, align);
		if (!p)
			break;
		if ((uintptr_t)p % align)
			w->owned_misuse = true; /* reported by the main thread */
		memset(p, (int)w->tag, size);
		w->ranges[w->n++] = (struct range){ p, size, w->tag };
	}
	return NULL;
}

static int by_address(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->p < y->p ? -1 : x->p > y->p;
}

static void run_concurrent(size_t bytes)
{
	unimem_tape *t = start(bytes);
	unsigned char *base = base_of(t);
	pthread_t tid[THREADS];
	struct worker w[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ t, i + 1, calloc(TAKES, sizeof(struct range)), 0, false };
		cr_assert_eq(pthread_create(&tid[i], NULL, taker, &w[i]), 0);
	}
	size_t total = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(tid[i], NULL);
		cr_assert_not(w[i].owned_misuse, "misaligned take");
		total += w[i].n;
	}
	struct range *all = calloc(total, sizeof *all);
	size_t k = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		for (size_t j = 0; j < w[i].n; j++) {
			struct range r = w[i].ranges[j];
			for (size_t b = 0; b < r.size; b++)
				cr_assert_eq(r.p[b], r.tag, "byte overwritten by another take");
			cr_assert_geq(r.p, base);
			cr_assert_leq(r.p + r.size, base + unimem_tape_capacity(t));
			/* A size-0 take owns no byte: its pointer may equal, or under
			 * concurrency fall inside, another take's range. */
			if (r.size)
				all[k++] = r;
		}
		free(w[i].ranges);
	}
	total = k;
	qsort(all, total, sizeof *all, by_address);
	for (size_t i = 1; i < total; i++)
		cr_assert_leq(all[i - 1].p + all[i - 1].size, all[i].p, "ranges overlap");
	cr_assert_leq(unimem_tape_used(t), unimem_tape_capacity(t));
	free(all);
	unimem_tape_close(t);
}

Test(tape, concurrent_takes_never_overlap)
{
	run_concurrent(64 << 20); /* room for every take */
}

Test(tape, concurrent_takes_until_full_never_overlap)
{
	run_concurrent(1 << 20); /* runs out while the threads race */
}

struct clearer {
	unimem_tape *t;
	bool stop; /* atomic (__atomic builtins): read by the takers */
	bool bad;  /* atomic: set by any taker */
};

static void *take_while_cleared(void *arg)
{
	struct clearer *c = arg;
	unsigned char *base = base_of(c->t);
	size_t cap = unimem_tape_capacity(c->t);
	unsigned seed = 12345;
	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		size_t size = (size_t)(rand_r(&seed) % 300), align = (size_t)1 << (rand_r(&seed) % 7);
		unsigned char *p = unimem_tape_take(c->t, size, align);
		if (p && (p < base || p + size > base + cap || (uintptr_t)p % align))
			__atomic_store_n(&c->bad, true, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(tape, clear_while_taking_keeps_the_cursor_sound)
{
	struct clearer c = { start(64 << 10), false, false };
	pthread_t tid[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, take_while_cleared, &c), 0);
	for (int i = 0; i < 20000; i++) {
		unimem_tape_clear(c.t);
		cr_assert_leq(unimem_tape_used(c.t), unimem_tape_capacity(c.t));
	}
	__atomic_store_n(&c.stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 3; i++)
		pthread_join(tid[i], NULL);
	cr_assert_not(c.bad, "a take escaped the Tape or its alignment");
	/* Quiet again: the Tape works as new after a clear. */
	unimem_tape_clear(c.t);
	cr_assert_eq(unimem_tape_take(c.t, unimem_tape_capacity(c.t), 1), base_of(c.t));
	unimem_tape_close(c.t);
}

/* Threads that keep failing big takes on a full Tape push the cursor past the capacity;
 * it must stay bounded (never wrap), and a clear brings the Tape back. */
struct full_hammer {
	unimem_tape *t;
	uint64_t max_seen;
};

static void *hammer_full(void *arg)
{
	struct full_hammer *h = arg;
	size_t cap = unimem_tape_capacity(h->t);
	for (int i = 0; i < 1000000; i++) {
		if (unimem_tape_take(h->t, cap - 1 - (size_t)(i % 7), 1) != NULL)
			return (void *)1;
		/* The whole word: its epoch bits are 0 until a clear, so a carry out of the
		 * offset shows too. */
		uint64_t c = __atomic_load_n(&h->t->cursor, __ATOMIC_RELAXED);
		if (c > h->max_seen)
			h->max_seen = c;
	}
	return NULL;
}

Test(tape, failing_takes_on_a_full_tape_never_run_the_cursor_away)
{
	unimem_tape *t = start(4096);
	size_t cap = unimem_tape_capacity(t);
	cr_assert_not_null(unimem_tape_take(t, 16, 1));
	pthread_t tid[4];
	struct full_hammer h[4];
	for (int i = 0; i < 4; i++) {
		h[i] = (struct full_hammer){ t, 0 };
		cr_assert_eq(pthread_create(&tid[i], NULL, hammer_full, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(tid[i], &r);
		cr_assert_null(r, "a take that cannot fit succeeded");
		/* At most: the clamp threshold (2 caps) plus one take in flight: only the
		 * thread that took alone fetch-adds, the others compare-and-swap. */
		cr_assert_leq(h[i].max_seen, 3 * cap, "cursor ran away: %llu",
			      (unsigned long long)h[i].max_seen);
	}
	uint64_t word = __atomic_load_n(&t->cursor, __ATOMIC_RELAXED);
	cr_assert_leq(unimem_tape_offset_(word), 3 * cap);
	cr_assert_eq(word >> UNIMEM_TAPE_OFFSET_BITS_, 0, "the offset carried into the epoch");
	unimem_tape_clear(t);
	cr_assert_eq(unimem_tape_take(t, cap, 1), base_of(t));
	unimem_tape_close(t);
}

/* ---- Threads sharing a Tape: per-thread chunks that unimem_tape_take() finds itself ---- */

struct one_take {
	unimem_tape *t;
	size_t size;
	unsigned char *p;
};

static void *take_once(void *arg)
{
	struct one_take *o = arg;
	o->p = unimem_tape_take(o->t, o->size, 64);
	return NULL;
}

/* On a cleared Tape whose thread still holds a chunk from before: another owner takes
 * the front 64 KiB (where that chunk lay), then this thread's take must come from past it
 * and within used() (`why` says which old chunk it would have been). */
static void assert_old_chunk_unused(unimem_tape *t, unsigned char *base, const char *why)
{
	unsigned char *front = unimem_tape_take_owned(t, 64 << 10, 64);
	cr_assert_eq(front, base);
	unsigned char *p = unimem_tape_take(t, 64, 64);
	cr_assert_geq(p, front + (64 << 10), "%s", why);
	cr_assert_leq(p + 64, base + unimem_tape_used(t));
}

/* A take of 64 B from another thread, which joins before this returns. */
static unsigned char *take_elsewhere(unimem_tape *t)
{
	struct one_take o = { t, 64, NULL };
	pthread_t tid;
	cr_assert_eq(pthread_create(&tid, NULL, take_once, &o), 0);
	pthread_join(tid, NULL);
	cr_assert_not_null(o.p);
	return o.p;
}

Test(tape, a_second_thread_switches_the_tape_to_per_thread_chunks)
{
	unimem_tape *t = start(1 << 20);
	unsigned char *base = base_of(t);
	cr_assert_eq(unimem_tape_take(t, 64, 64), base, "one thread: straight from the cursor");
	cr_assert_eq(unimem_tape_used(t), 64, "one thread: used() is exact");
	unsigned char *q = take_elsewhere(t);
	cr_assert_eq(q, base + 64, "the second thread's first chunk starts at the cursor");
	cr_assert_eq(t->solo_, UNIMEM_TAPE_SHARED_);
	/* A chunk of 4 KiB was handed to that thread: used() counts it. */
	cr_assert_eq(unimem_tape_used(t), 64 + 4096);
	unsigned char *p = unimem_tape_take(t, 64, 64), *p2 = unimem_tape_take(t, 64, 64);
	cr_assert_eq(p, base + 64 + 4096, "this thread's own chunk, after the other's");
	cr_assert_eq(p2, p + 64, "then from that chunk, no cursor");
	cr_assert_eq(unimem_tape_used(t), 64 + 2 * 4096);
	/* Use up the chunk: the next grab doubles (8 KiB), from the cursor. */
	for (int i = 0; i < 4096 / 64 - 2; i++)
		cr_assert_eq(unimem_tape_take(t, 64, 64), p + 128 + 64 * i);
	cr_assert_eq(unimem_tape_used(t), 64 + 2 * 4096);
	cr_assert_eq(unimem_tape_take(t, 64, 64), base + 64 + 2 * 4096, "a fresh grab");
	cr_assert_eq(unimem_tape_used(t), 64 + 2 * 4096 + 8192, "the second grab doubles");
	unimem_tape_close(t);
}

Test(tape, clear_invalidates_every_thread_chunk)
{
	unimem_tape *t = start(1 << 20);
	unsigned char *base = base_of(t);
	cr_assert_not_null(unimem_tape_take(t, 64, 64));
	take_elsewhere(t);
	unsigned char *mine = unimem_tape_take(t, 64, 64); /* this thread now holds a chunk */
	cr_assert_not_null(mine);
	unimem_tape_clear(t);
	cr_assert_eq(unimem_tape_used(t), 0);
	/* Another owner takes the front after the clear: this thread's old chunk lies in it. */
	assert_old_chunk_unused(t, base, "a chunk from before the clear was used again");
	unimem_tape_close(t);
}

/* Take in shared mode: this thread first (solo, at 0), another (shared, that thread's
 * chunk at 64), then this thread again: its chunk at 64 + 4096. (Not two other threads:
 * the second may get the first one's thread-local table, and be the same taker.) */
static unsigned char *take_in_shared_mode(unimem_tape *t)
{
	cr_assert_not_null(unimem_tape_take(t, 64, 64));
	take_elsewhere(t);
	return unimem_tape_take(t, 64, 64);
}

/* A Tape opened where a closed one was: on the closed one's table slot (the slot comes
 * round every UNIMEM_TAPE_LOCAL_WAYS opens, so the opens and closes in between bring it
 * back) and over its Block's address (a 1 MiB mmap lands in the hole the closed one left),
 * so that a chunk of the closed Tape that matched would hand out the new Tape's bytes.
 * The struct itself comes from aligned_alloc(), which glibc 2.36 does not hand back at
 * the same address (its memalign carves new room each time; seen on this machine), and
 * no API places it: it does not matter to the lookup, which keys a chunk by the Tape's
 * id_ and epoch, never by its address. */
Test(tape, a_tape_opened_where_a_closed_one_was_never_meets_its_chunks)
{
	unimem_tape *a = start(1 << 20);
	uint32_t slot = a->slot_;
	unsigned char *where = base_of(a);
	cr_assert_eq(take_in_shared_mode(a), where + 64 + 4096);
	unimem_tape_close(a);
	/* Open until a Tape lands on the closed one's slot and Block address. */
	unimem_tape *b = NULL;
	for (int i = 0; i < 32 * UNIMEM_TAPE_LOCAL_WAYS; i++) {
		b = start(1 << 20);
		if (b->slot_ == slot && base_of(b) == where)
			break;
		unimem_tape_close(b);
		b = NULL;
	}
	cr_assert_not_null(b, "no Tape opened on the closed one's slot and Block address");
	/* The old chunk's next byte was 64 + 4096 + 64; a fresh chunk starts at 64 + 4096. */
	cr_assert_eq(take_in_shared_mode(b), base_of(b) + 64 + 4096,
		     "a chunk of the closed Tape was used");
	unimem_tape_close(b);
}

struct filler {
	unimem_tape *t;
	pthread_barrier_t *go;
	size_t bytes;   /* handed out to this thread */
	bool bad;       /* a stamp found overwritten */
	unsigned tag;
};

static void *fill_until_refused(void *arg)
{
	struct filler *f = arg;
	unsigned char *p;
	unsigned char *mine[4096];
	size_t n = 0;
	pthread_barrier_wait(f->go); /* all at once: one thread alone could fill the Tape */
	while ((p = unimem_tape_take(f->t, 48, 16)) != NULL) {
		memset(p, (int)f->tag, 48);
		f->bytes += 48;
		if (n < 4096)
			mine[n++] = p;
	}
	/* Still refused: the Tape stays full for this thread. */
	if (unimem_tape_take(f->t, 48, 16))
		f->bad = true;
	for (size_t i = 0; i < n; i++)
		for (size_t b = 0; b < 48; b++)
			if (mine[i][b] != (unsigned char)f->tag)
				f->bad = true;
	return NULL;
}

Test(tape, threads_fill_a_shared_tape_honestly)
{
	unimem_tape *t = start(128 << 10); /* grabs of 128 KiB / 16 = 8 KiB */
	size_t cap = unimem_tape_capacity(t);
	/* This thread takes first: the fillers' first take switches the Tape to per-thread
	 * chunks, so that none of them fills it alone through the cursor. */
	cr_assert_not_null(unimem_tape_take(t, 48, 16));
	pthread_t tid[4];
	struct filler f[4];
	pthread_barrier_t go;
	cr_assert_eq(pthread_barrier_init(&go, NULL, 4), 0);
	for (unsigned i = 0; i < 4; i++) {
		f[i] = (struct filler){ t, &go, 0, false, i + 1 };
		cr_assert_eq(pthread_create(&tid[i], NULL, fill_until_refused, &f[i]), 0);
	}
	size_t total = 48;
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		cr_assert_not(f[i].bad, "overlap, or a take after a refusal succeeded");
		total += f[i].bytes;
	}
	cr_assert_leq(unimem_tape_used(t), cap);
	cr_assert_geq(unimem_tape_used(t), total, "used() below what was handed out");
	/* Room lost to chunks: at most one 8 KiB grab per thread (and the padding). */
	cr_assert_geq(total + 4 * (8 << 10) + 4 * 64, cap, "only %zu of %zu handed out", total, cap);
	cr_assert_eq(t->solo_, UNIMEM_TAPE_SHARED_);
	pthread_barrier_destroy(&go);
	cr_assert_null(unimem_tape_take(t, 48, 16), "a full Tape gave memory");
	/* Refused only once not even one take fits: with no whole grab left, takes are
	 * served from the cursor until the end. */
	cr_assert_lt(cap - unimem_tape_used(t), 48 + 16, "refused with %zu of %zu left",
		     cap - unimem_tape_used(t), cap);
	unimem_tape_clear(t);
	cr_assert_eq(unimem_tape_used(t), 0);
	cr_assert_not_null(unimem_tape_take(t, 48, 16));
	unimem_tape_close(t);
}

/* The epoch bits of the cursor word wrap after 65,536 clears; the clear that wraps them
 * gives the Tape a new id, so that a chunk this thread grabbed 65,536 clears ago (and
 * never used since) does not match again. */
Test(tape, a_chunk_from_65536_clears_ago_is_not_used_again)
{
	unimem_tape *t = start(1 << 20);
	unsigned char *base = base_of(t);
	unsigned char *mine = take_in_shared_mode(t); /* this thread now holds a chunk */
	cr_assert_eq(mine, base + 64 + 4096);
	for (int i = 0; i < 65536; i++)
		unimem_tape_clear(t);
	cr_assert_eq(__atomic_load_n(&t->cursor, __ATOMIC_RELAXED), 0, "the epoch wrapped to 0");
	cr_assert_eq(unimem_tape_used(t), 0);
	/* Another owner takes the front: this thread's old chunk lies in it. */
	assert_old_chunk_unused(t, base, "a chunk from 65,536 clears ago was used again");
	unimem_tape_close(t);
}

/* Over UNIMEM_TAPE_CAPACITY_MAX the offset bits of the cursor word would not do. */
Test(tape, more_than_the_capacity_max_is_refused)
{
	unimem_tape *t = (unimem_tape *)0x1;
	size_t over = (size_t)UNIMEM_TAPE_CAPACITY_MAX + 4096;
	cr_assert_eq(unimem_tape_start_flags(&t, over, UNIMEM_BLOCK_UNPINNED), -ENOMEM);
	cr_assert_null(t);
	unimem_layout *l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open_flags(&l, 4096, over, 4096, UNIMEM_BLOCK_UNPINNED),
		     -ENOMEM);
	cr_assert_null(l);
}
