/* SPDX-License-Identifier: MIT */
/* One atomic instruction for a group of four 32-bit words: claim every word of a group that
 * holds 0 and is asked for, writing a tag in it. On x86-64 with cmpxchg16b the group is the
 * four words (one lock cmpxchg16b); elsewhere, and under ThreadSanitizer (which does not see
 * inline assembly), it is two pairs (one 8-byte compare-and-swap each). A claim of several
 * words is then what the same claims one by one would be, run back to back with nothing in
 * between: each word claimed was 0 at that instant and no other word of the group changed. */
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

#if defined(__x86_64__) && !defined(UMI_TSAN)
#define UMI_CAS16 1
#include <cpuid.h>
#endif

typedef union umi_group {
	uint64_t q[2];
	uint32_t w[4];
} umi_group;

typedef uint64_t __attribute__((may_alias)) umi_u64_alias;

/* Desired value of a group: the asked-for lanes that are 0 become tag. */
static inline unsigned umi_group_want(const umi_group *cur, umi_group *next, unsigned ask,
				      unsigned lanes, uint32_t tag)
{
	unsigned got = 0;
	*next = *cur;
	for (unsigned j = 0; j < lanes; j++)
		if ((ask >> j & 1) && cur->w[j] == 0) {
			next->w[j] = tag;
			got |= 1u << j;
		}
	return got;
}

/* Lanes j (bit j of ask, j < n) of st[0..n) that hold 0 become tag, atomically, with n = 2
 * (8-byte aligned) or 4 (16-byte aligned); a few retries when another lane of the group
 * changed under us. Returns the lanes claimed. Acquire order on success. */
static inline unsigned umi_cas_pair(uint32_t *st, unsigned ask, uint32_t tag)
{
	umi_u64_alias *p = (umi_u64_alias *)(void *)st;
	umi_group cur, next;
	cur.q[0] = __atomic_load_n(p, __ATOMIC_RELAXED);
	for (int tries = 0; tries < 8; tries++) {
		const unsigned got = umi_group_want(&cur, &next, ask, 2, tag);
		if (!got)
			return 0;
		if (__atomic_compare_exchange_n(p, &cur.q[0], next.q[0], false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return got;
	}
	return 0;
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

static inline bool umi_cas16(void *p, umi_group *expect, const umi_group *next)
{
	bool ok;
	__asm__ __volatile__("lock cmpxchg16b %1"
			     : "=@ccz"(ok), "+m"(*(volatile umi_group *)p), "+a"(expect->q[0]),
			       "+d"(expect->q[1])
			     : "b"(next->q[0]), "c"(next->q[1])
			     : "memory");
	return ok;
}
#endif

/* The group of four words at st (16-byte aligned): claim the asked-for lanes that are 0. */
static inline unsigned umi_cas_group(uint32_t *st, unsigned ask, uint32_t tag)
{
#ifdef UMI_CAS16
	if (umi_has_cas16()) {
		umi_group cur, next;
		/* A torn read only makes the first exchange fail and return the true value. */
		cur.q[0] = __atomic_load_n((umi_u64_alias *)(void *)st, __ATOMIC_RELAXED);
		cur.q[1] = __atomic_load_n((umi_u64_alias *)(void *)(st + 2), __ATOMIC_RELAXED);
		for (int tries = 0; tries < 8; tries++) {
			const unsigned got = umi_group_want(&cur, &next, ask, 4, tag);
			if (!got)
				return 0;
			if (umi_cas16(st, &cur, &next))
				return got;
		}
		return 0;
	}
#endif
	unsigned got = 0;
	if (ask & 3u)
		got |= umi_cas_pair(st, ask & 3u, tag);
	if (ask & 12u)
		got |= umi_cas_pair(st + 2, ask >> 2 & 3u, tag) << 2;
	return got;
}

/* Every lane of the group at st asked: a group that is all free (the common case) is
 * claimed with no load first; any other goes through umi_cas_group. */
static inline unsigned umi_cas_group4(uint32_t *st, uint32_t tag)
{
	umi_group zero = { { 0, 0 } }, all;
	all.w[0] = all.w[1] = all.w[2] = all.w[3] = tag;
#ifdef UMI_CAS16
	if (umi_has_cas16())
		return umi_cas16(st, &zero, &all) ? 15u : umi_cas_group(st, 15u, tag);
#endif
	unsigned got = 0;
	for (unsigned h = 0; h < 2; h++) {
		uint64_t z = 0;
		if (__atomic_compare_exchange_n((umi_u64_alias *)(void *)(st + 2 * h), &z, all.q[h],
						false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			got |= 3u << (2 * h);
		else
			got |= umi_cas_pair(st + 2 * h, 3u, tag) << (2 * h);
	}
	(void)zero;
	return got;
}

#endif
