/* SPDX-License-Identifier: MIT */
/* Grid: the generic runtime-sized pool and the generated ones.
 *
 * Suite 'grid' (default, a few seconds): argument checks, exhaustive single-thread
 * behaviour (every cell, every give offset), a random single-thread model check, the
 * double-give race and a short multi-thread stress.
 * Suite 'grid_stress' runs in the opt-in meson suite 'stress' (UNIMEM_GRID_STRESS_MS sets
 * how long each stress runs; tests/meson.build passes a longer time there). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <unimem/unimem.h>

#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>

/* ---- one interface over the generic Grid and the generated pools ---- */

struct pool {
	const char *name;
	void *g;
	unimem_grid *core; /* the generic view */
	void *(*take)(void *);
	int (*give)(void *, void *);
	size_t (*available)(const void *);
	void (*close)(void *);
	size_t cell, count;
	unsigned char *base;
};

static void *generic_take(void *g)
{
	return unimem_grid_take(g);
}

static int generic_give(void *g, void *c)
{
	return unimem_grid_give(g, c);
}

static size_t generic_available(const void *g)
{
	return unimem_grid_available(g);
}

static void generic_close(void *g)
{
	unimem_grid_close(g);
}

static void pool_finish(struct pool *p)
{
	p->base = (unsigned char *)unimem_block_ptr(unimem_grid_block(p->core));
	p->cell = unimem_grid_cell_size(p->core);
	p->count = unimem_grid_cells(p->core);
}

static struct pool open_generic(size_t cell, size_t count, unsigned flags)
{
	struct pool p = {"generic", NULL, NULL, generic_take, generic_give, generic_available,
			 generic_close, 0, 0, NULL};
	unimem_grid *g;
	int err = unimem_grid_open_flags(&g, cell, count, flags);
	cr_assert_eq(err, 0, "unimem_grid_open(%zu, %zu): %s", cell, count, unimem_strerror(err));
	p.g = g;
	p.core = g;
	pool_finish(&p);
	return p;
}

#define GEN_WRAPPERS(N, CELL, COUNT)                                                      \
	static void *take_##N(void *g)                                                    \
	{                                                                                 \
		return unimem_grid_##N##_take(g);                                         \
	}                                                                                 \
	static int give_##N(void *g, void *c)                                             \
	{                                                                                 \
		return unimem_grid_##N##_give(g, c);                                      \
	}                                                                                 \
	static size_t available_##N(const void *g)                                        \
	{                                                                                 \
		return unimem_grid_##N##_available(g);                                    \
	}                                                                                 \
	static void close_##N(void *g)                                                    \
	{                                                                                 \
		unimem_grid_##N##_close(g);                                               \
	}                                                                                 \
	static struct pool open_##N(void)                                                 \
	{                                                                                 \
		struct pool p = {#N, NULL, NULL, take_##N, give_##N, available_##N,       \
				 close_##N, 0, 0, NULL};                                  \
		unimem_grid_##N *g;                                                       \
		int err = unimem_grid_##N##_open(&g);                                     \
		cr_assert_eq(err, 0, "open " #N ": %s", unimem_strerror(err));            \
		p.g = g;                                                                  \
		p.core = unimem_grid_##N##_grid(g);                                       \
		pool_finish(&p);                                                          \
		cr_assert_eq(p.cell, (size_t)(CELL));                                     \
		cr_assert_eq(p.count, (size_t)(COUNT));                                   \
		return p;                                                                 \
	}
UNIMEM_GRID_FOREACH(GEN_WRAPPERS)

typedef struct pool (*opener)(void);
#define GEN_OPENER(N, CELL, COUNT) open_##N,
static const opener generated[] = {UNIMEM_GRID_FOREACH(GEN_OPENER) NULL};

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t index_of(const struct pool *p, const void *c)
{
	return (size_t)((const unsigned char *)c - p->base) / p->cell;
}

static void shuffle(void **v, size_t n, uint64_t *rng)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(rng_next(rng) % i);
		void *t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Take every cell: each distinct, aligned, inside the pool, zeroed on the first pass. */
static void take_all(struct pool *p, void **cells, bool expect_zero)
{
	unsigned char *seen = calloc(p->count, 1);
	cr_assert_not_null(seen);
	for (size_t k = 0; k < p->count; k++) {
		unsigned char *c = p->take(p->g);
		cr_assert_not_null(c, "%s: take %zu of %zu returned NULL", p->name, k, p->count);
		cr_assert_eq((uintptr_t)c % 64, 0, "%s: cell not 64-byte aligned", p->name);
		cr_assert_geq(c, p->base);
		size_t off = (size_t)(c - p->base);
		cr_assert_lt(off, p->cell * p->count, "%s: cell outside the pool", p->name);
		cr_assert_eq(off % p->cell, 0, "%s: cell not at a cell start", p->name);
		size_t i = off / p->cell;
		cr_assert_eq(seen[i], 0, "%s: cell %zu handed out twice", p->name, i);
		seen[i] = 1;
		if (expect_zero)
			for (size_t b = 0; b < p->cell; b += 8)
				cr_assert_eq(c[b], 0, "%s: cell %zu not zeroed at open", p->name, i);
		cells[k] = c;
	}
	free(seen);
	cr_assert_null(p->take(p->g), "%s: take on an empty pool", p->name);
	cr_assert_null(p->take(p->g), "%s: take on an empty pool (again)", p->name);
	cr_assert_eq(p->available(p->g), 0);
}

/* Exhaustive single-thread behaviour of one pool. */
static void check_exhaustive(struct pool *p, uint64_t seed)
{
	const size_t n = p->count, span = p->cell * p->count;
	cr_assert_eq(p->available(p->g), n, "%s: a fresh pool has every cell", p->name);
	void **cells = malloc(n * sizeof *cells);
	cr_assert_not_null(cells);

	take_all(p, cells, true);
	/* Fill every cell to the last byte: the free bitmap must not share their memory. */
	for (size_t k = 0; k < n; k++)
		memset(cells[k], 0xA5, p->cell);
	cr_assert_eq(p->available(p->g), 0, "%s: writing cells changed the pool", p->name);
	cr_assert_null(p->take(p->g));

	/* Every give offset, with every cell out: only cell starts are accepted; each one
	 * is refused the second time, comes straight back from take, and take then finds
	 * nothing else. Small pools every byte, large ones every 8 bytes and the bytes
	 * around each cell start. */
	const size_t step = span <= (256u << 10) ? 1 : 8;
	for (size_t off = 0; off < span + 2 * p->cell; off += step) {
		unsigned char *c = p->base + off;
		int r = p->give(p->g, c);
		if (off < span && off % p->cell == 0) {
			cr_assert_eq(r, 0, "%s: give of cell at offset %zu: %d", p->name, off, r);
			cr_assert_eq(p->available(p->g), 1);
			cr_assert_eq(p->give(p->g, c), -EALREADY, "%s: double give at %zu", p->name,
				     off);
			cr_assert_eq(p->available(p->g), 1);
			cr_assert_eq(p->take(p->g), c, "%s: take after one give at %zu", p->name, off);
			cr_assert_null(p->take(p->g));
			if (step > 1) {
				cr_assert_eq(p->give(p->g, c + 1), -EINVAL);
				cr_assert_eq(p->give(p->g, c + p->cell - 1), -EINVAL);
			}
		} else {
			cr_assert_eq(r, -EINVAL, "%s: give at offset %zu (cell %zu) gave %d",
				     p->name, off, p->cell, r);
		}
	}
	/* Pointers before the pool, NULL, and far away. */
	int local;
	void *foreign[] = {NULL, p->base - 1, p->base - 64, p->base - p->cell, &local,
			   cells, (void *)UINTPTR_MAX, (void *)(uintptr_t)64};
	for (size_t k = 0; k < sizeof foreign / sizeof foreign[0]; k++)
		cr_assert_eq(p->give(p->g, foreign[k]), -EINVAL, "%s: foreign pointer %zu",
			     p->name, k);
	cr_assert_eq(p->available(p->g), 0, "%s: refused gives changed the pool", p->name);
	cr_assert_null(p->take(p->g));

	/* Give everything back in a random order; each twice. */
	uint64_t rng = seed;
	shuffle(cells, n, &rng);
	for (size_t k = 0; k < n; k++) {
		cr_assert_eq(p->give(p->g, cells[k]), 0);
		cr_assert_eq(p->give(p->g, cells[k]), -EALREADY);
		if (n <= 4096 || k % 64 == 0)
			cr_assert_eq(p->available(p->g), k + 1);
	}
	cr_assert_eq(p->available(p->g), n);
	/* And again: all of them, once each. */
	take_all(p, cells, false);
	for (size_t k = 0; k < n; k++)
		cr_assert_eq(p->give(p->g, cells[k]), 0);
	cr_assert_eq(p->available(p->g), n);

	/* Take and give once more, one cell. */
	void *a = p->take(p->g);
	cr_assert_not_null(a);
	cr_assert_eq(p->give(p->g, a), 0);
	cr_assert_eq(p->available(p->g), n);
	free(cells);
}

/* Random single-thread operations against a model of which cells are out. */
static void check_model(struct pool *p, size_t ops, uint64_t seed)
{
	const size_t n = p->count;
	unsigned char *out = calloc(n, 1);
	void **held = malloc(n * sizeof *held);
	cr_assert(out && held);
	size_t nheld = 0;
	uint64_t rng = seed;
	for (size_t k = 0; k < ops; k++) {
		uint64_t r = rng_next(&rng) % 100;
		if (r < 50) {
			void *c = p->take(p->g);
			if (nheld == n) {
				cr_assert_null(c, "%s: take with every cell out", p->name);
				continue;
			}
			cr_assert_not_null(c, "%s: take with %zu of %zu out", p->name, nheld, n);
			size_t i = index_of(p, c);
			cr_assert_eq(out[i], 0, "%s: cell %zu handed out twice", p->name, i);
			out[i] = 1;
			held[nheld++] = c;
		} else if (r < 90 && nheld) {
			size_t j = (size_t)(rng_next(&rng) % nheld);
			void *c = held[j];
			cr_assert_eq(p->give(p->g, c), 0);
			out[index_of(p, c)] = 0;
			held[j] = held[--nheld];
		} else if (r < 95) {
			/* A cell that is not out: already given. */
			size_t i = (size_t)(rng_next(&rng) % n);
			if (!out[i])
				cr_assert_eq(p->give(p->g, p->base + i * p->cell), -EALREADY);
		} else if (nheld) {
			unsigned char *c = held[rng_next(&rng) % nheld];
			size_t off = 1 + (size_t)(rng_next(&rng) % (p->cell - 1));
			cr_assert_eq(p->give(p->g, c + off), -EINVAL);
		}
		cr_assert_eq(p->available(p->g), n - nheld, "%s: available after op %zu", p->name,
			     k);
	}
	while (nheld)
		cr_assert_eq(p->give(p->g, held[--nheld]), 0);
	cr_assert_eq(p->available(p->g), n);
	free(out);
	free(held);
}

/* ---- arguments ---- */

Test(grid, open_rejects_bad_arguments)
{
	unimem_grid *g = (unimem_grid *)&g;
	cr_assert_eq(unimem_grid_open(NULL, 64, 1), -EINVAL);
	cr_assert_eq(unimem_grid_open(&g, 0, 1), -EINVAL);
	cr_assert_null(g);
	g = (unimem_grid *)&g;
	cr_assert_eq(unimem_grid_open(&g, 64, 0), -EINVAL);
	cr_assert_null(g);
	cr_assert_eq(unimem_grid_open(&g, SIZE_MAX, 1), -EINVAL); /* rounding overflows */
	cr_assert_eq(unimem_grid_open(&g, SIZE_MAX - 63, 1), -EINVAL);
	cr_assert_eq(unimem_grid_open(&g, 64, SIZE_MAX / 32), -EINVAL); /* size overflows */
	cr_assert_eq(unimem_grid_open(&g, (size_t)1 << 32, (size_t)1 << 32), -EINVAL);
	cr_assert_null(g);
	cr_assert_eq(unimem_grid_open_flags(&g, 64, 1, 1u << 30), -EINVAL); /* unknown flag */
	cr_assert_null(g);
	/* Too large to back: refused, never half made. */
	int err = unimem_grid_open(&g, (size_t)1 << 20, (size_t)1 << 26);
	cr_assert(err == -ENOMEM || err == -EPERM || err == -EINVAL, "got %d", err);
	cr_assert_null(g);
	unimem_grid_close(NULL);
	cr_assert_eq(unimem_grid_available(NULL), 0);
	cr_assert_null(unimem_grid_block(NULL));
}

Test(grid, open_rounds_the_cell_size)
{
	static const size_t asked[][2] = {{1, 64}, {63, 64}, {64, 64}, {65, 128}, {100, 128},
					  {192, 192}, {200, 256}, {4095, 4096}, {4097, 4160},
					  {1000, 1024}, {960, 960}};
	for (size_t k = 0; k < sizeof asked / sizeof asked[0]; k++) {
		unimem_grid *g;
		cr_assert_eq(unimem_grid_open(&g, asked[k][0], 3), 0);
		cr_assert_eq(unimem_grid_cell_size(g), asked[k][1], "cell %zu", asked[k][0]);
		cr_assert_eq(unimem_grid_cells(g), 3);
		unimem_grid_close(g);
	}
}

Test(grid, cells_live_in_one_pinned_block)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 4096, 10), 0);
	const unimem_block *b = unimem_grid_block(g);
	cr_assert_not_null(b);
	cr_assert(unimem_block_pinned(b));
	cr_assert_geq(unimem_block_size(b), 4096 * 10);
	unsigned char *base = unimem_block_ptr(b);
	void *cells[10];
	for (int k = 0; k < 10; k++) {
		cells[k] = unimem_grid_take(g);
		cr_assert_geq((unsigned char *)cells[k], base);
		cr_assert_leq((unsigned char *)cells[k] + 4096, base + unimem_block_size(b));
		/* Whole pages: page aligned. */
		cr_assert_eq((uintptr_t)cells[k] % 4096, 0);
	}
	for (int k = 0; k < 10; k++)
		cr_assert_eq(unimem_grid_give(g, cells[k]), 0);
	unimem_grid_close(g);

	cr_assert_eq(unimem_grid_open_flags(&g, 64, 100, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(unimem_grid_block(g)));
	cr_assert_not_null(unimem_grid_take(g));
	unimem_grid_close(g);
}

