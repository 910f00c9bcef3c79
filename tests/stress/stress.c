/* SPDX-License-Identifier: MIT */
/* Stress: many threads on one Tape (directly and through chunks), one Layout, one Grid,
 * and on open/close, for a while, with ownership and overlap checks.
 *
 *   UNIMEM_STRESS_SECONDS  how long each test runs (default 60; the default suite runs 2)
 *   UNIMEM_STRESS_THREADS  threads per test (default 8)
 *
 * Each test is a `struct stress_ops`: threads run rounds of `fill` (take and tag memory,
 * all threads at once), then `verify` (each thread checks that what it took still holds its
 * tags: nobody else was handed its bytes), then one thread runs `between` (global checks:
 * every range in bounds, aligned, and no two overlapping; then the rewind) while the others
 * wait. A new layer's test is three such functions and a Test(). */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define MAX_THREADS 64

/* ---- the harness --------------------------------------------------------------------- */

struct range {
	unsigned char *p;
	size_t size;
	size_t align;
	uint32_t key; /* what the bytes hold: see tag() */
};

struct worker {
	struct stress *s;
	unsigned id;
	unsigned seed;
	struct range *ranges;
	size_t n, cap;
	uint64_t takes, refused;
	unimem_tape_chunk chunk; /* this thread's chunk of the shared Tape (chunk tests) */
};

struct stress;

struct stress_ops {
	const char *name;
	void (*fill)(struct stress *s, struct worker *w);   /* all threads at once */
	void (*verify)(struct stress *s, struct worker *w); /* all threads at once */
	void (*between)(struct stress *s);                  /* one thread, the others wait */
};

