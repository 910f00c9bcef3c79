/* SPDX-License-Identifier: MIT */
/* The contenders of `unimem bench`'s Grid groups: fixed-size cell pools, each measured in
 * the patterns of bench_grid.c (a burst of BATCH takes then BATCH gives; take+give pairs
 * on 1, 2 and every thread; a producer thread taking and a consumer thread giving).
 *
 * Adding a rival is adding an entry: a file that defines one `struct grid_candidate`
 * (GRID_CANDIDATE_LOOPS builds its timed loops from inline take and give functions, so that
 * no call through a pointer is timed), its name in grid_candidates[] (grid_candidates.c),
 * and the file in tools/meson.build (behind the dependency it needs, if any). Rivals whose
 * library the installed command must not depend on (DPDK) live in a plugin that the
 * command loads when it is there (grid_plugin.c). */
#ifndef UNIMEM_TOOLS_GRID_CANDIDATES_H
#define UNIMEM_TOOLS_GRID_CANDIDATES_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"
#include "spsc.h"

/* A sanitizer build (ASan, TSan: UMB_SANITIZED; TSan alone: UMB_TSAN): the rivals that
 * cannot run under it say so instead (ck_ring reads a slot before its CAS validates it, by
 * design, which TSan reports; DPDK's EAL, not instrumented, crashes LeakSanitizer's exit
 * scan; bench_grid_procs.c cannot fork under TSan). */
#if defined(__SANITIZE_THREAD__)
#define UMB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UMB_TSAN 1
#endif
#endif
#if defined(UMB_TSAN) || defined(__SANITIZE_ADDRESS__)
#define UMB_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UMB_SANITIZED 1
#endif
#endif

#define GRID_PLUGIN_ABI 1 /* struct grid_candidate's layout, for the plugins */

struct grid_candidate {
	const char *name;        /* the row's name */
	const char *opened_by;   /* what open calls, for the note when it fails */
	/* A pool of `cells` free cells of `cell` bytes (a multiple of 64) in *pool: 0 or a
	 * negative errno (the row is then skipped, saying why). */
	int (*open)(void **pool, size_t cell, size_t cells);
	void (*close)(void *pool);
	/* Why the row cannot run in this build or on this machine, or NULL (optional). */
	const char *(*absent)(void);
	/* `batches` times: BATCH takes into ptr[0..BATCH), then their BATCH gives. */
	bool (*burst)(void *pool, void **ptr, long batches);
	/* n take+give pairs. */
	bool (*pairs)(void *pool, long n);
	/* n takes pushed on q / n pops of q given back; NULL pushed once a take failed. */
	bool (*produce)(void *pool, struct umb_spsc *q, long n);
	bool (*consume)(void *pool, struct umb_spsc *q, long n);
	/* Take and give may run on several threads at once on one pool. */
	bool shared;
};

/* NULL-terminated, the base row (the generated Grid) first. */
extern const struct grid_candidate *const grid_candidates[];

/* The malloc rows take their names from allocs[]: call once the command has loaded them. */
void grid_candidates_name_heaps(void);

/* The rivals of the plugins found (grid_plugin.c): a NULL-terminated list, maybe empty;
 * *why says what was not found. */
const struct grid_candidate *const *grid_plugin_candidates(const char **why);

/* The loops of one contender, over inline void *take(type *pool) and
 * int give(type *pool, void *cell) (0: given back): prefix##_burst, _pairs, _produce and
 * _consume; GRID_CANDIDATE_FNS(prefix) names them in a struct grid_candidate. A take that
 * finds nothing fails the run (pools are sized so that it never has to). */
#define GRID_CANDIDATE_LOOPS(prefix, type, take, give)                                    \
	static __attribute__((noinline)) bool prefix##_burst(void *pool_, void **ptr,       \
							     long batches)                  \
	{                                                                                 \
		type *pool = pool_;                                                       \
		int err = 0;                                                              \
		bool found = true;                                                        \
		for (long k = 0; k < batches; k++) {                                      \
			for (int i = 0; i < BATCH; i++) {                                 \
				void *p = take(pool);                                     \
				UMB_OPAQUE(p);                                            \
				found &= p != NULL;                                       \
				ptr[i] = p;                                               \
			}                                                                 \
			UMB_CLOBBER();                                                    \
			if (!found)                                                       \
				return false;                                             \
			for (int i = 0; i < BATCH; i++)                                   \
				err |= give(pool, ptr[i]);                                \
			UMB_CLOBBER();                                                    \
		}                                                                         \
		return err == 0;                                                          \
	}                                                                                 \
	static __attribute__((noinline)) bool prefix##_pairs(void *pool_, long n)          \
	{                                                                                 \
		type *pool = pool_;                                                       \
		int err = 0;                                                              \
		for (long k = 0; k < n; k++) {                                            \
			void *p = take(pool);                                             \
			UMB_OPAQUE(p);                                                    \
			if (__builtin_expect(p == NULL, 0))                               \
				return false;                                             \
			err |= give(pool, p);                                             \
		}                                                                         \
		return err == 0;                                                          \
	}                                                                                 \
	static __attribute__((noinline)) bool prefix##_produce(void *pool_,                \
							       struct umb_spsc *q, long n)  \
	{                                                                                 \
		type *pool = pool_;                                                       \
		for (long k = 0; k < n; k++) {                                            \
			void *p = take(pool);                                             \
			UMB_OPAQUE(p);                                                    \
			umb_spsc_push(q, p);                                              \
			if (__builtin_expect(p == NULL, 0))                               \
				return false;                                             \
		}                                                                         \
		return true;                                                              \
	}                                                                                 \
	static __attribute__((noinline)) bool prefix##_consume(void *pool_,                \
							       struct umb_spsc *q, long n)  \
	{                                                                                 \
		type *pool = pool_;                                                       \
		int err = 0;                                                              \
		for (long k = 0; k < n; k++) {                                            \
			void *p = umb_spsc_pop(q);                                        \
			if (__builtin_expect(p == NULL, 0))                               \
				return false;                                             \
			err |= give(pool, p);                                             \
		}                                                                         \
		return err == 0;                                                          \
	}

#define GRID_CANDIDATE_FNS(prefix)                                                        \
	.burst = prefix##_burst, .pairs = prefix##_pairs, .produce = prefix##_produce,    \
	.consume = prefix##_consume

#endif