/* ---- exhaustive, single thread ---- */

Test(grid, exhaustive_generic)
{
	static const size_t shapes[][2] = {
		{64, 1},   {64, 2},    {64, 63},  {64, 64},  {64, 65},   {1, 130},
		{128, 127}, {192, 100}, {320, 70}, {4096, 3}, {4160, 17}, {64, 4096},
		{960, 200}, {65536, 5}, {100, 1000},
	};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		struct pool p = open_generic(shapes[k][0], shapes[k][1], 0);
		check_exhaustive(&p, 0x9E3779B97F4A7C15ull + k);
		p.close(p.g);
	}
}

Test(grid, exhaustive_generated)
{
	if (!generated[0])
		cr_skip_test("no -Dgrids pools in this build");
	for (size_t k = 0; generated[k]; k++) {
		struct pool p = generated[k]();
		check_exhaustive(&p, 0xD1B54A32D192ED03ull + k);
		p.close(p.g);
	}
}

/* The generic functions accept a generated pool's generic view, mixed freely. */
Test(grid, generated_pool_has_a_generic_view)
{
	if (!generated[0])
		cr_skip_test("no -Dgrids pools in this build");
	for (size_t k = 0; generated[k]; k++) {
		struct pool p = generated[k]();
		void *a = p.take(p.g);
		cr_assert_not_null(a);
		cr_assert_eq(unimem_grid_give(p.core, a), 0);
		cr_assert_eq(p.give(p.g, a), -EALREADY);
		void *b = unimem_grid_take(p.core);
		cr_assert_not_null(b);
		cr_assert_eq(p.give(p.g, b), 0);
		cr_assert_eq(unimem_grid_give(p.core, b), -EALREADY);
		cr_assert_eq(unimem_grid_give(p.core, (char *)b + 32), -EINVAL);
		cr_assert_eq(unimem_grid_available(p.core), p.count);
		p.close(p.g);
	}
}

/* LIFO per thread: the cell a thread gave last comes back first to it (its cache). */
Test(grid, lifo_per_thread)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 192, 300), 0);
	void *c[5];
	for (int k = 0; k < 5; k++)
		c[k] = unimem_grid_take(g);
	for (int k = 0; k < 5; k++) {
		cr_assert_eq(unimem_grid_give(g, c[k]), 0);
		cr_assert_eq(unimem_grid_take(g), c[k]);
		cr_assert_eq(unimem_grid_give(g, c[k]), 0);
	}
	unimem_grid_close(g);