struct stress {
	const struct stress_ops *ops;
	void *target; /* the Tape, Layout, ... under test */
	unsigned nthreads;
	double deadline;
	pthread_barrier_t barrier;
	bool stop;   /* atomic */
	int failed;  /* atomic: the first failure writes `why` */
	char why[512];
	uint64_t rounds;
	struct worker w[MAX_THREADS];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double env_number(const char *name, double fallback)
{
	const char *v = getenv(name);
	char *end;
	double d = v ? strtod(v, &end) : 0;
	return v && *v && !*end && d > 0 ? d : fallback;
}

/* Criterion's asserts belong to the test's main thread: workers report here and stop. */
__attribute__((format(printf, 2, 3))) static void stress_fail(struct stress *s, const char *fmt, ...)
{
	int expected = 0;
	if (__atomic_compare_exchange_n(&s->failed, &expected, 1, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof s->why, fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
}

static bool stopping(struct stress *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* The byte a range holds at offset i: differs between ranges and along a range, so that
 * an overlap or a shifted write shows. */
static unsigned char tag(uint32_t key, size_t i)
{
	uint32_t x = key * 2654435761u + (uint32_t)i * 40503u;
	return (unsigned char)(x >> 24 ^ x);
}

static void fill_range(const struct range *r)
{
	for (size_t i = 0; i < r->size; i++)
		r->p[i] = tag(r->key, i);
}

static bool range_intact(struct stress *s, const struct range *r, const char *what)
{
	for (size_t i = 0; i < r->size; i++)
		if (r->p[i] != tag(r->key, i)) {
			stress_fail(s, "%s: byte %zu of a %zu-byte take at %p was overwritten (someone "
				       "else was handed it)", what, i, r->size, (void *)r->p);
			return false;
		}
	return true;
}

static void push_range(struct range **v, size_t *n, size_t *cap, struct range r)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 1024;
		*v = realloc(*v, *cap * sizeof **v);
		if (!*v)
			abort();
	}
	(*v)[(*n)++] = r;
}

/* A take of this round: tag its bytes and remember it. */
static void remember(struct worker *w, unsigned char *p, size_t size, size_t align)
{
	struct range r = { p, size, align, (uint32_t)(w->id << 24) ^ (uint32_t)w->takes };
	fill_range(&r);
	push_range(&w->ranges, &w->n, &w->cap, r);
	w->takes++;
}

static int by_address(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->p < y->p ? -1 : x->p > y->p;
}

/* Every range of every worker lies in [lo, hi), is aligned, and none overlaps another
 * (ranges of size 0 own no byte and are left out). Returns the bytes they cover. */
static size_t check_disjoint(struct stress *s, const unsigned char *lo, const unsigned char *hi,
			     const char *what)
{
	size_t total = 0, k = 0;
	for (unsigned t = 0; t < s->nthreads; t++)
		total += s->w[t].n;
	struct range *all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		abort();
	size_t bytes = 0;
	for (unsigned t = 0; t < s->nthreads; t++)
		for (size_t i = 0; i < s->w[t].n; i++) {
			struct range r = s->w[t].ranges[i];
			if (r.p < lo || r.p > hi || r.size > (size_t)(hi - r.p) ||
			    (uintptr_t)r.p % r.align) {
				stress_fail(s, "%s: take %p+%zu (align %zu) outside [%p, %p) or misaligned",
					    what, (void *)r.p, r.size, r.align, (void *)lo, (void *)hi);
				free(all);
				return 0;
			}
			if (r.size)
				all[k++] = r;
			bytes += r.size;
		}
	qsort(all, k, sizeof *all, by_address);
	for (size_t i = 1; i < k; i++)
		if (all[i - 1].p + all[i - 1].size > all[i].p) {
			stress_fail(s, "%s: takes %p+%zu and %p+%zu overlap", what, (void *)all[i - 1].p,
				    all[i - 1].size, (void *)all[i].p, all[i].size);
			break;
		}
	free(all);
	return bytes;
}

static void forget_all(struct stress *s)
{
	for (unsigned t = 0; t < s->nthreads; t++)
		s->w[t].n = 0;
}

static void *stress_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	for (;;) {
		if (!stopping(s))
			s->ops->fill(s, w);
		pthread_barrier_wait(&s->barrier);
		if (!stopping(s))
			s->ops->verify(s, w);
		pthread_barrier_wait(&s->barrier);
		if (w->id == 0) {
			if (!stopping(s))
				s->ops->between(s);
			s->rounds++;
			if (now() > s->deadline)
				__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
		}
		pthread_barrier_wait(&s->barrier);
		if (stopping(s))
			break;
	}
	return NULL;
}

/* Run `ops` on `target` with the configured threads and duration; assert no failure. */
static void run_stress(const struct stress_ops *ops, void *target)
{
	static struct stress s; /* big: not on the stack */
	memset(&s, 0, sizeof s);
	double seconds = env_number("UNIMEM_STRESS_SECONDS", 60);
	s.nthreads = (unsigned)env_number("UNIMEM_STRESS_THREADS", 8);
	if (s.nthreads > MAX_THREADS)
		s.nthreads = MAX_THREADS;
	s.ops = ops;
	s.target = target;
	s.deadline = now() + seconds;
	/* A hang fails the test instead of the suite's timeout. */
	alarm((unsigned)(seconds * 4) + 120);
	cr_assert_eq(pthread_barrier_init(&s.barrier, NULL, s.nthreads), 0);
	pthread_t tid[MAX_THREADS];
	for (unsigned t = 0; t < s.nthreads; t++) {
		s.w[t] = (struct worker){ .s = &s, .id = t, .seed = 0x9e3779b9u * (t + 1) };
		cr_assert_eq(pthread_create(&tid[t], NULL, stress_thread, &s.w[t]), 0);
	}
	uint64_t takes = 0, refused = 0;
	for (unsigned t = 0; t < s.nthreads; t++) {
		pthread_join(tid[t], NULL);
		takes += s.w[t].takes;
		refused += s.w[t].refused;
		free(s.w[t].ranges);
	}
	alarm(0);
	pthread_barrier_destroy(&s.barrier);
	fprintf(stderr, "stress %s: %u threads, %.0f s, %llu rounds, %llu takes, %llu refused\n",
		ops->name, s.nthreads, seconds, (unsigned long long)s.rounds, (unsigned long long)takes,
		(unsigned long long)refused);
	cr_assert_not(s.failed, "%s: %s", ops->name, s.why);
	cr_assert_gt(s.rounds, 0);
}

static size_t pick_size(struct worker *w, size_t max)
{
	unsigned r = (unsigned)rand_r(&w->seed);
	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return r >> 8 & 7;
	default:
		return (r >> 8) % max;
	}
}

