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

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* LIFO per thread: the cell a thread gave last comes back first to it. (The guess slot
 * hangs on the stack address: take and give are called from one frame here.) */
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

/* Spread the racers over the CPUs, so that their gives really overlap. */
static void pin_to(int k)
{
	cpu_set_t all, one;
	if (sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) < 2)
		return;
	int n = k % CPU_COUNT(&all);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all) && n-- == 0) {
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			pthread_setaffinity_np(pthread_self(), sizeof one, &one);
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