#define LIFO_GENERATED(N, CELL, COUNT)                                                    \
	do {                                                                              \
		unimem_grid_##N *p;                                                       \
		cr_assert_eq(unimem_grid_##N##_open(&p), 0);                              \
		void *a = unimem_grid_##N##_take(p), *b = unimem_grid_##N##_take(p);      \
		cr_assert_not_null(a);                                                    \
		if (b)                                                                    \
			cr_assert_eq(unimem_grid_##N##_give(p, b), 0);                    \
		cr_assert_eq(unimem_grid_##N##_give(p, a), 0);                            \
		cr_assert_eq(unimem_grid_##N##_take(p), a);                               \
		cr_assert_eq(unimem_grid_##N##_give(p, a), 0);                            \
		unimem_grid_##N##_close(p);                                               \
	} while (0);
	UNIMEM_GRID_FOREACH(LIFO_GENERATED)
}

Test(grid, random_model_single_thread)
{
	static const size_t shapes[][2] = {{64, 1}, {64, 64}, {192, 100}, {64, 1000}};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		struct pool p = open_generic(shapes[k][0], shapes[k][1], 0);
		check_model(&p, 100000, 0xA0761D6478BD642Full + k);
		p.close(p.g);
	}
	for (size_t k = 0; generated[k]; k++) {
		struct pool p = generated[k]();
		check_model(&p, 50000, 0xE7037ED1A0B428DBull + k);
		p.close(p.g);
	}
}

/* ---- threads ---- */

static long env_ms(long dflt)
{
	const char *s = getenv("UNIMEM_GRID_STRESS_MS");
	long v = s ? strtol(s, NULL, 10) : 0;
	return v > 0 ? v : dflt;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Double give: every round, one cell is out and all racers give it at once, released
 * together by a spin barrier; exactly one must succeed, the others get -EALREADY, and
 * the pool stays exact. The test's own thread is racer 0: between rounds it checks the
 * results and picks the next cell. */
struct barrier {
	unsigned count, waiting, phase;
};

static void barrier_wait(struct barrier *b)
{
	unsigned phase = __atomic_load_n(&b->phase, __ATOMIC_ACQUIRE);
	if (__atomic_add_fetch(&b->waiting, 1, __ATOMIC_ACQ_REL) == b->count) {
		__atomic_store_n(&b->waiting, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&b->phase, phase + 1, __ATOMIC_RELEASE);
		return;
	}
	unsigned spins = 0;
	while (__atomic_load_n(&b->phase, __ATOMIC_ACQUIRE) == phase)
		if (++spins > 2000)
			sched_yield(); /* more racers than cores */
}

struct race {
	struct pool *p;
	struct barrier start, end;
	void *cell;
	bool stop;
	int rc[16];
};

static void race_give(struct race *r, int k)
{
	r->rc[k] = r->p->give(r->p->g, r->cell);
}

struct racer_arg {
	struct race *r;
	int k;
};

/* Run the calling thread on CPU `cpu` only. */
static int pin_cpu(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

/* Spread the racers over the CPUs, so that their gives really overlap. */
static void pin_to(int k)
{
	cpu_set_t all;
	if (sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) < 2)
		return;
	int n = k % CPU_COUNT(&all);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all) && n-- == 0) {
			pin_cpu(c);
			return;
		}
}

static void *racer(void *arg)
{
	struct racer_arg *a = arg;
	pin_to(a->k);
	for (;;) {
		barrier_wait(&a->r->start);
		if (__atomic_load_n(&a->r->stop, __ATOMIC_ACQUIRE))
			return NULL;
		race_give(a->r, a->k);
		barrier_wait(&a->r->end);
	}
}

static void run_double_give_race(struct pool *p, int racers, double seconds, long min_rounds)
{
	struct race r = {.p = p};
	r.start.count = r.end.count = (unsigned)racers;
	pthread_t th[16];
	struct racer_arg args[16];
	for (int k = 1; k < racers; k++) {
		args[k] = (struct racer_arg){&r, k};
		cr_assert_eq(pthread_create(&th[k], NULL, racer, &args[k]), 0);
	}
	cpu_set_t mask;
	bool restore = sched_getaffinity(0, sizeof mask, &mask) == 0;
	pin_to(0);
	double end = now_s() + seconds;
	uint64_t rng = 42;
	long rounds = 0;
	/* Hold a few cells, so that the raced cell is not always the same one. */
	void *hold[3];
	for (int k = 0; k < 3; k++)
		hold[k] = p->take(p->g);
	for (; rounds < min_rounds || now_s() < end; rounds++) {
		void *c = p->take(p->g);
		cr_assert_not_null(c);
		if (rng_next(&rng) % 2) {
			int k = (int)(rng_next(&rng) % 3);
			void *t = hold[k];
			hold[k] = c;
			c = t;
		}
		r.cell = c;
		barrier_wait(&r.start);
		race_give(&r, 0);
		barrier_wait(&r.end);
		int wins = 0, already = 0;
		for (int k = 0; k < racers; k++) {
			wins += r.rc[k] == 0;
			already += r.rc[k] == -EALREADY;
		}
		cr_assert_eq(wins, 1, "%s: round %ld: %d of %d gives of one cell succeeded",
			     p->name, rounds, wins, racers);
		cr_assert_eq(already, racers - 1, "%s: round %ld", p->name, rounds);
		cr_assert_eq(p->available(p->g), p->count - 3, "%s: round %ld", p->name, rounds);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
	barrier_wait(&r.start);
	for (int k = 1; k < racers; k++)
		pthread_join(th[k], NULL);
	if (restore)
		sched_setaffinity(0, sizeof mask, &mask);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(p->give(p->g, hold[k]), 0);
	cr_assert_eq(p->available(p->g), p->count);
}

Test(grid, double_give_race_exactly_one_wins)
{
	struct pool p = open_generic(64, 64, 0);
	run_double_give_race(&p, 2, 0.2, 5000);
	run_double_give_race(&p, 4, 0.1, 500);
	p.close(p.g);
	if (generated[0]) {
		p = generated[0]();
		run_double_give_race(&p, 3, 0.15, 1000);
		p.close(p.g);
	}
}

/* Stress: threads take and give at random; every take marks the cell's owner with a CAS
 * (a cell handed to two holders fails it), every holder stamps its cell and checks the
 * stamp before giving it back, refused gives (inside a held cell) are sprinkled in, and
 * cells also change hands through a few mailboxes, so that threads give cells that other
 * threads took. */
#define MAX_HELD 24
#define BOXES 8
#define IN_BOX UINT64_MAX /* owner of a cell in a mailbox */

struct stress {
	struct pool *p;
	uint64_t *owner; /* per cell: 0, the holder's id, or IN_BOX */
	void *box[BOXES];
	double end;
	uint64_t takes, empties, gives;
	uint64_t double_handout, stamp_bad, give_bad, refuse_bad;
};

struct worker {
	struct stress *s;
	uint64_t id;
	pthread_t th;
};

static void *stress_worker(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	struct pool *p = s->p;
	unsigned char *held[MAX_HELD];
	int nheld = 0;
	uint64_t rng = 0x243F6A8885A308D3ull * w->id + 1, seq = 0;
	uint64_t takes = 0, empties = 0, gives = 0, dbl = 0, stamp = 0, gbad = 0, rbad = 0;
	for (uint64_t k = 0;; k++) {
		if ((k & 1023) == 0 && now_s() >= s->end)
			break;
		uint64_t r = rng_next(&rng) % 100;
		if (r < 50 && nheld < MAX_HELD) {
			unsigned char *c = p->take(p->g);
			if (!c) {
				empties++;
				continue;
			}
			takes++;
			size_t i = index_of(p, c);
			uint64_t expect = 0;
			if (i >= p->count || (size_t)(c - p->base) % p->cell ||
			    !__atomic_compare_exchange_n(&s->owner[i], &expect, w->id, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				dbl++;
				continue; /* leave it: the pool is already wrong */
			}
			uint64_t tag = w->id << 40 | ++seq;
			memcpy(c, &tag, sizeof tag);
			memcpy(c + p->cell - sizeof tag, &tag, sizeof tag);
			held[nheld++] = c;
		} else if (r < 90 && nheld) {
			int j = (int)(rng_next(&rng) % (uint64_t)nheld);
			unsigned char *c = held[j];
			uint64_t a, b;
			memcpy(&a, c, sizeof a);
			memcpy(&b, c + p->cell - sizeof b, sizeof b);
			if (a != b || a >> 40 != w->id)
				stamp++;
			size_t i = index_of(p, c);
			uint64_t expect = w->id;
			if (!__atomic_compare_exchange_n(&s->owner[i], &expect, 0, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				dbl++;
			if (p->give(p->g, c) != 0)
				gbad++;
			gives++;
			held[j] = held[--nheld];
		} else if (r < 97) {
			/* Swap a held cell (or nothing) for whatever a mailbox holds. */
			unsigned char *c = NULL;
			if (nheld) {
				int j = (int)(rng_next(&rng) % (uint64_t)nheld);
				c = held[j];
				held[j] = held[--nheld];
				uint64_t expect = w->id;
				if (!__atomic_compare_exchange_n(&s->owner[index_of(p, c)], &expect,
								 IN_BOX, false, __ATOMIC_ACQ_REL,
								 __ATOMIC_ACQUIRE))
					dbl++;
			}
			unsigned char *got = __atomic_exchange_n(&s->box[rng_next(&rng) % BOXES], c,
								 __ATOMIC_ACQ_REL);
			if (got) {
				uint64_t expect = IN_BOX;
				if (!__atomic_compare_exchange_n(&s->owner[index_of(p, got)], &expect,
								 w->id, false, __ATOMIC_ACQ_REL,
								 __ATOMIC_ACQUIRE))
					dbl++;
				uint64_t tag = w->id << 40 | ++seq;
				memcpy(got, &tag, sizeof tag);
				memcpy(got + p->cell - sizeof tag, &tag, sizeof tag);
				held[nheld++] = got;
			}
		} else if (nheld) {
			unsigned char *c = held[rng_next(&rng) % (uint64_t)nheld];
			if (p->give(p->g, c + 8) != -EINVAL ||
			    p->give(p->g, c + p->cell - 32) != -EINVAL)
				rbad++;
		}
	}
	while (nheld) {
		unsigned char *c = held[--nheld];
		__atomic_store_n(&s->owner[index_of(p, c)], 0, __ATOMIC_RELEASE);
		if (p->give(p->g, c) != 0)
			gbad++;
	}
	__atomic_fetch_add(&s->takes, takes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->empties, empties, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->gives, gives, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->double_handout, dbl, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->stamp_bad, stamp, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->give_bad, gbad, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->refuse_bad, rbad, __ATOMIC_RELAXED);
	return NULL;
}

static void run_stress(struct pool *p, int threads, double seconds)
{
	struct stress s = {.p = p};
	s.owner = calloc(p->count, sizeof *s.owner);
	cr_assert_not_null(s.owner);
	struct worker w[16];
	s.end = now_s() + seconds;
	for (int k = 0; k < threads; k++) {
		w[k] = (struct worker){&s, (uint64_t)k + 1, 0};
		cr_assert_eq(pthread_create(&w[k].th, NULL, stress_worker, &w[k]), 0);
	}
	for (int k = 0; k < threads; k++)
		pthread_join(w[k].th, NULL);
	for (int k = 0; k < BOXES; k++)
		if (s.box[k]) {
			size_t i = index_of(p, s.box[k]);
			cr_assert_eq(s.owner[i], IN_BOX);
			s.owner[i] = 0;
			cr_assert_eq(p->give(p->g, s.box[k]), 0);
		}
	cr_assert_eq(s.double_handout, 0, "%s: %llu cells handed to two holders", p->name,
		     (unsigned long long)s.double_handout);
	cr_assert_eq(s.stamp_bad, 0, "%s: %llu cells overwritten while held", p->name,
		     (unsigned long long)s.stamp_bad);
	cr_assert_eq(s.give_bad, 0, "%s: %llu gives of held cells refused", p->name,
		     (unsigned long long)s.give_bad);
	cr_assert_eq(s.refuse_bad, 0, "%s: misaligned gives accepted", p->name);
	cr_assert_gt(s.takes, 1000, "%s: only %llu takes", p->name, (unsigned long long)s.takes);
	/* Quiescent: exact, and every cell comes out once. */
	cr_assert_eq(p->available(p->g), p->count, "%s: %zu of %zu cells after the stress",
		     p->name, p->available(p->g), p->count);
	for (size_t i = 0; i < p->count; i++)
		cr_assert_eq(s.owner[i], 0);
	void **cells = malloc(p->count * sizeof *cells);
	take_all(p, cells, false);
	for (size_t i = 0; i < p->count; i++)
		cr_assert_eq(p->give(p->g, cells[i]), 0);
	free(cells);
	free(s.owner);
}

static void stress_all(double seconds, int threads)
{
	/* One word (heavy contention, frequent exhaustion), several words with a cell size
	 * that is not a power of two, and each generated pool. */
	struct pool p = open_generic(64, 64, 0);
	run_stress(&p, threads, seconds);
	p.close(p.g);
	p = open_generic(192, 1000, 0);
	run_stress(&p, threads, seconds);
	p.close(p.g);
	for (size_t k = 0; generated[k]; k++) {
		p = generated[k]();
		run_stress(&p, threads, seconds / 2);
		p.close(p.g);
	}
}

Test(grid, stress_4_threads)
{
	stress_all((double)env_ms(250) / 1000.0, 4);
}

Test(grid_stress, stress_8_threads)
{
	stress_all((double)env_ms(250) / 1000.0, 8);
}

Test(grid_stress, double_give_race_long)
{
	struct pool p = open_generic(192, 130, 0);
	double seconds = (double)env_ms(250) / 1000.0;
	run_double_give_race(&p, 2, seconds, 1000);
	run_double_give_race(&p, 5, seconds, 200);
	p.close(p.g);
}

/* ---- the Grid in its Block: attach (issue 15) ---- */

static unimem_block *block_of(const unimem_grid *g)
{
	return (unimem_block *)unimem_grid_block(g);
}

static unimem_grid_pvt_hdr *header_of(const unimem_grid *g)
{
	const unimem_block *b = unimem_grid_block(g);
	return (unimem_grid_pvt_hdr *)(void *)((unsigned char *)unimem_block_ptr(b) +
						unimem_block_size(b) - UNIMEM_GRID_PVT_HDR_BYTES);
}

/* Two handles on one Block are one pool: what one holds the other never hands out, a cell
 * taken through one is given back through the other, available() agrees. */
Test(grid, attach_shares_the_pool)
{
	unimem_grid *g, *h = (unimem_grid *)&h;
	cr_assert_eq(unimem_grid_open(&g, 192, 300), 0);
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), 0);
	cr_assert_eq(unimem_grid_cell_size(h), 192);
	cr_assert_eq(unimem_grid_cells(h), 300);
	cr_assert_eq(unimem_grid_block(h), unimem_grid_block(g));
	void *mine[100];
	for (int k = 0; k < 100; k++)
		cr_assert_not_null(mine[k] = unimem_grid_take(g));
	cr_assert_eq(unimem_grid_available(h), 200);
	void *theirs[200];
	for (int k = 0; k < 200; k++) {
		theirs[k] = unimem_grid_take(h);
		cr_assert_not_null(theirs[k], "take %d through the attached handle", k);
		for (int j = 0; j < 100; j++)
			cr_assert_neq(theirs[k], mine[j], "a cell out through one handle came from the other");
	}
	cr_assert_null(unimem_grid_take(h));
	cr_assert_null(unimem_grid_take(g));
	for (int k = 0; k < 100; k++) {
		cr_assert_eq(unimem_grid_give(h, mine[k]), 0);
		cr_assert_eq(unimem_grid_give(g, mine[k]), -EALREADY);
	}
	for (int k = 0; k < 200; k++)
		cr_assert_eq(unimem_grid_give(g, theirs[k]), 0);
	cr_assert_eq(unimem_grid_available(g), 300);
	cr_assert_eq(unimem_grid_available(h), 300);
	/* Closing the attached handle leaves the Block and the pool to the other. */
	unimem_grid_close(h);
	cr_assert_eq(unimem_grid_available(g), 300);
	void **all = malloc(300 * sizeof *all);
	struct pool p = {"generic", g, g, generic_take, generic_give, generic_available,
			 generic_close, 0, 0, NULL};
	pool_finish(&p);
	take_all(&p, all, false);
	for (int k = 0; k < 300; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0);
	free(all);
	unimem_grid_close(g);
}

#define ATTACH_GENERATED(N, CELL, COUNT)                                                  \
	do {                                                                              \
		unimem_grid_##N *p, *q;                                                   \
		cr_assert_eq(unimem_grid_##N##_open(&p), 0);                              \
		cr_assert_eq(unimem_grid_##N##_attach(&q, (unimem_block *)unimem_grid_##N##_block(p)), 0); \
		void *a = unimem_grid_##N##_take(q);                                      \
		cr_assert_not_null(a);                                                    \
		cr_assert_eq(unimem_grid_##N##_available(p), (size_t)(COUNT) - 1);        \
		cr_assert_eq(unimem_grid_##N##_give(p, a), 0);                            \
		cr_assert_eq(unimem_grid_##N##_give(q, a), -EALREADY);                    \
		unimem_grid_##N##_close(q);                                               \
		/* The wrong shape: the generated attach checks its constants. */         \
		unimem_grid *other;                                                       \
		cr_assert_eq(unimem_grid_open(&other, (CELL) + 64, COUNT), 0);            \
		q = (unimem_grid_##N *)&q;                                                \
		cr_assert_eq(unimem_grid_##N##_attach(&q, block_of(other)), -EINVAL);     \
		cr_assert_null(q);                                                        \
		unimem_grid_close(other);                                                 \
		cr_assert_eq(unimem_grid_open(&other, CELL, (COUNT) + 1), 0);             \
		cr_assert_eq(unimem_grid_##N##_attach(&q, block_of(other)), -EINVAL);     \
		cr_assert_eq(unimem_grid_##N##_attach(NULL, block_of(other)), -EINVAL);   \
		unimem_grid_close(other);                                                 \
		unimem_grid_##N##_close(p);                                               \
	} while (0);

Test(grid, generated_attach_checks_its_shape)
{
	UNIMEM_GRID_FOREACH(ATTACH_GENERATED)
	unimem_grid *g, *h;
	cr_assert_eq(unimem_grid_open(&g, 64, 100), 0);
	cr_assert_eq(unimem_grid_attach_as(&h, block_of(g), 64, 100), 0);
	unimem_grid_close(h);
	cr_assert_eq(unimem_grid_attach_as(&h, block_of(g), 128, 100), -EINVAL);
	cr_assert_null(h);
	cr_assert_eq(unimem_grid_attach_as(&h, block_of(g), 64, 99), -EINVAL);
	cr_assert_eq(unimem_grid_attach_as(NULL, block_of(g), 64, 100), -EINVAL);
	unimem_grid_close(g);
}

/* A Block that holds no Grid, or one of an unknown layout version, is refused and left
 * exactly as it was. */
Test(grid, attach_refuses_what_is_no_grid)
{
	unimem_grid *h = (unimem_grid *)&h;
	cr_assert_eq(unimem_grid_attach(NULL, NULL), -EINVAL);
	cr_assert_eq(unimem_grid_attach(&h, NULL), -EINVAL);
	cr_assert_null(h);
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	size_t size = unimem_block_size(b);
	unsigned char *copy = malloc(size);
	memset(unimem_block_ptr(b), 0x5A, size);
	memcpy(copy, unimem_block_ptr(b), size);
	h = (unimem_grid *)&h;
	cr_assert_eq(unimem_grid_attach(&h, b), -EINVAL);
	cr_assert_null(h);
	memset(unimem_block_ptr(b), 0, size);
	cr_assert_eq(unimem_grid_attach(&h, b), -EINVAL);
	memset(unimem_block_ptr(b), 0x5A, size);
	cr_assert_eq(memcmp(copy, unimem_block_ptr(b), size), 0, "a refused attach wrote to the Block");
	free(copy);
	unimem_block_close(b);

	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 256, 1000), 0);
	unimem_grid_pvt_hdr *hdr = header_of(g);
	/* A version from the future, and Grids older libraries made: version 1 (320-byte
	 * slots, 64-byte boundaries); 3 (its thieves' flag is an attachment alone, and its
	 * owners write no acks); 4 (slots of 384 bytes, caches of up to 64); 5 (the same slots,
	 * but no PRE state: its reclaim would free a PRE cell as junk, though a live holder
	 * has it). */
	const uint32_t refused[] = { UNIMEM_GRID_PVT_VERSION + 1, 1, 3, 4, 5 };
	for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
		hdr->version = refused[k];
		h = (unimem_grid *)&h;
		cr_assert_eq(unimem_grid_attach(&h, block_of(g)), -EPROTO, "version %u", refused[k]);
		cr_assert_null(h, "version %u", refused[k]);
	}
	hdr->version = UNIMEM_GRID_PVT_VERSION;
	/* This version with slots of another size than its cache makes. */
	const uint32_t slot_bytes = hdr->slot_bytes;
	cr_assert_eq(slot_bytes, UNIMEM_GRID_PVT_SLOT_BYTES(hdr->cap));
	hdr->slot_bytes = slot_bytes + 128;
	h = (unimem_grid *)&h;
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), -EINVAL);
	cr_assert_null(h);
	hdr->slot_bytes = slot_bytes;
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), 0);
	unimem_grid_close(h);
	unimem_grid_close(g);
}

/* A hostile peer's header: every field of it changed in many ways, one at a time and all
 * together; attach gives an error (never a crash), and whatever it accepts works. */
Test(grid, attach_survives_a_hostile_header)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 128, 500), 0);
	unimem_grid_pvt_hdr *hdr = header_of(g);
	unimem_grid_pvt_hdr good = *hdr;
	uint64_t rng = 7;
	static const uint64_t nasty[] = {0, 1, 63, 64, 65, 4096, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
					 INT64_MAX, UINT64_MAX, UINT64_MAX - 63};
	int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		*hdr = good;
		uint32_t *w = (uint32_t *)(void *)hdr;
		const size_t nw = sizeof *hdr / 4;
		int changes = round < 10000 ? 1 : 1 + (int)(rng_next(&rng) % 8);
		for (int c = 0; c < changes; c++) {
			size_t at = (size_t)(rng_next(&rng) % nw);
			uint64_t v = rng_next(&rng) % 3 ? nasty[rng_next(&rng) % 11] : rng_next(&rng);
			if (rng_next(&rng) % 2 && at + 1 < nw)
				memcpy(&w[at & ~(size_t)1], &v, 8);
			else
				w[at] = (uint32_t)v;
		}
		unimem_grid *h = NULL;
		int err = unimem_grid_attach(&h, block_of(g));
		if (err == 0) {
			accepted++;
			void *c = unimem_grid_take(h);
			if (c)
				cr_assert_eq(unimem_grid_give(h, c), 0);
			unimem_grid_close(h);
		} else {
			cr_assert(err == -EINVAL || err == -EPROTO, "attach gave %d", err);
			cr_assert_null(h);
		}
	}
	*hdr = good;
	cr_assert_geq(accepted, 1); /* the fields nothing reads (padding) */
	unimem_grid_close(g);
}

/* A hostile peer may write anything into the pool's state while it runs: takes, gives,
 * reclaims and available() on such a Block stay inside it (AddressSanitizer checks). */
Test(grid, garbage_in_the_state_never_goes_out_of_bounds)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 64, 1000), 0);
	const unimem_block *b = unimem_grid_block(g);
	unsigned char *base = unimem_block_ptr(b);
	const size_t size = unimem_block_size(b), meta = 64 * 1000;
	uint64_t rng = 99;
	for (int round = 0; round < 200; round++) {
		/* Fill state, bits, slots and records (not the header) with junk. */
		for (size_t at = meta; at + 8 <= size - UNIMEM_GRID_PVT_HDR_BYTES; at += 8) {
			uint64_t v = rng_next(&rng);
			if (round % 3 == 0)
				v &= 0xC000FFFFC000FFFFull;
			memcpy(base + at, &v, 8);
		}
		for (int k = 0; k < 50; k++) {
			void *c = unimem_grid_take(g);
			if (c) {
				cr_assert_geq((unsigned char *)c, base);
				cr_assert_lt((unsigned char *)c, base + meta);
				unimem_grid_give(g, c);
				unimem_grid_give_unchecked(g, c);
			}
		}
		(void)unimem_grid_available(g);
		unimem_grid_reclaim(g);
	}
	unimem_grid_close(g);
}