static size_t pick_align(struct worker *w)
{
	return (size_t)1 << ((unsigned)rand_r(&w->seed) % 13); /* 1 .. 4096 */
}

/* One take from a shared Tape, through one of the public take paths; NULL when full. */
static unsigned char *take_some(struct worker *w, unimem_tape *t, size_t max, size_t *size,
				size_t *align)
{
	unsigned how = (unsigned)rand_r(&w->seed) % 8;
	size_t n = pick_size(w, max);
	switch (how) {
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
	case 0:
		*size = n / 4 * 4, *align = 4;
		return (unsigned char *)unimem_tape_take_f32(t, n / 4);
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U16
	case 1:
		*size = n / 2 * 2, *align = 2;
		return (unsigned char *)unimem_tape_take_u16(t, n / 2);
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_BF16
	case 2:
		*size = n / 2 * 2, *align = 2;
		return (unsigned char *)unimem_tape_take_bf16(t, n / 2);
#endif
	default:
		*size = n, *align = pick_align(w);
		return unimem_tape_take(t, n, *align);
	}
}

/* ---- Tape: shared by every thread, filled up, checked, cleared, round after round ----- */

#define TAPE_BYTES (2u << 20)
#define TAPE_TAKES_PER_ROUND 4000

static void tape_fill(struct stress *s, struct worker *w)
{
	unimem_tape *t = s->target;
	for (int i = 0; i < TAPE_TAKES_PER_ROUND; i++) {
		size_t size, align;
		unsigned char *p = take_some(w, t, 1500, &size, &align);
		if (!p) {
			/* Full, as this thread saw the cursor: other threads' takes in flight may
			 * have pushed it up to one take each (1500 + 4095 bytes of padding) past
			 * where it ends up, and each thread's chunk (unimem_tape_take() serves
			 * threads that share a Tape from per-thread chunks) may hold up to one
			 * unused grab (64 KiB). Beyond that, a refusal is wrong. */
			w->refused++;
			size_t used = unimem_tape_used(t),
			       room = (size_t)s->nthreads * (5600 + (64u << 10));
			if (used + room < unimem_tape_capacity(t))
				stress_fail(s, "tape: take of %zu (align %zu) refused with %zu of %zu used",
					    size, align, used, unimem_tape_capacity(t));
			return; /* this thread's round is over */
		}
		remember(w, p, size, align);
	}
}

static void tape_verify(struct stress *s, struct worker *w)
{
	for (size_t i = 0; i < w->n && !stopping(s); i++)
		if (!range_intact(s, &w->ranges[i], "tape"))
			return;
}

static void tape_between(struct stress *s)
{
	unimem_tape *t = s->target;
	unsigned char *base = unimem_block_ptr(unimem_tape_block(t));
	size_t cap = unimem_tape_capacity(t), used = unimem_tape_used(t);
	size_t bytes = check_disjoint(s, base, base + cap, "tape");
	if (used > cap || used < bytes)
		stress_fail(s, "tape: used() %zu, capacity %zu, %zu bytes handed out", used, cap, bytes);
	unimem_tape_clear(t);
	if (unimem_tape_used(t) != 0)
		stress_fail(s, "tape: used() %zu after clear", unimem_tape_used(t));
	forget_all(s);
}

static const struct stress_ops tape_ops = { "tape", tape_fill, tape_verify, tape_between };

Test(stress, tape_shared_by_all_threads)
{
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, TAPE_BYTES), 0);
	run_stress(&tape_ops, t);
	unimem_tape_close(t);
}

/* ---- Tape chunks: each thread takes through its own chunk, mixed with direct takes ---- */

