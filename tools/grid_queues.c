/* SPDX-License-Identifier: MIT */
/* Queue rivals of the Grid groups: a pool is a queue of free cell pointers, take pops and
 * give pushes. crossbeam's ArrayQueue algorithm (rewritten in C from its description), and
 * Concurrency Kit's ck_ring in MPMC mode where libck-dev is installed (header-only use).
 * Neither checks a give: a foreign or double give corrupts them silently. */
#define _GNU_SOURCE
#include <unimem/common.h>

#include "grid_candidates.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *cells_new(size_t cell, size_t count)
{
	unsigned char *p = aligned_alloc(64, cell * count);
	if (p)
		memset(p, 0, cell * count);
	return p;
}

/* ---- crossbeam ArrayQueue ------------------------------------------------------------ */

/* A stamp per slot holds a lap and an index; before reporting empty or full, check that
 * the other end is a whole lap behind, else a slow thread is mid-operation: back off
 * (spin 2^k pauses up to 2^6, then yield: crossbeam's Backoff) and retry. */
struct cb_slot {
	uint64_t stamp;
	void *val;
};

struct cb_queue {
	_Alignas(64) uint64_t head;
	_Alignas(64) uint64_t tail;
	_Alignas(64) struct cb_slot *buf;
	uint64_t cap, one_lap;
	unsigned char *mem;
};

static inline void cb_backoff(unsigned *step, bool may_yield)
{
	if (*step <= 6 || !may_yield) {
		for (unsigned i = 0; i < 1u << (*step < 6 ? *step : 6); i++)
			__builtin_ia32_pause();
	} else {
		sched_yield();
	}
	if (*step <= 10)
		++*step;
}

static inline bool cb_push(struct cb_queue *q, void *v)
{
	unsigned step = 0;
	uint64_t tail = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t index = tail & (q->one_lap - 1), lap = tail & ~(q->one_lap - 1);
		uint64_t next = index + 1 < q->cap ? tail + 1 : lap + q->one_lap;
		struct cb_slot *s = &q->buf[index];
		uint64_t stamp = __atomic_load_n(&s->stamp, __ATOMIC_ACQUIRE);
		if (tail == stamp) {
			if (__atomic_compare_exchange_n(&q->tail, &tail, next, true, __ATOMIC_SEQ_CST,
							__ATOMIC_RELAXED)) {
				s->val = v;
				__atomic_store_n(&s->stamp, tail + 1, __ATOMIC_RELEASE);
				return true;
			}
			cb_backoff(&step, false);
		} else if (stamp + q->one_lap == tail + 1) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&q->head, __ATOMIC_RELAXED) + q->one_lap == tail)
				return false; /* full */
			cb_backoff(&step, false);
			tail = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
		} else {
			cb_backoff(&step, true);
			tail = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
		}
	}
}

static inline void *cb_pop(struct cb_queue *q)
{
	unsigned step = 0;
	uint64_t head = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t index = head & (q->one_lap - 1), lap = head & ~(q->one_lap - 1);
		struct cb_slot *s = &q->buf[index];
		uint64_t stamp = __atomic_load_n(&s->stamp, __ATOMIC_ACQUIRE);
		if (head + 1 == stamp) {
			uint64_t next = index + 1 < q->cap ? head + 1 : lap + q->one_lap;
			if (__atomic_compare_exchange_n(&q->head, &head, next, true, __ATOMIC_SEQ_CST,
							__ATOMIC_RELAXED)) {
				void *v = s->val;
				__atomic_store_n(&s->stamp, head + q->one_lap, __ATOMIC_RELEASE);
				return v;
			}
			cb_backoff(&step, false);
		} else if (stamp == head) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&q->tail, __ATOMIC_RELAXED) == head)
				return NULL; /* empty */
			cb_backoff(&step, false);
			head = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
		} else {
			cb_backoff(&step, true);
			head = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
		}
	}
}

static void cb_close(void *pool)
{
	struct cb_queue *q = pool;
	if (!q)
		return;
	free(q->buf);
	free(q->mem);
	free(q);
}

static int cb_open(void **pool, size_t cell, size_t count)
{
	struct cb_queue *q = aligned_alloc(64, sizeof *q);
	*pool = NULL;
	if (!q)
		return -ENOMEM;
	memset(q, 0, sizeof *q);
	q->cap = count;
	q->one_lap = 1;
	while (q->one_lap <= q->cap)
		q->one_lap <<= 1;
	q->buf = calloc(count, sizeof *q->buf);
	q->mem = cells_new(cell, count);
	if (!q->buf || !q->mem) {
		cb_close(q);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < count; i++)
		q->buf[i].stamp = i;
	for (size_t i = 0; i < count; i++)
		cb_push(q, q->mem + i * cell);
	*pool = q;
	return 0;
}

static inline void *cb_take(struct cb_queue *q)
{
	return cb_pop(q);
}

static inline int cb_give(struct cb_queue *q, void *p)
{
	return cb_push(q, p) ? 0 : -1;
}

GRID_CANDIDATE_LOOPS(cb, struct cb_queue, cb_take, cb_give)

const struct grid_candidate grid_crossbeam = {
	.name = "crossbeam ArrayQueue (its algorithm in C)", .opened_by = "aligned_alloc",
	.open = cb_open, .close = cb_close, GRID_CANDIDATE_FNS(cb), .shared = true,
};

/* ---- ck_ring, MPMC ----------------------------------------------------------------- */

#ifdef UMB_HAVE_CK
#include <ck_ring.h>

struct ckr {
	ck_ring_t ring;
	ck_ring_buffer_t *buf;
	unsigned char *mem;
};

static void ckr_close(void *pool)
{
	struct ckr *r = pool;
	if (!r)
		return;
	free(r->buf);
	free(r->mem);
	free(r);
}

static int ckr_open(void **pool, size_t cell, size_t count)
{
	struct ckr *r = aligned_alloc(64, (sizeof(struct ckr) + 63) & ~(size_t)63);
	*pool = NULL;
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof *r);
	unsigned size = 2; /* a power of two; the ring holds size - 1 */
	while (size < count + 1)
		size <<= 1;
	r->buf = calloc(size, sizeof *r->buf);
	r->mem = cells_new(cell, count);
	if (!r->buf || !r->mem) {
		ckr_close(r);
		return -ENOMEM;
	}
	ck_ring_init(&r->ring, size);
	for (size_t i = 0; i < count; i++)
		ck_ring_enqueue_mpmc(&r->ring, r->buf, r->mem + i * cell);
	*pool = r;
	return 0;
}

static inline void *ckr_take(struct ckr *r)
{
	void *p;
	return ck_ring_dequeue_mpmc(&r->ring, r->buf, &p) ? p : NULL;
}

static inline int ckr_give(struct ckr *r, void *p)
{
	return ck_ring_enqueue_mpmc(&r->ring, r->buf, p) ? 0 : -1;
}

GRID_CANDIDATE_LOOPS(ckr, struct ckr, ckr_take, ckr_give)

static const char *ckr_absent(void)
{
#ifdef UMB_SANITIZED
	return "not in a sanitizer build (its dequeue reads a slot before the CAS that "
	       "validates it: a race by design)";
#else
	return NULL;
#endif
}

const struct grid_candidate grid_ck_ring = {
	.name = "ck_ring MPMC (Concurrency Kit)", .opened_by = "aligned_alloc",
	.open = ckr_open, .close = ckr_close, .absent = ckr_absent, GRID_CANDIDATE_FNS(ckr),
	.shared = true,
};
#endif