/* A refill's state (PRE) forged or left by a peer: reclaim returns the cells whose PRE
 * names a dead attachment, or has bits or a slot no PRE of this library has, and leaves a
 * live attachment's alone. */
Test(grid, reclaim_returns_dead_and_junk_refill_states_only)
{
	unimem_grid *g, *dead;
	cr_assert_eq(unimem_grid_open(&g, 64, 1000), 0);
	cr_assert_eq(unimem_grid_attach(&dead, block_of(g)), 0);
	dead->recs[dead->rec].ident ^= 1; /* its process is gone */
	const uint32_t forged[4] = {
		UNIMEM_GRID_PVT_PRE | dead->rec << 16 | 3u << 8 | 5u, /* dead attachment */
		UNIMEM_GRID_PVT_PRE | g->rec << 16 | 3u << 8 | 5u,    /* live: kept */
		UNIMEM_GRID_PVT_PRE | 1u << 22 | g->rec << 16,        /* bits no PRE has */
		UNIMEM_GRID_PVT_PRE | g->rec << 16 | 200u << 8,       /* slot 200 of 128 */
	};
	for (unsigned k = 0; k < 4; k++) {
		g->state[10 + k] = forged[k];
		g->bits[0] &= ~((uint64_t)1 << (10 + k));
	}
	cr_assert_eq(unimem_grid_reclaim(g), 3);
	cr_assert_eq(g->state[10], 0u);
	cr_assert_eq(g->state[11], forged[1], "a live attachment's PRE stays");
	cr_assert_eq(g->state[12], 0u);
	cr_assert_eq(g->state[13], 0u);
	cr_assert_eq(unimem_grid_available(g), 999u);
	g->state[11] = 0;
	g->bits[0] |= (uint64_t)1 << 11;
	cr_assert_eq(unimem_grid_available(g), 1000u);
	unimem_grid_close(dead);
	unimem_grid_close(g);
}

/* A refill claims the cells of a group of 4 state words with one atomic instruction: the
 * free cells of a group are taken, the others (set bits whose cells are not in the pool)
 * are left as they are and their bits cleared. Pools whose last group is partial too. */
Test(grid, a_refill_takes_the_free_cells_of_a_group_and_only_those)
{
	static const size_t counts[] = {1000, 1001, 1003, 4096};
	const uint32_t foreign = UNIMEM_GRID_PVT_HELD | (UNIMEM_GRID_PVT_RECS - 1);
	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
		const size_t n = counts[c];
		unimem_grid *g;
		cr_assert_eq(unimem_grid_open(&g, 64, n), 0);
		/* Cells 1 and 3 of every group, and every 7th, held by an attachment no one has
		 * (reclaim leaves those alone: not dead, only absent); their bits stay set. */
		size_t nfree = 0;
		bool *held = calloc(n, 1);
		cr_assert_not_null(held);
		for (size_t i = 0; i < n; i++) {
			if (i % 4 == 1 || i % 4 == 3 || i % 7 == 0)
				g->state[i] = foreign;
			else
				nfree++;
		}
		unsigned char *base = unimem_block_ptr(unimem_grid_block(g));
		size_t got = 0;
		for (void *p; (p = unimem_grid_take(g)) != NULL; got++) {
			const size_t i = (size_t)((unsigned char *)p - base) / 64;
			cr_assert_lt(i, n);
			cr_assert(i % 4 == 0 || i % 4 == 2, "cell %zu of pool %zu is not free", i, n);
			cr_assert_neq(i % 7, 0, "cell %zu of pool %zu is not free", i, n);
			cr_assert_not(held[i], "cell %zu handed out twice", i);
			held[i] = true;
		}
		cr_assert_eq(got, nfree, "pool %zu: %zu of %zu free cells", n, got, nfree);
		for (size_t i = 0; i < n; i++) {
			if (!held[i]) {
				cr_assert_eq(g->state[i], foreign, "cell %zu", i);
				cr_assert_not(g->bits[i / 64] >> (i % 64) & 1, "stale bit of cell %zu", i);
			}
		}
		for (size_t i = 0; i < n; i++)
			if (held[i])
				cr_assert_eq(unimem_grid_give(g, base + i * 64), 0);
		cr_assert_eq(unimem_grid_available(g), nfree);
		for (size_t i = 0; i < n; i++)
			if (!held[i])
				g->state[i] = 0;
		free(held);
		unimem_grid_close(g);
	}
}

/* ---- caches (issue 15) ---- */

static size_t owned_slots(const unimem_grid *g)
{
	size_t n = 0;
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++)
		n += __atomic_load_n(&unimem_grid_pvt_slot_at(g, t)->owner, __ATOMIC_RELAXED) != 0;
	return n;
}

struct sleeper {
	unimem_grid *g;
	struct barrier *b;
	int hold;
};

/* Take `hold` cells, give them back (into this thread's cache), then sleep on the barrier
 * twice: while it sleeps its cache is full. */
static void *sleeper(void *arg)
{
	struct sleeper *s = arg;
	void *c[UNIMEM_GRID_PVT_CACHE];
	for (int k = 0; k < s->hold; k++)
		c[k] = unimem_grid_take(s->g);
	for (int k = 0; k < s->hold; k++)
		cr_assert_eq(unimem_grid_give(s->g, c[k]), 0);
	barrier_wait(s->b);
	barrier_wait(s->b);
	return NULL;
}

/* Cells in the caches of sleeping threads are counted by available() and come back to a
 * take that finds the shared pool dry: every cell is reachable at any time. Each thread
 * has a slot of its own (no collisions), and a thread's exit frees it. */
Test(grid, sleeping_caches_strand_nothing)
{
	static const size_t shapes[][2] = {{64, 256}, {4096, 256}, {64, 4096}, {192, 1000}};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		unimem_grid *g;
		const size_t count = shapes[k][1];
		cr_assert_eq(unimem_grid_open(&g, shapes[k][0], count), 0);
		enum { SLEEPERS = 8 };
		struct barrier b = {.count = SLEEPERS + 1};
		struct sleeper s = {g, &b, (int)(g->cap ? g->cap : 1)};
		pthread_t th[SLEEPERS];
		for (int t = 0; t < SLEEPERS; t++)
			cr_assert_eq(pthread_create(&th[t], NULL, sleeper, &s), 0);
		barrier_wait(&b);
		if (g->cap)
			cr_assert_eq(owned_slots(g), SLEEPERS, "each thread has a slot of its own");
		cr_assert_eq(unimem_grid_available(g), count, "cached cells count as available");
		void **all = malloc(count * sizeof *all);
		struct pool p = {"generic", g, g, generic_take, generic_give, generic_available,
				 generic_close, 0, 0, NULL};
		pool_finish(&p);
		take_all(&p, all, true); /* every cell, those of the sleepers' caches too */
		for (size_t i = 0; i < count; i++)
			cr_assert_eq(unimem_grid_give(g, all[i]), 0);
		free(all);
		barrier_wait(&b);
		for (int t = 0; t < SLEEPERS; t++)
			pthread_join(th[t], NULL);
		cr_assert_eq(owned_slots(g), g->cap ? 1u : 0u, "threads that ended keep no slot");
		cr_assert_eq(unimem_grid_available(g), count);
		unimem_grid_close(g);
	}
}

struct first_take {
	unimem_grid *g;
	struct barrier b;
	unsigned next;
	uint64_t idx[8];
};

/* Take one cell and hold it (and this thread's slot) until every taker has one. */
static void *first_taker(void *arg)
{
	struct first_take *f = arg;
	unsigned me = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
	void *c = unimem_grid_take(f->g);
	f->idx[me] = c ? unimem_grid_index(f->g, c) : UINT64_MAX;
	barrier_wait(&f->b);
	if (c)
		cr_assert_eq(unimem_grid_give(f->g, c), 0);
	return NULL;
}