static void chunk_fill(struct stress *s, struct worker *w)
{
	unimem_tape *t = s->target;
	/* The Tape was cleared since this chunk last took: forget its room first. */
	unimem_tape_chunk_init(&w->chunk, t, (size_t)1024 << (w->id % 4));
	for (int i = 0; i < TAPE_TAKES_PER_ROUND; i++) {
		size_t size = pick_size(w, 1500), align = pick_align(w);
		unsigned char *p = rand_r(&w->seed) % 3 ? unimem_tape_chunk_take(&w->chunk, size, align)
							 : unimem_tape_take(t, size, align);
		if (!p) {
			/* Room other threads' chunks grabbed and did not hand out stays taken: only
			 * a Tape whose cursor is near its end refuses. */
			w->refused++;
			size_t used = unimem_tape_used(t), room = (size_t)s->nthreads * (5600 + 8192);
			if (used + room < unimem_tape_capacity(t))
				stress_fail(s, "chunks: take of %zu (align %zu) refused with %zu of %zu used",
					    size, align, used, unimem_tape_capacity(t));
			return;
		}
		remember(w, p, size, align);
	}
}

static const struct stress_ops chunk_ops = { "tape chunks", chunk_fill, tape_verify,
					     tape_between };

Test(stress, tape_chunks_and_direct_takes)
{
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, TAPE_BYTES), 0);
	run_stress(&chunk_ops, t);
	unimem_tape_close(t);
}

/* ---- Tape: takes racing a thread that clears (the caller's business, but sound) ------- */

static void storm_fill(struct stress *s, struct worker *w)
{
	unimem_tape *t = s->target;
	unsigned char *base = unimem_block_ptr(unimem_tape_block(t));
	size_t cap = unimem_tape_capacity(t);
	for (int i = 0; i < TAPE_TAKES_PER_ROUND && !stopping(s); i++) {
		if (w->id == 0 && i % 16 == 0) {
			unimem_tape_clear(t);
			continue;
		}
		size_t size, align;
		unsigned char *p = take_some(w, t, 3000, &size, &align);
		if (p && (p < base || size > (size_t)(base + cap - p) || (uintptr_t)p % align))
			stress_fail(s, "clear storm: take %p+%zu (align %zu) outside the Tape", (void *)p,
				    size, align);
		/* After a clear the memory is handed out again while its first holder may still
		 * write it (the caller's business): only its bounds can be checked, and it is
		 * touched with atomic stores, which race with no one. */
		if (p && size) {
			__atomic_store_n(&p[0], (unsigned char)w->id, __ATOMIC_RELAXED);
			__atomic_store_n(&p[size - 1], (unsigned char)w->id, __ATOMIC_RELAXED);
		}
		if (unimem_tape_used(t) > cap)
			stress_fail(s, "clear storm: used() %zu > capacity %zu", unimem_tape_used(t), cap);
		w->takes += p != NULL;
		w->refused += p == NULL;
	}
}

static void storm_verify(struct stress *s, struct worker *w)
{
	(void)s, (void)w;
}

static void storm_between(struct stress *s)
{
	/* Quiet now: the cursor must still be sound, and a clear must give all of it back. */
	unimem_tape *t = s->target;
	unimem_tape_clear(t);
	size_t cap = unimem_tape_capacity(t);
	if (unimem_tape_take(t, cap, 1) != unimem_block_ptr(unimem_tape_block(t)))
		stress_fail(s, "clear storm: a quiet clear did not give the whole Tape back");
	unimem_tape_clear(t);
}

static const struct stress_ops storm_ops = { "clear storm", storm_fill, storm_verify,
					     storm_between };

Test(stress, tape_takes_racing_clears)
{
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, 256 << 10), 0);
	run_stress(&storm_ops, t);
	unimem_tape_close(t);
}

/* ---- Layout: weights loaded once, scratch per token, history per conversation --------- */

#define TOKENS_PER_TALK 8
#define WEIGHTS_PER_THREAD 64

struct talk {
	unimem_layout *l;
	unsigned char *weights_at, *scratch_at, *history_at, *end;
	struct range weights[MAX_THREADS][WEIGHTS_PER_THREAD]; /* checked every round */
	size_t nweights[MAX_THREADS];
	struct range *history[MAX_THREADS]; /* kept across tokens until clear_talk */
	size_t nhistory[MAX_THREADS], caphistory[MAX_THREADS];
	size_t weights_used;
	uint64_t tokens;
};

