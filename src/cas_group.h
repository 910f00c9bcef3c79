/* SPDX-License-Identifier: MIT */
/* Claiming the state words of up to four cells: where all four are free (the common case
 * of a refill from a quiet pool), one atomic instruction claims them together (on x86-64
 * with cmpxchg16b one lock cmpxchg16b; elsewhere, and under ThreadSanitizer, which does not
 * see inline assembly, two 8-byte compare-and-swaps); otherwise, and when that finds a word
 * that is not 0, one compare-and-swap per word, as a claim of a single cell does. A
 * failed group exchange is not retried as a group: under contention (another thread giving
 * a neighbouring cell) it fails again, one locked instruction each time (H200 host, a
 * version that retried: producer/consumer 48 -> 81 ns per cell with the checked give).
 * Several words claimed at one instant are what the same claims one by one would be, run
 * back to back with nothing in between: each was 0 then and names its claimer after. */
#ifndef UNIMEM_CAS_GROUP_H
#define UNIMEM_CAS_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define UMI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UMI_TSAN 1
#endif
#endif

#if defined(__x86_64__) && !defined(UMI_TSAN) && !defined(UMI_NO_CAS16) /* -DUMI_NO_CAS16: 8-byte pairs */
#define UMI_CAS16 1
#include <cpuid.h>
#endif

typedef uint64_t __attribute__((may_alias)) umi_u64_alias;

/* Lanes j (bit j of ask, j < 4) of st[0..4) that hold 0 become tag + m * step, m the
 * number of lanes claimed before (a refill's cells name their places in the cache), one
 * compare-and-swap each. Returns the lanes claimed. Acquire order on success. */
static inline unsigned umi_cas_each(uint32_t *st, unsigned ask, uint32_t tag, uint32_t step)
{
	unsigned got = 0;
	for (unsigned j = 0; j < 4; j++) {
		uint32_t zero = 0;
		if ((ask >> j & 1) && __atomic_compare_exchange_n(&st[j], &zero, tag, false,
								   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			got |= 1u << j;
			tag += step;
		}
	}
	return got;
}

#ifdef UMI_CAS16
static inline bool umi_has_cas16(void)
{
	static int known; /* 0 unknown, 1 yes, 2 no; a race only repeats the cpuid */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (__builtin_expect(!k, 0)) {
		unsigned a, b, c, d;
		k = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B) ? 1 : 2;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 1;
}

/* The 16 bytes at p (16-byte aligned): 0 becomes lo:hi, atomically. */
static inline bool umi_cas16_from_zero(void *p, uint64_t lo, uint64_t hi)
{
	struct { uint64_t q[2]; } *m = p;
	uint64_t a = 0, d = 0;
	bool ok;
	__asm__ __volatile__("lock cmpxchg16b %1"
			     : "=@ccz"(ok), "+m"(*m), "+a"(a), "+d"(d)
			     : "b"(lo), "c"(hi)
			     : "memory");
	return ok;
}
#endif

/* The four words at st (16-byte aligned), all asked for, to become tag, tag + step,
 * tag + 2 step, tag + 3 step: claimed together when all are 0, else one by one (then each
 * claimed word takes the next value). Returns the lanes claimed. */
static inline unsigned umi_cas_group4(uint32_t *st, uint32_t tag, uint32_t step)
{
#ifdef UMI_CAS16
	if (umi_has_cas16()) {
		union {
			uint32_t w[2];
			uint64_t q;
		} lo = { { tag, tag + step } }, hi = { { tag + 2 * step, tag + 3 * step } };
		return umi_cas16_from_zero(st, lo.q, hi.q) ? 15u : umi_cas_each(st, 15u, tag, step);
	}
#endif
	unsigned got = 0;
	for (unsigned h = 0; h < 2; h++) {
		union {
			uint32_t w[2];
			uint64_t q;
		} two = { { tag, tag + step } };
		uint64_t zero = 0;
		if (__atomic_compare_exchange_n((umi_u64_alias *)(void *)(st + 2 * h), &zero, two.q,
						false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			got |= 3u << (2 * h);
			tag += 2 * step;
		} else {
			const unsigned won = umi_cas_each(st, 3u << (2 * h), tag, step);
			got |= won;
			tag += (uint32_t)__builtin_popcount(won) * step;
		}
	}
	return got;
}

#endif