/* Holders write state words of their own: eight threads each take a cell, and no two of
 * those cells are in one group of a refill's cells (at least 32: 128 bytes of state words);
 * the state words and the slots lie on 128-byte boundaries (Intel's L2 fetches lines in
 * 128-byte pairs). On a 256-cell pool a refill claims 8 cells and groups are 32 (8 of
 * them); on a 4096-cell pool it claims 128 (a cache of 256), and holders that started 32
 * cells apart, as before caches grew, would claim into each other's groups. With
 * thread-id-hashed slots, neighbouring threads started 16 cells apart. */
Test(grid, holders_start_in_state_words_of_their_own)
{
	static const struct { size_t count, group; } shapes[] = { { 256, 32 }, { 4096, 128 } };
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		const size_t count = shapes[k].count, group = shapes[k].group;
		unimem_grid *g;
		cr_assert_eq(unimem_grid_open(&g, 64, count), 0);
		cr_assert_eq((uintptr_t)g->state % 128, 0);
		cr_assert_eq((uintptr_t)g->slots % 128, 0);
		cr_assert_eq(g->slot_bytes % 128, 0);
		if (!g->cap) {
			unimem_grid_close(g);
			cr_skip_test("no per-thread caches here (membarrier refused or "
				     "UNIMEM_GRID_NO_CACHE)");
		}
		cr_assert_eq(g->cap / 2 > 32 ? g->cap / 2 : 32, group, "%zu cells: cache %u",
			     count, g->cap);
		enum { N = 8 };
		/* Where the first refills start (the takes below race, so they may not show
		 * two claims running into each other). */
		for (uint32_t t = 0; t < N; t++)
			cr_assert_eq(unimem_grid_pvt_slot_at(g, t)->rover, t * group % count,
				     "%zu cells: slot %u starts at %u", count, t,
				     unimem_grid_pvt_slot_at(g, t)->rover);
		struct first_take f = { .g = g, .b = { .count = N + 1 } };
		pthread_t th[N];
		for (int t = 0; t < N; t++)
			cr_assert_eq(pthread_create(&th[t], NULL, first_taker, &f), 0);
		barrier_wait(&f.b);
		for (int t = 0; t < N; t++)
			pthread_join(th[t], NULL);
		for (int a = 0; a < N; a++) {
			cr_assert_lt(f.idx[a], count);
			for (int b = a + 1; b < N; b++)
				cr_assert_neq(f.idx[a] / group, f.idx[b] / group,
					      "%zu cells: cells %lu and %lu share a group of %zu",
					      count, (unsigned long)f.idx[a], (unsigned long)f.idx[b],
					      group);
		}
		cr_assert_eq(unimem_grid_available(g), count);
		unimem_grid_close(g);
	}
}

/* A thread's give stays checked, and give_unchecked refuses what it can see. */
Test(grid, give_unchecked_refuses_foreign_misaligned_and_free_cells)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 192, 500), 0);
	unsigned char *c = unimem_grid_take(g);
	cr_assert_eq(unimem_grid_give_unchecked(g, c + 64), -EINVAL);
	cr_assert_eq(unimem_grid_give_unchecked(g, NULL), -EINVAL);
	cr_assert_eq(unimem_grid_give_unchecked(g, c - 192 * 1000), -EINVAL);
	cr_assert_eq(unimem_grid_index(g, c + 1), UINT64_MAX);
	cr_assert_lt(unimem_grid_index(g, c), 500);
	cr_assert_eq(unimem_grid_give_unchecked(g, c), 0);
	cr_assert_eq(unimem_grid_give_unchecked(g, c), -EALREADY);
	cr_assert_eq(unimem_grid_give(g, c), -EALREADY);
	cr_assert_eq(unimem_grid_available(g), 500);
	unimem_grid_close(g);
}

/* ---- processes and reclaim (issue 15) ---- */

/* fork(): in the parent NULL (*pid the child), in the child its own handle on the Grid in
 * the Block `id`, looked up and attached there (the child exits 2 when it cannot). */
static unimem_grid *fork_attached(uint32_t id, pid_t *pid)
{
	*pid = fork();
	if (*pid != 0)
		return NULL;
	unimem_block *b;
	unimem_grid *h;
	if (unimem_block_lookup(&b, id) || unimem_grid_attach(&h, b))
		_exit(2);
	return h;
}

/* A child that takes `take` cells through its own attach of the Block it looked up,
 * gives `give` of them back (into its cache), writes its pid into the rest, reports on
 * the pipe, and waits to be killed. */
static pid_t holder_child(uint32_t id, int take, int give, int fd)
{
	pid_t pid;
	unimem_grid *h = fork_attached(id, &pid);
	if (!h)
		return pid;
	void *c[512];
	for (int k = 0; k < take; k++)
		if (!(c[k] = unimem_grid_take(h)))
			_exit(3);
	for (int k = 0; k < give; k++)
		if (unimem_grid_give(h, c[k]))
			_exit(4);
	for (int k = give; k < take; k++)
		memset(c[k], 0x77, 64);
	char ok = 1;
	if (write(fd, &ok, 1) != 1)
		_exit(5);
	for (;;)
		pause();
}

/* A child that attached to g (1000 cells) holds 260 cells and caches 40, then sleeps;
 * fds[0] and fds[1] are the pipe it reported on (the caller closes them). */
static pid_t child_holding_260(unimem_grid *g, int fds[2])
{
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = holder_child(unimem_block_id(unimem_grid_block(g)), 300, 40, fds[1]);
	char ok;
	cr_assert_eq(read(fds[0], &ok, 1), 1);
	/* Available: the 700 it did not take and the 40 it cached (a dry take steals them). */
	cr_assert_eq(unimem_grid_available(g), 740);
	return pid;
}

Test(grid, reclaim_returns_the_cells_of_a_killed_process)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 256, 1000), 0);
	cr_assert_eq(unimem_grid_reclaim(g), 0, "nothing to reclaim");
	cr_assert_eq(unimem_grid_reclaim(NULL), -EINVAL);
	int fds[2];
	pid_t pid = child_holding_260(g, fds);
	cr_assert_eq(unimem_grid_reclaim(g), 0, "a live holder keeps its cells");
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* The 260 it held, the 40 it gave into its cache, and what its last refill left
	 * there. */
	long back = unimem_grid_reclaim(g);
	cr_assert(back >= 300 && back <= 300 + (long)g->cap, "reclaim gave back %ld", back);
	cr_assert_eq(unimem_grid_available(g), 1000);
	cr_assert_eq(unimem_grid_reclaim(g), 0);
	/* A cell a dead holder was writing comes back with its bytes. */
	void **all = malloc(1000 * sizeof *all);
	int dirty = 0;
	for (int k = 0; k < 1000; k++) {
		cr_assert_not_null(all[k] = unimem_grid_take(g));
		dirty += ((unsigned char *)all[k])[0] == 0x77;
	}
	cr_assert_eq(dirty, 260);
	cr_assert_null(unimem_grid_take(g));
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0);
	free(all);
	close(fds[0]);
	close(fds[1]);
	unimem_grid_close(g);
}

/* Whether the kernel lets this process see if thread `pid` sleeps (/proc/PID/syscall needs
 * the right to trace it), and whether it does: 1 asleep, 0 not, -1 not ours to look at. */
static int asleep(pid_t pid)
{
	char path[64], buf[16];
	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	const bool got = fgets(buf, sizeof buf, f) != NULL;
	fclose(f);
	return !got ? -1 : strncmp(buf, "running", 7) != 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-6;
}

/* An RCU grace period, the fence a thief pays for owners that neither ack nor sleep (ms,
 * best of 3). */
static double grace_ms(void)
{
	double best = 1e9;
	for (int k = 0; k < 3; k++) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		cr_assert_eq(syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0), 0);
		const double ms = ms_since(&t0);
		best = ms < best ? ms : best;
	}
	return best;
}

/* A 256 B x 1000 Grid whose threads cache cells (else the test is skipped). */
static unimem_grid *open_1000_cached(void)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 256, 1000), 0);
	if (!g->cap) {
		unimem_grid_close(g);
		cr_skip_test("no per-thread caches here (membarrier refused or UNIMEM_GRID_NO_CACHE)");
	}
	return g;
}

/* The cache of a live process that sleeps comes back to another process's take that finds
 * the pool dry, and without a grace period: the kernel tells that the child's thread is
 * off its CPU (/proc/PID/task/TID/syscall). Where this process may not look (no right to
 * trace the child), the steal pays a grace period, and the time is only logged. */
Test(grid, a_sleeping_process_strands_no_cell_in_its_cache)
{
	unimem_grid *g = open_1000_cached();
	const double grace = grace_ms();
	int fds[2];
	pid_t pid = child_holding_260(g, fds);
	/* Asleep in pause(), not on its way there. */
	int sleeps = asleep(pid);
	for (int k = 0; k < 2000 && sleeps == 0; k++) {
		usleep(1000);
		sleeps = asleep(pid);
	}
	void **all = malloc(1000 * sizeof *all);
	size_t got = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < 1000 && (all[got] = unimem_grid_take(g)) != NULL)
		got++;
	const double ms = ms_since(&t0);
	cr_assert_eq(got, 740, "%zu cells came out, 740 are not held (the child caches at least 40)",
		     got);
	cr_assert_eq(unimem_grid_available(g), 0);
	for (size_t k = 0; k < got; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0);
	free(all);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_geq(unimem_grid_reclaim(g), 260);
	cr_assert_eq(unimem_grid_available(g), 1000);
	close(fds[0]);
	close(fds[1]);
	unimem_grid_close(g);
	cr_log_info("740 takes with one steal from another process that sleeps: %.3f ms (a grace "
		    "period: %.3f ms)", ms, grace);
	cr_assert_neq(sleeps, 0, "the child never slept");
	if (sleeps < 0)
		cr_log_info("this process may not look at the child's thread: the time tells nothing");
	else if (grace >= 4.0)
		cr_assert_lt(ms, 2.0, "740 takes robbing a sleeping process took %.3f ms", ms);
}

/* A child that attached to the Block `id` takes up to 8 or 9 cells and gives them back, over and
 * over until it is killed (its cache holds what its refills brought); it reports on fd once
 * it has a cache. */