/* A take from one of the Layout's Tapes: in that Tape's part of the Block. */
static bool in_part(struct stress *s, const unsigned char *p, size_t size, const unsigned char *lo,
		    const unsigned char *hi, const char *tape)
{
	if (p >= lo && p <= hi && size <= (size_t)(hi - p))
		return true;
	stress_fail(s, "layout: %s take %p+%zu outside its part [%p, %p)", tape, (const void *)p,
		    size, (const void *)lo, (const void *)hi);
	return false;
}

static void talk_fill(struct stress *s, struct worker *w)
{
	struct talk *c = s->target;
	/* First round: every thread loads its weights, at once. */
	if (c->tokens == 0) {
		for (size_t i = 0; i < WEIGHTS_PER_THREAD; i++) {
			size_t size = 1 + pick_size(w, 2000), align = pick_align(w);
			unsigned char *p = unimem_tape_take(unimem_layout_weights(c->l), size, align);
			if (!p || !in_part(s, p, size, c->weights_at, c->scratch_at, "weights"))
				break;
			struct range r = { p, size, align, 0x80000000u | w->id << 16 | (uint32_t)i };
			fill_range(&r);
			c->weights[w->id][c->nweights[w->id]++] = r;
		}
	}
	/* A token: scratch takes, and a few history takes kept for the conversation. */
	for (int i = 0; i < 300; i++) {
		size_t size, align;
		unsigned char *p = take_some(w, unimem_layout_scratch(c->l), 1000, &size, &align);
		if (!p) {
			w->refused++;
			break;
		}
		if (!in_part(s, p, size, c->scratch_at, c->history_at, "scratch"))
			return;
		remember(w, p, size, align);
	}
	for (int i = 0; i < 4; i++) {
		size_t size, align;
		unsigned char *p = take_some(w, unimem_layout_history(c->l), 200, &size, &align);
		if (!p) {
			w->refused++;
			break;
		}
		if (!in_part(s, p, size, c->history_at, c->end, "history"))
			return;
		remember(w, p, size, align);
		push_range(&c->history[w->id], &c->nhistory[w->id], &c->caphistory[w->id],
			   w->ranges[w->n - 1]);
	}
}

static void talk_verify(struct stress *s, struct worker *w)
{
	struct talk *c = s->target;
	for (size_t i = 0; i < c->nweights[w->id]; i++)
		if (!range_intact(s, &c->weights[w->id][i], "layout weights"))
			return;
	for (size_t i = 0; i < c->nhistory[w->id]; i++)
		if (!range_intact(s, &c->history[w->id][i], "layout history"))
			return;
	for (size_t i = 0; i < w->n; i++)
		if (!range_intact(s, &w->ranges[i], "layout scratch"))
			return;
}

static void talk_between(struct stress *s)
{
	struct talk *c = s->target;
	unimem_tape *wt = unimem_layout_weights(c->l), *st = unimem_layout_scratch(c->l),
		    *ht = unimem_layout_history(c->l);
	if (c->tokens == 0)
		c->weights_used = unimem_tape_used(wt);
	else if (unimem_tape_used(wt) != c->weights_used)
		stress_fail(s, "layout: weights used() moved from %zu to %zu", c->weights_used,
			    unimem_tape_used(wt));
	/* This token's takes are disjoint; so are the weights with the whole conversation's
	 * history and this token's scratch. */
	check_disjoint(s, c->scratch_at, c->end, "layout scratch and history");
	for (unsigned t = 0; t < s->nthreads; t++)
		for (size_t i = 0; i < c->nweights[t]; i++)
			push_range(&s->w[t].ranges, &s->w[t].n, &s->w[t].cap, c->weights[t][i]);
	check_disjoint(s, c->weights_at, c->end, "layout weights");
	forget_all(s);
	for (unsigned t = 0; t < s->nthreads; t++)
		for (size_t i = 0; i < c->nhistory[t]; i++)
			push_range(&s->w[t].ranges, &s->w[t].n, &s->w[t].cap, c->history[t][i]);
	check_disjoint(s, c->history_at, c->end, "layout history of the conversation");
	forget_all(s);

	unimem_layout_clear_pass(c->l);
	if (unimem_tape_used(st) != 0)
		stress_fail(s, "layout: scratch used() %zu after clear_pass", unimem_tape_used(st));
	if (++c->tokens % TOKENS_PER_TALK == 0) {
		unimem_layout_clear_talk(c->l);
		if (unimem_tape_used(ht) != 0 || unimem_tape_used(st) != 0)
			stress_fail(s, "layout: used() %zu/%zu after clear_talk", unimem_tape_used(st),
				    unimem_tape_used(ht));
		for (unsigned t = 0; t < s->nthreads; t++)
			c->nhistory[t] = 0;
	}
	if (unimem_tape_used(wt) != c->weights_used)
		stress_fail(s, "layout: a clear moved the weights");
}

