/* SPDX-License-Identifier: MIT */
/* `unimem bench`: a single-producer single-consumer ring of pointers, the channel of the
 * Grid's producer/consumer pattern (the same one for every contender, so that it costs
 * them all the same). NULL is the producer's "stopped" mark. */
#ifndef UNIMEM_TOOLS_SPSC_H
#define UNIMEM_TOOLS_SPSC_H

#include <stdint.h>

#define SPSC_SLOTS 256u /* a power of two */

struct umb_spsc {
	_Alignas(64) uint64_t head; /* next to pop (the consumer's) */
	uint64_t tail_seen;         /* the consumer's copy of tail */
	_Alignas(64) uint64_t tail; /* next to push (the producer's) */
	uint64_t head_seen;         /* the producer's copy of head */
	_Alignas(64) void *slot[SPSC_SLOTS];
};

static inline void umb_spsc_reset(struct umb_spsc *q)
{
	q->head = q->tail_seen = q->tail = q->head_seen = 0;
}

static inline void umb_spsc_push(struct umb_spsc *q, void *p)
{
	uint64_t t = q->tail;
	while (t - q->head_seen >= SPSC_SLOTS) {
		q->head_seen = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
		if (t - q->head_seen >= SPSC_SLOTS)
			__builtin_ia32_pause();
	}
	q->slot[t & (SPSC_SLOTS - 1)] = p;
	__atomic_store_n(&q->tail, t + 1, __ATOMIC_RELEASE);
}

static inline void *umb_spsc_pop(struct umb_spsc *q)
{
	uint64_t h = q->head;
	while (h == q->tail_seen) {
		q->tail_seen = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
		if (h == q->tail_seen)
			__builtin_ia32_pause();
	}
	void *p = q->slot[h & (SPSC_SLOTS - 1)];
	__atomic_store_n(&q->head, h + 1, __ATOMIC_RELEASE);
	return p;
}

#endif