static pid_t busy_child(uint32_t id, int fd)
{
	pid_t pid;
	unimem_grid *h = fork_attached(id, &pid);
	if (!h)
		return pid;
	void *c = unimem_grid_take(h);
	if (!c || unimem_grid_give(h, c))
		_exit(3);
	char ok = 1;
	if (write(fd, &ok, 1) != 1)
		_exit(5);
	for (int burst = 8;; burst ^= 1) {
		/* 8 and 9 in turn: a cache left with exactly one burst's cells still refills. */
		void *p[9];
		int n = 0;
		while (n < burst && (p[n] = unimem_grid_take(h)) != NULL) /* fewer while dry */
			n++;
		while (n)
			if (unimem_grid_give(h, p[--n]))
				_exit(4);
	}
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* A process whose thread keeps taking and giving gives up its cache to another process's
 * dry take at once: it acknowledges the thief's flag, and the thief pays no grace period
 * (which it still pays for one that runs but neither takes nor gives). Each round starts once the
 * child's cache holds cells; a round robbed it when the child's ack changed. The quickest
 * of those must take less than 1 ms more than the same takes with no one to rob, where a
 * grace period, timed here, takes 4 ms or more (without the acks every such round waited
 * one). */
Test(grid, a_busy_process_gives_up_its_cache_without_a_grace_period)
{
	unimem_grid *g = open_1000_cached();
	const double grace = grace_ms();
	/* The 1000 takes themselves, with no one to rob (the best of 3, refills included). */
	void **all = malloc(1000 * sizeof *all);
	double plain = 1e9;
	for (int k = 0; k < 3; k++) {
		struct timespec t0;
		size_t got = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (got < 1000 && (all[got] = unimem_grid_take(g)) != NULL)
			got++;
		double ms = ms_since(&t0);
		plain = ms < plain ? ms : plain;
		cr_assert_eq(got, 1000);
		for (size_t j = 0; j < got; j++)
			cr_assert_eq(unimem_grid_give(g, all[j]), 0);
	}
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = busy_child(unimem_block_id(unimem_grid_block(g)), fds[1]);
	char ok;
	cr_assert_eq(read(fds[0], &ok, 1), 1);
	const unimem_grid_pvt_slot *child = NULL;
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS && !child; t++) {
		const unimem_grid_pvt_slot *s = unimem_grid_pvt_slot_at(g, t);
		if (s->owner && s->owner != g->rec + 1u)
			child = s;
	}
	/* Sets of 20 rounds, up to 5, until one meets the bar: the child may lose its CPU
	 * for milliseconds to the other tests of a parallel run (it did, once in 23 runs
	 * of this file at -j2 under AddressSanitizer), and an owner that does not run
	 * cannot ack. Without the acks every set fails. */
	const double bar = plain + 1.0;
	double best = 1e9, robbed_ms[20];
	int rounds = 0, robbed = 0, sets = 0;
	size_t short_of = 0;
	for (; child && sets < 5 && !short_of && rounds == 20 * sets && (sets == 0 || best >= bar);
	     sets++) {
		if (sets)
			usleep(200000);
		best = 1e9;
		rounds = 20 * sets;
		robbed = 0;
		for (int round = 0; round < 20 && !short_of; round++) {
			struct timespec t0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			bool cached9 = false; /* its count moves: one load decides */
			while (!(cached9 = __atomic_load_n(&child->n, __ATOMIC_ACQUIRE) >= 9) &&
			       ms_since(&t0) < 2000)
				sched_yield();
			if (!cached9)
				break;
			const uint32_t ack0 = __atomic_load_n(&child->ack, __ATOMIC_ACQUIRE);
			size_t got = 0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			while (got < 1000 && (all[got] = unimem_grid_take(g)) != NULL)
				got++;
			double ms = ms_since(&t0);
			rounds++;
			/* The child acknowledged a new steal: this round robbed it. */
			if (__atomic_load_n(&child->ack, __ATOMIC_ACQUIRE) != ack0) {
				robbed_ms[robbed++] = ms;
				best = ms < best ? ms : best;
			}
			/* All but what the child caches (it may have refilled after a steal,
			 * while cells were in the pool), the 9 it may hold between takes and
			 * gives, and a refill it may be in the middle of (its cells are not in
			 * its count yet). */
			const size_t cached = __atomic_load_n(&child->n, __ATOMIC_ACQUIRE);
			const size_t floor_ = 1000 - 9 - g->cap / 2;
			short_of = got + cached >= floor_ ? 0 : floor_ - got - cached;
			for (size_t k = 0; k < got; k++)
				cr_assert_eq(unimem_grid_give(g, all[k]), 0);
		}
		if (grace < 4.0)
			break;
	}
	free(all);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	close(fds[0]);
	close(fds[1]);
	cr_assert_not_null(child, "the child's holder slot");
	cr_assert_eq(short_of, 0, "a round missed %zu cells (neither taken nor in the child's cache)",
		     short_of);
	cr_assert_eq(rounds % 20, 0, "the child's cache stayed empty before round %d", rounds % 20);
	cr_assert_geq(robbed, 5, "only %d of 20 rounds robbed the child", robbed);
	cr_assert_geq(unimem_grid_reclaim(g), 0);
	cr_assert_eq(unimem_grid_available(g), 1000);
	unimem_grid_close(g);
	qsort(robbed_ms, (size_t)robbed, sizeof *robbed_ms, cmp_double);
	cr_log_info("1000 takes robbing a busy process: %d rounds (set %d), best %.3f ms, median "
		    "%.3f ms; without robbing %.3f ms; a grace period %.3f ms", robbed, sets, best,
		    robbed_ms[robbed / 2], plain, grace);
	/* A round that waited for a grace period took 6.8 ms or more longer than the takes
	 * alone on this 2-core VM (7.9-16 ms periods); one that was acknowledged, 0.005-0.02
	 * ms (0.4-0.5 ms under ThreadSanitizer, where the takes alone take about as long). */
	if (grace >= 4.0)
		cr_assert_lt(best, bar, "no set of %d robbed the child in under %.3f ms (the last "
			     "set's quickest round: %.3f ms; the takes alone %.3f ms, a grace period "
			     "%.3f ms)", sets, bar, best, plain, grace);
	else
		cr_log_info("grace periods are short here (%.3f ms): the time tells nothing", grace);
}

/* A thief that dies half way through draining a cache leaves entries whose cells are back in
 * the pool and may be someone else's by now. The fast take pops a cell given into its cache
 * without looking at the cell's state, so reclaim marks that cache STALE and its owner drops
 * those entries before
 * it uses the cache again: no cell goes out twice. (Setting the dead thief's flag back to
 * 0 instead, the owner's next take returned the other holder's cell.) */
Test(grid, a_thief_that_died_mid_drain_hands_out_no_cell_twice)
{
	unimem_grid *g, *dead, *other;
	cr_assert_eq(unimem_grid_open(&g, 64, 256), 0);
	cr_assert_eq(g->cap, 16u);
	void *all[256];
	for (int k = 0; k < 256; k++)
		cr_assert_not_null(all[k] = unimem_grid_take(g));
	cr_assert_null(unimem_grid_take(g));
	for (int k = 0; k < 8; k++) /* into this thread's cache */
		cr_assert_eq(unimem_grid_give(g, all[255 - k]), 0);
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(g);
	cr_assert_not_null(e);
	unimem_grid_pvt_slot *s = e->slot;
	cr_assert_eq(s->n, 8u);
	/* The thief: an attachment whose process is gone (its start time is not this one's). */
	cr_assert_eq(unimem_grid_attach(&dead, block_of(g)), 0);
	dead->recs[dead->rec].ident ^= 1;
	/* It took the flag and drained the newest entry (state, then bit), then died. */
	const uint32_t c = unimem_grid_pvt_cache(s)[s->n - 1];
	cr_assert_eq(g->state[c], e->tag);
	s->steal = dead->rec + 1;
	g->state[c] = 0;
	g->bits[c / 64] |= (uint64_t)1 << (c % 64);
	/* A live holder takes that cell from the pool. */
	cr_assert_eq(unimem_grid_attach(&other, block_of(g)), 0);
	unsigned char *cell = unimem_grid_take(other);
	cr_assert_eq(cell, g->base + (size_t)c * 64, "the only free cell");
	cr_assert_eq(unimem_grid_reclaim(g), 0, "the thief held nothing");
	/* The owner's takes: its 7 other cached cells, never the other holder's. */
	void *got[8];
	int n = 0;
	while (n < 8 && (got[n] = unimem_grid_take(g)) != NULL) {
		cr_assert_neq(got[n], (void *)cell, "a cell handed out twice");
		n++;
	}
	cr_assert_eq(n, 7);
	cr_assert_eq(s->steal, 0u);
	cr_assert_eq(unimem_grid_give(other, cell), 0);
	for (int k = 0; k < n; k++)
		cr_assert_eq(unimem_grid_give(g, got[k]), 0);
	for (int k = 0; k < 248; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0);
	cr_assert_eq(unimem_grid_available(g), 256);
	unimem_grid_close(other);
	unimem_grid_close(dead);
	unimem_grid_close(g);
}

/* Cells all[0..count) were handed out once each (seen marks them): give them all back,
 * in turn through g and h (h may be g), check that the pool is whole, free both arrays. */
static void give_all_back(unimem_grid *g, unimem_grid *h, unsigned char **all, unsigned char *seen,
			  size_t count)
{
	for (size_t k = 0; k < count; k++)
		cr_assert_eq(unimem_grid_give(k % 2 ? g : h, all[k]), 0, "give %zu", k);
	cr_assert_eq(unimem_grid_available(g), count);
	free(all);
	free(seen);
}

/* A refill's cells keep the state the refill wrote (PRE: this slot, their place in the
 * cache) until they go out, and the take that hands one out stores nothing. A give of one
 * still at its place in the cache is refused, checked or not; one that went out is taken. */
Test(grid, a_refills_cell_is_given_back_once_it_is_out_and_never_before)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 64, 4096), 0);
	cr_assert_eq(g->cap, 256u);
	unsigned char *out = unimem_grid_take(g); /* the first refill: 128 cells */
	cr_assert_not_null(out);
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(g);
	cr_assert_not_null(e);
	unimem_grid_pvt_slot *s = e->slot;
	cr_assert_eq(s->n, 127u);
	cr_assert_eq(s->fresh, 127u);
	const uint32_t *cache = unimem_grid_pvt_cache(s);
	for (uint32_t k = 0; k < 127; k++)
		cr_assert_eq(g->state[cache[k]], e->pre | k, "place %u", k);
	const uint64_t o = unimem_grid_index(g, out);
	cr_assert_eq(g->state[o], e->pre | 127u, "the cell that went out: no store");
	for (uint32_t k = 0; k < 127; k += 9) {
		unsigned char *c = g->base + (size_t)cache[k] * 64;
		cr_assert_eq(unimem_grid_give(g, c), -EALREADY, "place %u, still cached", k);
		cr_assert_eq(unimem_grid_give_unchecked(g, c), -EALREADY, "place %u", k);
	}
	cr_assert_eq(s->n, 127u, "a refused give changes nothing");
	cr_assert_eq(unimem_grid_available(g), 4095u);
	/* Out, then given: back at the top of the cache, as a given cell. */
	cr_assert_eq(unimem_grid_give(g, out), 0);
	cr_assert_eq(unimem_grid_give(g, out), -EALREADY);
	cr_assert_eq(g->state[o], e->tag);
	/* Every cell once: the given one first (a plain pop), then the refill's. */
	unsigned char **all = calloc(4096, sizeof *all);
	unsigned char *seen = calloc(4096, 1);
	cr_assert(all && seen);
	for (int k = 0; k < 4096; k++) {
		cr_assert_not_null(all[k] = unimem_grid_take(g), "take %d", k);
		const uint64_t i = unimem_grid_index(g, all[k]);
		cr_assert_eq(seen[i]++, 0, "cell %zu twice", (size_t)i);
	}
	cr_assert_eq((void *)all[0], (void *)out);
	cr_assert_null(unimem_grid_take(g));
	give_all_back(g, g, all, seen, 4096);
	unimem_grid_close(g);
}

/* A thief that dies having drained the lower places of a refilled cache: the owner's slow
 * path keeps the rest, moved down, and each names its new place (otherwise its pop would
 * drop it and the cell would be lost: not in the pool, not in a cache, not out). */
Test(grid, a_dead_thief_mid_drain_of_a_refill_loses_no_cell)
{
	unimem_grid *g, *dead;
	cr_assert_eq(unimem_grid_open(&g, 64, 4096), 0);
	unsigned char *first = unimem_grid_take(g);
	cr_assert_not_null(first);
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(g);
	unimem_grid_pvt_slot *s = e->slot;
	cr_assert_eq(s->fresh, 127u);
	cr_assert_eq(unimem_grid_attach(&dead, block_of(g)), 0);
	dead->recs[dead->rec].ident ^= 1; /* its process is gone */
	/* It took the flag, drained places 0-9 (state, then bit), then died. */
	s->steal = dead->rec + 1;
	for (uint32_t k = 0; k < 10; k++) {
		const uint32_t c = unimem_grid_pvt_cache(s)[k];
		g->state[c] = 0;
		g->bits[c / 64] |= (uint64_t)1 << (c % 64);
	}
	cr_assert_eq(unimem_grid_reclaim(g), 0, "the thief held nothing");
	cr_assert_eq(s->steal, UNIMEM_GRID_PVT_STALE);
	unsigned char **all = calloc(4096, sizeof *all);
	unsigned char *seen = calloc(4096, 1);
	cr_assert(all && seen);
	all[0] = first;
	seen[unimem_grid_index(g, first)] = 1;
	for (int k = 1; k < 4096; k++) {
		cr_assert_not_null(all[k] = unimem_grid_take(g), "take %d: a cell was lost", k);
		const uint64_t i = unimem_grid_index(g, all[k]);
		cr_assert_eq(seen[i]++, 0, "cell %zu twice", (size_t)i);
		if (k == 1) {
			cr_assert_eq(s->steal, 0u);
			cr_assert_eq(s->n, 116u, "the 117 left, moved down, less this one");
			for (uint32_t p = 0; p < s->n; p++)
				cr_assert_eq(g->state[unimem_grid_pvt_cache(s)[p]], e->pre | p,
					     "place %u names itself", p);
		}
	}
	cr_assert_null(unimem_grid_take(g));
	give_all_back(g, g, all, seen, 4096);
	unimem_grid_close(dead);
	unimem_grid_close(g);
}