static const struct stress_ops talk_ops = { "layout", talk_fill, talk_verify, talk_between };

Test(stress, layout_conversations)
{
	static struct talk c;
	memset(&c, 0, sizeof c);
	cr_assert_eq(unimem_layout_open(&c.l, 4 << 20, 1 << 20, 1 << 20), 0);
	c.weights_at = unimem_block_ptr(unimem_layout_block(c.l));
	c.scratch_at = c.weights_at + unimem_tape_capacity(unimem_layout_weights(c.l));
	c.history_at = c.scratch_at + unimem_tape_capacity(unimem_layout_scratch(c.l));
	c.end = c.history_at + unimem_tape_capacity(unimem_layout_history(c.l));
	run_stress(&talk_ops, &c);
	cr_assert_gt(c.tokens, 0);
	for (unsigned t = 0; t < MAX_THREADS; t++)
		free(c.history[t]);
	unimem_layout_close(c.l);
}

/* ---- open and close from every thread at once ---------------------------------------- */

static void churn_fill(struct stress *s, struct worker *w)
{
	for (int i = 0; i < 8 && !stopping(s); i++) {
		unsigned r = (unsigned)rand_r(&w->seed);
		size_t bytes = 1 + (r >> 4) % (256 << 10);
		unsigned flags = r & 1 ? UNIMEM_BLOCK_UNPINNED : 0;
		if (r & 2)
			flags |= UNIMEM_BLOCK_HUGE;
		unsigned char *p = NULL;
		size_t size = 0;
		int err = 0;
		unimem_block *b = NULL;
		unimem_tape *t = NULL;
		unimem_layout *l = NULL;
		switch (r >> 2 & 3) {
		case 0:
		case 1:
			err = unimem_block_open(&b, bytes, flags);
			p = unimem_block_ptr(b), size = unimem_block_size(b);
			break;
		case 2:
			err = unimem_tape_start_flags(&t, bytes, flags);
			size = t ? unimem_tape_capacity(t) : 0;
			p = t ? unimem_tape_take(t, size, 1) : NULL;
			break;
		case 3:
			err = unimem_layout_open_flags(&l, bytes, bytes / 2, 4096, flags);
			size = l ? unimem_tape_capacity(unimem_layout_scratch(l)) : 0;
			p = l ? unimem_tape_take(unimem_layout_scratch(l), size, 1) : NULL;
			break;
		}
		if (err) {
			stress_fail(s, "churn: open of %zu bytes, flags %u: %s", bytes, flags,
				    unimem_strerror(err));
			return;
		}
		struct range rg = { p, size, 1, (uint32_t)w->id << 24 | (uint32_t)i };
		for (size_t k = 0; k < size; k += 509)
			if (p[k] != 0) {
				stress_fail(s, "churn: a new Block is not zeroed at %zu", k);
				break;
			}
		fill_range(&rg);
		range_intact(s, &rg, "churn");
		unimem_block_close(b);
		unimem_tape_close(t);
		unimem_layout_close(l);
		w->takes++;
	}
}

static void churn_verify(struct stress *s, struct worker *w)
{
	(void)s, (void)w;
}

