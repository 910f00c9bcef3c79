/* SPDX-License-Identifier: MIT */
/* Linked into the Criterion tests of ThreadSanitizer builds only (tests/meson.build).
 *
 * Criterion 2.4 runs each test in a child process that inherits an arena which the
 * sandbox (BoxFort, inside libcriterion) maps at an address it draws with rand_r():
 * 0x2000'0000'0000 + (r & 0x3fffff) * 16 MiB. Nearly all of that range is shadow or
 * reserved under ThreadSanitizer, so every draw fails and Criterion aborts with "Could not
 * initialize inheritable arena". This rand_r() steers the draws made from libcriterion into
 * the application range that TSan leaves between 0x5500'0000'0000 and 0x5680'0000'0000
 * (BoxFort still checks that the spot is free and draws again if not); every other caller
 * gets the C library's rand_r() unchanged. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BASE 0x200000000000ull
#define ARENA_STEP_SHIFT 24
#define TSAN_APP_LO 0x550000000000ull
#define TSAN_APP_HI 0x568000000000ull

int rand_r(unsigned *seed)
{
	static void *sym; /* the C library's rand_r */
	void *s = __atomic_load_n(&sym, __ATOMIC_ACQUIRE);
	if (!s) {
		s = dlsym(RTLD_NEXT, "rand_r");
		__atomic_store_n(&sym, s, __ATOMIC_RELEASE);
	}
	int (*libc_rand_r)(unsigned *);
	memcpy(&libc_rand_r, &s, sizeof s); /* POSIX: data and code pointers agree */
	Dl_info info;
	if (dladdr(__builtin_return_address(0), &info) && info.dli_fname &&
	    strstr(info.dli_fname, "libcriterion")) {
		unsigned lo = (unsigned)((TSAN_APP_LO - ARENA_BASE) >> ARENA_STEP_SHIFT);
		unsigned hi = (unsigned)((TSAN_APP_HI - ARENA_BASE) >> ARENA_STEP_SHIFT);
		return (int)(lo + (unsigned)libc_rand_r(seed) % (hi - lo));
	}
	return libc_rand_r(seed);
}