/* What the pool cannot see: another slot's give of a refill's cell that has not gone out
 * (to that give it looks taken). It is accepted and the cell moves to the giver's cache;
 * the cache it sat in drops it at its pop (its state names another cache now), so it is
 * still handed out once. docs/GRID.md says so. */
Test(grid, another_slots_give_of_a_cached_refill_cell_moves_it_once)
{
	unimem_grid *g, *h;
	cr_assert_eq(unimem_grid_open(&g, 64, 4096), 0);
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), 0); /* another slot, this thread */
	unsigned char *first = unimem_grid_take(g);
	cr_assert_not_null(first);
	unimem_grid_pvt_slot *s = umi_grid_entry(g)->slot;
	const uint32_t c = unimem_grid_pvt_cache(s)[s->n - 1]; /* the next to go out */
	cr_assert_eq(unimem_grid_give(h, g->base + (size_t)c * 64), 0);
	cr_assert_eq(unimem_grid_available(g), 4096u, "counted in both caches until g's pop");
	unsigned char **all = calloc(4096, sizeof *all);
	unsigned char *seen = calloc(4096, 1);
	cr_assert(all && seen);
	all[0] = first;
	seen[unimem_grid_index(g, first)] = 1;
	int k = 1;
	for (; k < 4096; k++) {
		all[k] = unimem_grid_take(k % 2 ? g : h);
		if (!all[k])
			all[k] = unimem_grid_take(k % 2 ? h : g);
		cr_assert_not_null(all[k], "take %d", k);
		const uint64_t i = unimem_grid_index(g, all[k]);
		cr_assert_eq(seen[i]++, 0, "cell %zu twice", (size_t)i);
	}
	cr_assert_null(unimem_grid_take(g));
	cr_assert_null(unimem_grid_take(h));
	give_all_back(g, h, all, seen, 4096);
	unimem_grid_close(h);
	unimem_grid_close(g);
}

/* A take that finds the pool empty reclaims by itself; a zombie (killed, not yet waited
 * for) already counts as dead. */
Test(grid, take_on_a_dry_pool_reclaims_dead_holders)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 64, 100), 0);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = holder_child(unimem_block_id(unimem_grid_block(g)), 100, 0, fds[1]);
	char ok;
	cr_assert_eq(read(fds[0], &ok, 1), 1);
	cr_assert_null(unimem_grid_take(g));
	kill(pid, SIGKILL);
	/* Wait until it is a zombie, without reaping it. */
	siginfo_t si;
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	void *c = unimem_grid_take(g);
	cr_assert_not_null(c, "a dry take reclaims the dead holder's cells");
	cr_assert_eq(unimem_grid_available(g), 99);
	cr_assert_eq(unimem_grid_give(g, c), 0);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	unimem_grid_close(g);
}

/* ---- peers that stop, or never let go ---- */

struct timed_call {
	long (*fn)(void *);
	void *arg;
	long ret;
	double took_ms;
};

static void *timed_main(void *arg)
{
	struct timed_call *c = arg;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	c->ret = c->fn(c->arg);
	c->took_ms = ms_since(&t0);
	return NULL;
}

/* Run fn(arg) on a thread of its own; whether it returned within limit_s (the child
 * `pid` is killed first when it did not, so that a failing test leaves no stopped
 * process behind). */
static bool returns_within(struct timed_call *c, double limit_s, pid_t pid)
{
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, timed_main, c), 0);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)limit_s;
	if (pthread_timedjoin_np(th, NULL, &until) == 0)
		return true;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return false;
}

/* A child attached to the Block of g that takes the steal flag of slot t with a token of
 * its own (as a thief does before it drains) or the Grid's reclaim lock (as a reclaim
 * does), then stops, as under a debugger or SIGSTOP: a peer that never lets go. */
static pid_t stopped_child(unimem_grid *g, uint32_t *word, bool token)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid;
	unimem_grid *x = fork_attached(unimem_block_id(unimem_grid_block(g)), &pid);
	if (x) {
		const uint32_t me = x->rec + 1, v = token ? me | 1u << UNIMEM_GRID_PVT_SEQ_SHIFT : me;
		uint32_t zero = 0;
		if (x->rec >= UNIMEM_GRID_PVT_RECS ||
		    !__atomic_compare_exchange_n(word, &zero, v, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_RELAXED))
			_exit(3);
		char ok = 1;
		if (write(fds[1], &ok, 1) != 1)
			_exit(5);
		raise(SIGSTOP);
		for (;;)
			pause();
	}
	char ok;
	cr_assert_eq(read(fds[0], &ok, 1), 1);
	close(fds[0]);
	close(fds[1]);
	int st;
	cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
	cr_assert(WIFSTOPPED(st));
	return pid;
}

static long close_grid(void *g)
{
	unimem_grid_close(g);
	return 0;
}

/* A thief in another process that took a slot's flag and stopped holds close up for about
 * a second, not forever: the slot's cached cells go back to the pool anyway (by compare-
 * and-swap, as the thief's drain would), the slot stays the closed handle's while the
 * thief lives, and a reclaim frees the slot and its record once the thief is dead. */
Test(grid, a_thief_that_never_lets_go_holds_close_up_for_a_second_at_most)
{
	unimem_grid *g = open_1000_cached(), *h;
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), 0);
	void *c[40];
	for (int k = 0; k < 40; k++)
		cr_assert_not_null(c[k] = unimem_grid_take(h));
	for (int k = 0; k < 40; k++)
		cr_assert_eq(unimem_grid_give(h, c[k]), 0);
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(h);
	cr_assert_not_null(e);
	unimem_grid_pvt_slot *s = e->slot;
	const uint32_t cached = s->n, rec = h->rec;
	cr_assert_geq(cached, 40u);
	cr_assert_eq(unimem_grid_available(g), 1000);
	pid_t pid = stopped_child(g, &s->steal, true);
	/* h's takes and gives still work, around its cache. */
	void *one = unimem_grid_take(h);
	cr_assert_not_null(one);
	cr_assert_eq(unimem_grid_give(h, one), 0);
	cr_assert_eq(s->n, cached);
	struct timed_call call = {close_grid, h, 0, 0};
	cr_assert(returns_within(&call, 10, pid), "close waited for the stopped thief for 10 s");
	cr_log_info("close with a stopped thief on its cache: %.0f ms", call.took_ms);
	cr_assert_lt(call.took_ms, 5000);
	/* Every cell is back, the slot is still the closed handle's, its record marked. */
	cr_assert_eq(s->n, 0u);
	cr_assert_eq(s->owner, rec + 1);
	cr_assert_eq(g->recs[rec].closed, 1u);
	cr_assert_eq(unimem_grid_available(g), 1000);
	cr_assert_eq(unimem_grid_reclaim(g), 0, "the thief is alive: nothing to reclaim yet");
	cr_assert_eq(s->owner, rec + 1);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(unimem_grid_reclaim(g), 0, "the slot's cells were back already");
	cr_assert_eq(s->owner, 0u, "the slot is free once the thief is dead");
	cr_assert_eq(g->recs[rec].ident, 0u, "and so is its record");
	cr_assert_eq(g->recs[rec].closed, 0u);
	void **all = malloc(1000 * sizeof *all);
	cr_assert_not_null(all);
	for (int k = 0; k < 1000; k++)
		cr_assert_not_null(all[k] = unimem_grid_take(g));
	cr_assert_null(unimem_grid_take(g));
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0, "cell %d", k);
	free(all);
	unimem_grid_close(g);
}

/* A thread of h that fills its cache, publishes its slot, and exits when told. */
struct exiting {
	unimem_grid *h;
	unimem_grid_pvt_slot *slot;
	int go[2], ready[2];
};

static void *exiting_main(void *arg)
{
	struct exiting *x = arg;
	void *c[40];
	for (int k = 0; k < 40; k++)
		if (!(c[k] = unimem_grid_take(x->h)))
			return NULL;
	for (int k = 0; k < 40; k++)
		unimem_grid_give(x->h, c[k]);
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(x->h);
	x->slot = e ? e->slot : NULL;
	char b = 1;
	if (write(x->ready[1], &b, 1) != 1 || read(x->go[0], &b, 1) != 1)
		return NULL;
	return NULL; /* the thread's exit gives its slot back */
}

static long join_thread(void *th)
{
	return pthread_join(*(pthread_t *)th, NULL);
}

/* The same at a thread's exit: a thread whose slot a stopped thief holds ends within about
 * a second, its cached cells back in the pool; the slot stays its handle's while the thief
 * lives, and the handle's close frees it once the thief is dead. */
Test(grid, a_thief_that_never_lets_go_holds_a_thread_exit_up_for_a_second_at_most)
{
	unimem_grid *g = open_1000_cached(), *h;
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), 0);
	struct exiting x = {.h = h};
	cr_assert_eq(pipe(x.go), 0);
	cr_assert_eq(pipe(x.ready), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, exiting_main, &x), 0);
	char b;
	cr_assert_eq(read(x.ready[0], &b, 1), 1);
	unimem_grid_pvt_slot *s = x.slot;
	cr_assert_not_null(s, "the thread got no cache");
	const uint32_t rec = h->rec;
	cr_assert_geq(s->n, 40u);
	cr_assert_eq(unimem_grid_available(g), 1000);
	pid_t pid = stopped_child(g, &s->steal, true);
	cr_assert_eq(write(x.go[1], &b, 1), 1);
	struct timed_call call = {join_thread, &th, 0, 0};
	cr_assert(returns_within(&call, 10, pid), "the thread's exit waited for the thief for 10 s");
	cr_log_info("thread exit with a stopped thief on its cache: %.0f ms", call.took_ms);
	cr_assert_lt(call.took_ms, 5000);
	cr_assert_eq(call.ret, 0);
	cr_assert_eq(s->n, 0u);
	cr_assert_eq(s->owner, rec + 1, "the slot stays the handle's while the thief lives");
	cr_assert_eq(unimem_grid_available(g), 1000);
	void **all = malloc(1000 * sizeof *all);
	cr_assert_not_null(all);
	for (int k = 0; k < 1000; k++)
		cr_assert_not_null(all[k] = unimem_grid_take(h), "cell %d", k);
	cr_assert_null(unimem_grid_take(h));
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(unimem_grid_give(h, all[k]), 0, "cell %d", k);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	unimem_grid_close(h);
	cr_assert_eq(s->owner, 0u, "the close frees the slot once the thief is dead");
	cr_assert_eq(g->recs[rec].ident, 0u);
	cr_assert_eq(unimem_grid_available(g), 1000);
	for (int k = 0; k < 1000; k++)
		cr_assert_not_null(all[k] = unimem_grid_take(g));
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0, "cell %d", k);
	free(all);
	close(x.go[0]);
	close(x.go[1]);
	close(x.ready[0]);
	close(x.ready[1]);
	unimem_grid_close(g);
}

static long reclaim_grid(void *g)
{
	return unimem_grid_reclaim(g);
}

static long take_grid(void *g)
{
	return unimem_grid_take(g) ? 1 : 0;
}

/* A peer that holds the reclaim lock and stops (mid-reclaim under a debugger, or a hostile
 * peer): reclaim gives -EBUSY after about a second, a dry take gives NULL after about 0.1 s
 * (it would reclaim a dead holder), neither hangs; once the peer is dead, its lock is
 * broken and reclaim works. */