static void churn_between(struct stress *s)
{
	(void)s;
}

static const struct stress_ops churn_ops = { "open/close churn", churn_fill, churn_verify,
					     churn_between };

Test(stress, open_close_from_every_thread)
{
	unimem_block *warm;
	cr_assert_eq(unimem_block_open(&warm, 4096, 0), 0);
	unimem_block_close(warm);
	int fds = count_fds();
	long locked = status_kb("VmLck");
	run_stress(&churn_ops, NULL);
	cr_assert_eq(count_fds(), fds, "fd leaked");
	cr_assert_eq(status_kb("VmLck"), locked, "locked memory left");
}

/* ---- Grid: cells change hands between threads while they are tagged and checked ---- */

#define GRID_CELLS 1024

struct cells {
	unimem_grid *g;
	unsigned char *base;
	size_t cell;
};

static bool is_cell(struct stress *s, const struct cells *c, const unsigned char *p)
{
	size_t off = (size_t)(p - c->base);
	if (p >= c->base && off % c->cell == 0 && off / c->cell < GRID_CELLS && (uintptr_t)p % 64 == 0)
		return true;
	stress_fail(s, "grid: take gave %p, not a cell", (const void *)p);
	return false;
}

static void grid_fill(struct stress *s, struct worker *w)
{
	struct cells *c = s->target;
	for (int i = 0; i < 600 && !stopping(s); i++) {
		unsigned r = (unsigned)rand_r(&w->seed);
		if (r % 3 == 0 && w->n) {
			/* Give back one of this thread's cells (after checking it), while the
			 * others take: it may be theirs a moment later. */
			size_t k = (r >> 2) % w->n;
			if (!range_intact(s, &w->ranges[k], "grid"))
				return;
			int err = unimem_grid_give(c->g, w->ranges[k].p);
			if (err) {
				stress_fail(s, "grid: give of a cell this thread holds gave %d", err);
				return;
			}
			w->ranges[k] = w->ranges[--w->n];
			continue;
		}
		unsigned char *p = unimem_grid_take(c->g);
		if (!p) {
			w->refused++;
			continue;
		}
		if (!is_cell(s, c, p))
			return;
		remember(w, p, c->cell, 64);
	}
}

static void grid_verify(struct stress *s, struct worker *w)
{
	for (size_t i = 0; i < w->n && !stopping(s); i++)
		if (!range_intact(s, &w->ranges[i], "grid"))
			return;
}

static void grid_between(struct stress *s)
{
	struct cells *c = s->target;
	size_t held = 0;
	for (unsigned t = 0; t < s->nthreads; t++)
		held += s->w[t].n;
	check_disjoint(s, c->base, c->base + GRID_CELLS * c->cell, "grid");
	if (unimem_grid_available(c->g) != GRID_CELLS - held)
		stress_fail(s, "grid: %zu available with %zu of %d out", unimem_grid_available(c->g),
			    held, GRID_CELLS);
	/* Everything back; a second give of each is refused. */
	for (unsigned t = 0; t < s->nthreads; t++)
		for (size_t i = 0; i < s->w[t].n; i++) {
			int a = unimem_grid_give(c->g, s->w[t].ranges[i].p);
			int b = unimem_grid_give(c->g, s->w[t].ranges[i].p);
			if (a != 0 || b != -EALREADY)
				stress_fail(s, "grid: give, give again of a held cell gave %d, %d", a, b);
		}
	forget_all(s);
	if (unimem_grid_available(c->g) != GRID_CELLS)
		stress_fail(s, "grid: %zu available after every cell came back",
			    unimem_grid_available(c->g));
}

static const struct stress_ops grid_ops = { "grid", grid_fill, grid_verify, grid_between };

Test(stress, grid_cells_change_hands)
{
	static struct cells c;
	cr_assert_eq(unimem_grid_open(&c.g, 192, GRID_CELLS), 0); /* not a power of two */
	c.base = unimem_block_ptr(unimem_grid_block(c.g));
	c.cell = unimem_grid_cell_size(c.g);
	run_stress(&grid_ops, &c);
	unimem_grid_close(c.g);
}