Test(grid, a_stopped_reclaim_gives_ebusy_not_a_hang)
{
	unimem_grid *g, *dead;
	cr_assert_eq(unimem_grid_open(&g, 64, 100), 0);
	void *all[100];
	for (int k = 0; k < 100; k++)
		cr_assert_not_null(all[k] = unimem_grid_take(g));
	pid_t pid = stopped_child(g, &header_of(g)->reclaim_lock, false);
	/* An attachment whose process is gone, so that the dry take below reclaims. */
	cr_assert_eq(unimem_grid_attach(&dead, block_of(g)), 0);
	dead->recs[dead->rec].ident ^= 1;
	struct timed_call r = {reclaim_grid, g, 0, 0};
	cr_assert(returns_within(&r, 10, pid), "reclaim waited for the stopped peer for 10 s");
	cr_log_info("reclaim behind a stopped one: %ld after %.0f ms", r.ret, r.took_ms);
	cr_assert_eq(r.ret, -EBUSY);
	cr_assert(r.took_ms >= 500 && r.took_ms < 5000, "%.0f ms", r.took_ms);
	struct timed_call t = {take_grid, g, 0, 0};
	cr_assert(returns_within(&t, 10, pid), "a dry take waited for the stopped peer for 10 s");
	cr_log_info("dry take behind a stopped reclaim: %.0f ms", t.took_ms);
	cr_assert_eq(t.ret, 0);
	cr_assert_lt(t.took_ms, 2000);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(unimem_grid_reclaim(g), 0, "a dead peer's lock is broken");
	cr_assert_eq(header_of(g)->reclaim_lock, 0u);
	for (int k = 0; k < 100; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0);
	cr_assert_eq(unimem_grid_available(g), 100);
	unimem_grid_close(dead);
	unimem_grid_close(g);
}

/* A record whose pid is alive but whose start time differs is a reused pid: its holder is
 * dead, and its cells come back. One whose pid and start time match is alive. */
Test(grid, reclaim_is_not_fooled_by_a_reused_pid)
{
	unimem_grid *g, *h;
	cr_assert_eq(unimem_grid_open(&g, 64, 20), 0); /* no caches: exact counts */
	cr_assert_eq(unimem_grid_attach(&h, block_of(g)), 0);
	void *c = unimem_grid_take(h);
	cr_assert_not_null(c);
	cr_assert_eq(unimem_grid_reclaim(g), 0, "the other handle of this process is alive");
	/* Make h's record name this pid with another start time. */
	h->recs[h->rec].ident ^= 1;
	cr_assert_eq(unimem_grid_reclaim(g), 1);
	cr_assert_eq(unimem_grid_give(g, c), -EALREADY, "the reclaimed cell is in the pool");
	cr_assert_eq(unimem_grid_available(g), 20);
	unimem_grid_close(h);
	unimem_grid_close(g);
}

/* The children of fork use their parent's handle with records of their own: what a child
 * holds at its death comes back, what the parent holds stays. */
Test(grid, forked_children_hold_their_own)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 64, 4096), 0);
	void *kept = unimem_grid_take(g);
	for (int round = 0; round < 20; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (int k = 0; k < 100 + round; k++)
				if (!unimem_grid_take(g))
					_exit(3);
			_exit(0);
		}
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		/* What it took, and what its last refill left in its cache. */
		long back = unimem_grid_reclaim(g);
		cr_assert(back >= 100 + round && back <= 100 + round + (long)g->cap, "%ld", back);
		cr_assert_eq(unimem_grid_available(g), 4095, "round %d: %zu available after %ld came back",
			     round, unimem_grid_available(g), back);
	}
	cr_assert_eq(unimem_grid_give(g, kept), 0);
	unimem_grid_close(g);
}

/* A holder process that ends with exit() (its main thread's thread-specific destructors do
 * not run) leaves its main thread's cache to nobody: the cells go back at exit, and there
 * is nothing to reclaim. Cells it still held are its own (reclaim has those). */
Test(grid, exit_flushes_the_main_threads_cache)
{
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 64, 1000), 0);
	for (int held = 0; held <= 5; held += 5) {
		pid_t pid = fork();
		if (pid == 0) {
			unimem_block *b;
			unimem_grid *h;
			if (unimem_block_lookup(&b, unimem_block_id(unimem_grid_block(g))) ||
			    unimem_grid_attach(&h, b))
				_exit(2);
			void *c[100];
			for (int k = 0; k < 100; k++)
				if (!(c[k] = unimem_grid_take(h)))
					_exit(3);
			for (int k = held; k < 100; k++)
				if (unimem_grid_give(h, c[k]))
					_exit(4);
			if (unimem_grid_available(h) != 1000 - (size_t)held)
				_exit(5);
			exit(0); /* no close: atexit handlers run, thread destructors do not */
		}
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
		cr_assert_eq(unimem_grid_available(g), 1000 - (size_t)held,
			     "%zu available: the dead child's cache is not in the pool",
			     unimem_grid_available(g));
		cr_assert_eq(unimem_grid_reclaim(g), held, "only the cells it held come back");
		cr_assert_eq(unimem_grid_available(g), 1000);
	}
	unimem_grid_close(g);
}

/* The attachments of a Grid are bounded (64 at once): one more is -EUSERS; closing one
 * frees its record. */
Test(grid, attach_runs_out_of_attachments_with_eusers)
{
	unimem_grid *g, *h[UNIMEM_GRID_PVT_RECS];
	cr_assert_eq(unimem_grid_open(&g, 64, 10), 0);
	for (unsigned k = 0; k + 1 < UNIMEM_GRID_PVT_RECS; k++)
		cr_assert_eq(unimem_grid_attach(&h[k], block_of(g)), 0, "attach %u", k);
	unimem_grid *x = (unimem_grid *)&x;
	cr_assert_eq(unimem_grid_attach(&x, block_of(g)), -EUSERS);
	cr_assert_null(x);
	unimem_grid_close(h[0]);
	cr_assert_eq(unimem_grid_attach(&h[0], block_of(g)), 0);
	for (unsigned k = 0; k + 1 < UNIMEM_GRID_PVT_RECS; k++)
		unimem_grid_close(h[k]);
	unimem_grid_close(g);
}

#define UNCHECKED_GENERATED(N, CELL, COUNT)                                               \
	do {                                                                              \
		unimem_grid_##N *p;                                                       \
		cr_assert_eq(unimem_grid_##N##_open(&p), 0);                              \
		unsigned char *a = unimem_grid_##N##_take(p);                             \
		cr_assert_eq(unimem_grid_##N##_index(p, a), unimem_grid_index(unimem_grid_##N##_grid(p), a)); \
		cr_assert_eq(unimem_grid_##N##_index(p, a + 32), UINT64_MAX);             \
		cr_assert_eq(unimem_grid_##N##_index(p, NULL), UINT64_MAX);               \
		cr_assert_eq(unimem_grid_##N##_give_unchecked(p, a + 32), -EINVAL);       \
		cr_assert_eq(unimem_grid_##N##_give_unchecked(p, NULL), -EINVAL);         \
		cr_assert_eq(unimem_grid_##N##_give_unchecked(p, a), 0);                  \
		cr_assert_eq(unimem_grid_##N##_give_unchecked(p, a), -EALREADY);          \
		cr_assert_eq(unimem_grid_##N##_give(p, a), -EALREADY);                    \
		cr_assert_eq(unimem_grid_##N##_available(p), (size_t)(COUNT));            \
		unimem_grid_##N##_close(p);                                               \
	} while (0);

Test(grid, generated_give_unchecked_and_index)
{
	UNIMEM_GRID_FOREACH(UNCHECKED_GENERATED)
}

/* ---- the fence behind stealing ---- */

/* Function-call IPIs each CPU has taken (/proc/interrupts, line CAL: x86 Linux); false
 * when the line is not there. */
static bool call_ipis(long *per_cpu, int ncpu)
{
	FILE *f = fopen("/proc/interrupts", "r");
	if (!f)
		return false;
	static char line[1 << 16];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		char *p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, "CAL:", 4) != 0)
			continue;
		p += 4;
		found = true;
		for (int c = 0; c < ncpu && found; c++) {
			char *end;
			per_cpu[c] = strtol(p, &end, 10);
			found = end != p;
			p = end;
		}
	}
	fclose(f);
	return found;
}

struct fence_spinner {
	unimem_grid *g;
	int cpu;
	unsigned round, done; /* round: set by the test; done: the last round this one cached */
	bool stop;
};

static void *fence_spin(void *arg)
{
	struct fence_spinner *f = arg;
	pin_cpu(f->cpu);
	unsigned seen = 0;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		unsigned r = __atomic_load_n(&f->round, __ATOMIC_ACQUIRE);
		if (r == seen)
			continue; /* spin in user space: no system call, no barrier of its own */
		/* One take (a refill of half a cache) and its give: cells in this thread's cache. */
		void *c = unimem_grid_take(f->g);
		if (c)
			unimem_grid_give(f->g, c);
		seen = r;
		__atomic_store_n(&f->done, r, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* A thread that steals from idle caches first makes every owner either see its steal flag
 * or show that it is busy, with a fence on each CPU where an owner runs (an IPI). The
 * kernel's MEMBARRIER_CMD_GLOBAL_EXPEDITED skips a CPU where the process ran before it
 * registered and that switched to it from idle since: this test makes that case (the
 * process visits every CPU before its first Grid, which registers), puts a thread with
 * cached cells on every other CPU, and makes the pool run dry 60 times. A CPU takes an IPI
 * each time its spinner is on it (one preempted by other work needs none), so each must
 * take some; with GLOBAL_EXPEDITED a stale CPU took none, ever (this VM, and the 16-core
 * host, where the 8-thread stress handed cells out twice). On the host, with 8 test
 * programs in parallel, a spinner's CPU took 19 of 40. */
Test(grid, the_steal_fence_reaches_every_cpu_that_runs_an_owner)
{
	cpu_set_t all;
	cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
	int cpus[64], ncpu = 0, online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	for (int c = 0; c < CPU_SETSIZE && c < online && ncpu < 64; c++)
		if (CPU_ISSET(c, &all))
			cpus[ncpu++] = c;
	long before[1024], after[1024];
	if (ncpu < 2 || online > 1024)
		cr_skip_test("needs 2 or more CPUs (this process may use %d)", ncpu);
	if (!call_ipis(before, online))
		cr_skip_test("no function-call IPI count here (/proc/interrupts has no CAL line)");
	/* Run once on every CPU (the process's memory map stays there, lazily, as the CPU
	 * idles), then settle on the first, then open: the first Grid registers the process. */
	for (int k = ncpu - 1; k >= 0; k--) {
		cr_assert_eq(pin_cpu(cpus[k]), 0);
		for (volatile int spin = 0; spin < 200000; spin++)
			;
	}
	usleep(50000);
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, 64, 1024), 0);
	if (!g->cap) {
		unimem_grid_close(g);
		cr_skip_test("no per-thread caches here (membarrier refused or UNIMEM_GRID_NO_CACHE)");
	}
	enum { ROUNDS = 60 };
	const int n = ncpu - 1 < 15 ? ncpu - 1 : 15;
	struct fence_spinner sp[15];
	pthread_t th[15];
	for (int k = 0; k < n; k++) {
		sp[k] = (struct fence_spinner){.g = g, .cpu = cpus[k + 1]};
		cr_assert_eq(pthread_create(&th[k], NULL, fence_spin, &sp[k]), 0);
	}
	void **held = malloc(1024 * sizeof *held);
	cr_assert_not_null(held);
	long dry = 0;
	for (unsigned r = 1; r <= ROUNDS; r++) {
		for (int k = 0; k < n; k++)
			__atomic_store_n(&sp[k].round, r, __ATOMIC_RELEASE);
		for (int k = 0; k < n; k++)
			while (__atomic_load_n(&sp[k].done, __ATOMIC_ACQUIRE) != r)
				sched_yield();
		if (r == 1)
			cr_assert(call_ipis(before, online));
		/* Everything: the shared pool, then (dry) the spinners' caches. */
		size_t got = 0;
		while (got < 1024 && (held[got] = unimem_grid_take(g)) != NULL)
			got++;
		cr_assert_eq(got, 1024, "round %u: %zu of 1024 cells came out", r, got);
		cr_assert_null(unimem_grid_take(g));
		dry++;
		for (size_t k = 0; k < got; k++)
			cr_assert_eq(unimem_grid_give(g, held[k]), 0);
	}
	cr_assert(call_ipis(after, online));
	for (int k = 0; k < n; k++)
		__atomic_store_n(&sp[k].stop, true, __ATOMIC_RELEASE);
	for (int k = 0; k < n; k++)
		pthread_join(th[k], NULL);
	free(held);
	cr_assert_eq(unimem_grid_available(g), 1024u);
	unimem_grid_close(g);
	/* Counted from the first dry pool on (after the first caches filled). */
	for (int k = 0; k < n; k++) {
		const int c = cpus[k + 1];
		cr_expect_gt(after[c] - before[c], 0,
			      "CPU %d (a thread with cached cells spinning there) took %ld IPIs in %ld "
			      "dry pools", c, after[c] - before[c], dry);
	}
}
