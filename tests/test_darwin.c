/* SPDX-License-Identifier: MIT */
/* The macOS Block backend (src/block.c over src/os/darwin/), run on Linux against the fake
 * IOSurface and CoreFoundation of fake_iosurface.c. The executable does not link libunimem:
 * it is block.c and os/darwin/iosurface.c (compiled with calloc/free renamed to the fake's
 * counting ones), errors.c, gpu_none.c, the fake, and this file. Error codes are macOS's
 * (DARWIN_E*). */
#include <criterion/criterion.h>

#include <string.h>

#include <unimem/unimem.h>

#include "fake_iosurface.h"

#define PAGE ((size_t)16 << 10)

size_t umi_os_page_size(void); /* src/os/os.h */

TestSuite(darwin, .init = fake_reset);

/* Nothing alive but what the fake holds itself, nothing misused. */
static void assert_clean(void)
{
	cr_assert_eq(fake.live_callocs, 0, "unimem_block structs leaked: %d", fake.live_callocs);
	cr_assert_eq(fake.live_numbers, 0, "CFNumbers leaked: %d", fake.live_numbers);
	cr_assert_eq(fake.live_dicts, 0, "CFDictionaries leaked: %d", fake.live_dicts);
	cr_assert_eq(fake.live_surfaces, 0, "IOSurfaceRefs leaked: %d", fake.live_surfaces);
	cr_assert_eq(fake.live_buffers, 0, "IOSurface memory leaked: %d", fake.live_buffers);
	cr_assert_eq(fake.locks_held, 0, "locks left held: %d", fake.locks_held);
	cr_assert_eq(fake.violations, 0, "misuse: %s", fake.last_violation);
}

Test(darwin, open_creates_locks_and_close_unlocks_then_releases)
{
	unimem_block *b = NULL;
	cr_assert_eq(unimem_block_open(&b, 1, 0), 0);
	cr_assert_not_null(b);

	/* One IOSurfaceCreate, from a dictionary of exactly kIOSurfaceAllocSize -> 64-bit
	 * CFNumber, with retaining callbacks; the number and the dictionary are gone. */
	cr_assert_eq(fake_count(FAKE_SURFACE_CREATE), 1);
	cr_assert_eq(fake.dict_count, 1);
	cr_assert_eq(fake.dict_key, (const void *)kIOSurfaceAllocSize);
	cr_assert_eq(fake.number_type, (CFNumberType)kCFNumberSInt64Type);
	cr_assert_eq(fake.number_value, (int64_t)PAGE);
	cr_assert_eq(fake.dict_key_callbacks, (const void *)&kCFTypeDictionaryKeyCallBacks);
	cr_assert_eq(fake.dict_value_callbacks, (const void *)&kCFTypeDictionaryValueCallBacks);
	cr_assert_eq(fake.live_numbers, 0);
	cr_assert_eq(fake.live_dicts, 0);

	/* Locked once, at open, read-write (options 0). */
	void *s = unimem_block_handle(b);
	cr_assert_not_null(s);
	cr_assert_eq(fake_count(FAKE_LOCK), 1);
	size_t lock = fake_find(FAKE_LOCK, s, 0);
	cr_assert_neq(lock, (size_t)-1);
	cr_assert_eq(fake.calls[lock].arg, 0);
	cr_assert_gt(lock, fake_find(FAKE_SURFACE_CREATE, s, 0));
	cr_assert_eq(fake.locks_held, 1);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 0);

	cr_assert(unimem_block_pinned(b));
	cr_assert_eq(unimem_block_size(b), PAGE);
	cr_assert_eq(unimem_block_page_size(b), PAGE);
	cr_assert_eq(unimem_block_fd(b), -1);
	cr_assert_neq(unimem_block_id(b), 0);
	cr_assert_eq(unimem_block_id(b), IOSurfaceGetID(s));
	cr_assert_eq(unimem_block_ptr(b), IOSurfaceGetBaseAddress(s));
	cr_assert_eq((uintptr_t)unimem_block_ptr(b) % PAGE, 0);

	size_t before = fake.ncalls;
	unimem_block_close(b);
	/* Unlock (same options), then release the surface, then free the struct. */
	size_t unlock = fake_find(FAKE_UNLOCK, s, before);
	size_t release = fake_find(FAKE_RELEASE, s, before);
	size_t freed = fake_find(FAKE_FREE, b, before);
	cr_assert_neq(unlock, (size_t)-1);
	cr_assert_eq(fake.calls[unlock].arg, 0);
	cr_assert_neq(release, (size_t)-1);
	cr_assert_neq(freed, (size_t)-1);
	cr_assert_lt(unlock, release);
	cr_assert_lt(release, freed);
	cr_assert_eq(fake_count(FAKE_LOCK), 1);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 1);
	assert_clean();
}

Test(darwin, sizes_round_up_to_16k)
{
	static const struct {
		size_t asked, got;
	} cases[] = {
		{ 1, PAGE },
		{ 4096, PAGE },
		{ PAGE - 1, PAGE },
		{ PAGE, PAGE },
		{ PAGE + 1, 2 * PAGE },
		{ 100000, 7 * PAGE },
		{ (size_t)3 << 20, (size_t)3 << 20 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unimem_block *b;
		cr_assert_eq(unimem_block_open(&b, cases[i].asked, 0), 0);
		cr_assert_eq(fake.number_value, (int64_t)cases[i].got, "asked %zu", cases[i].asked);
		cr_assert_eq(unimem_block_size(b), cases[i].got, "asked %zu", cases[i].asked);
		unimem_block_close(b);
	}
	cr_assert_eq(umi_os_page_size(), PAGE);
	assert_clean();
}

Test(darwin, size_comes_from_the_surface_rounded_down_to_pages)
{
	unimem_block *b;
	fake.alloc_extra = 5000; /* IOSurface gave a little more: not a whole page */
	cr_assert_eq(unimem_block_open(&b, 2 * PAGE, 0), 0);
	cr_assert_eq(unimem_block_size(b), 2 * PAGE);
	unimem_block_close(b);

	fake.alloc_extra = PAGE; /* a whole page more: usable */
	cr_assert_eq(unimem_block_open(&b, 2 * PAGE, 0), 0);
	cr_assert_eq(unimem_block_size(b), 3 * PAGE);
	unimem_block_close(b);
	assert_clean();
}

Test(darwin, memory_is_zeroed_writable_and_whole)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 3 * PAGE, 0), 0);
	unsigned char *p = unimem_block_ptr(b);
	size_t n = unimem_block_size(b);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(p[i], 0, "byte %zu", i);
	memset(p, 0xa5, n);
	cr_assert_eq(p[n - 1], 0xa5);
	unimem_block_close(b);
	assert_clean();
}

Test(darwin, unpinned_never_locks)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, PAGE, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(b));
	cr_assert_not_null(unimem_block_ptr(b));
	cr_assert_eq(fake_count(FAKE_LOCK), 0);
	void *s = unimem_block_handle(b);
	unimem_block_close(b);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 0);
	cr_assert_neq(fake_find(FAKE_RELEASE, s, 0), (size_t)-1);
	assert_clean();
}

Test(darwin, huge_is_accepted_as_normal_pages)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1, UNIMEM_BLOCK_HUGE), 0);
	cr_assert_eq(unimem_block_page_size(b), PAGE);
	cr_assert_eq(unimem_block_size(b), PAGE);
	cr_assert(unimem_block_pinned(b));
	unimem_block_close(b);
	assert_clean();
}

Test(darwin, bad_arguments_touch_nothing)
{
	unimem_block *b = (unimem_block *)&b;
	cr_assert_eq(unimem_block_open(NULL, PAGE, 0), -DARWIN_EINVAL);
	cr_assert_eq(unimem_block_open(&b, 0, 0), -DARWIN_EINVAL);
	cr_assert_null(b);
	b = (unimem_block *)&b;
	cr_assert_eq(unimem_block_open(&b, PAGE, 1u << 7), -DARWIN_EINVAL);
	cr_assert_null(b);
	/* Rounding overflows. */
	cr_assert_eq(unimem_block_open(&b, SIZE_MAX, 0), -DARWIN_EINVAL);
	cr_assert_eq(unimem_block_open(&b, SIZE_MAX - PAGE + 2, 0), -DARWIN_EINVAL);
	/* Rounds fine but no 64-bit CFNumber can say it. */
	cr_assert_eq(unimem_block_open(&b, (size_t)INT64_MAX, 0), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake.ncalls, 0, "no call reached the frameworks or the allocator");
	assert_clean();
}

Test(darwin, create_failure_is_enomem_and_leaks_nothing)
{
	unimem_block *b = (unimem_block *)&b;
	fake.fail_create = true;
	cr_assert_eq(unimem_block_open(&b, PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_SURFACE_CREATE), 1);
	cr_assert_eq(fake_count(FAKE_LOCK), 0);
	cr_assert_eq(fake_count(FAKE_FREE), 1);
	assert_clean();
}

Test(darwin, number_or_dictionary_failure_is_enomem_and_leaks_nothing)
{
	unimem_block *b = (unimem_block *)&b;
	fake.fail_number = true;
	cr_assert_eq(unimem_block_open(&b, PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_DICT_CREATE), 0);
	cr_assert_eq(fake_count(FAKE_SURFACE_CREATE), 0);
	assert_clean();

	fake_reset();
	fake.fail_dict = true;
	cr_assert_eq(unimem_block_open(&b, PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_NUMBER_CREATE), 1);
	cr_assert_eq(fake_count(FAKE_SURFACE_CREATE), 0);
	assert_clean();
}

Test(darwin, allocation_failure_is_enomem_before_any_framework_call)
{
	unimem_block *b = (unimem_block *)&b;
	fake.fail_calloc = true;
	cr_assert_eq(unimem_block_open(&b, PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake.ncalls, 1, "only the calloc");
	cr_assert_eq(unimem_block_lookup(&b, 0x100), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_LOOKUP), 0);
	assert_clean();
}

Test(darwin, lock_failure_releases_everything)
{
	static const struct {
		kern_return_t kr;
		int err;
	} cases[] = {
		{ DARWIN_kIOReturnNoMemory, -DARWIN_ENOMEM },
		{ DARWIN_kIOReturnNoResources, -DARWIN_ENOMEM },
		{ DARWIN_kIOReturnNotPermitted, -DARWIN_EPERM },
		{ DARWIN_kIOReturnNotPrivileged, -DARWIN_EPERM },
		{ DARWIN_kIOReturnCannotLock, -DARWIN_EIO },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fake_reset();
		fake.lock_result = cases[i].kr;
		unimem_block *b = (unimem_block *)&b;
		cr_assert_eq(unimem_block_open(&b, 4 * PAGE, 0), cases[i].err, "case %zu", i);
		cr_assert_null(b);
		cr_assert_eq(fake_count(FAKE_LOCK), 1);
		cr_assert_eq(fake_count(FAKE_UNLOCK), 0, "nothing to unlock");
		size_t create = fake_find(FAKE_SURFACE_CREATE, NULL, 0);
		cr_assert_neq(fake_find(FAKE_RELEASE, fake.calls[create].obj, 0), (size_t)-1);
		assert_clean();
	}
}

Test(darwin, unusable_surface_after_lock_is_unlocked_and_released)
{
	unimem_block *b = (unimem_block *)&b;
	fake.null_base = true;
	cr_assert_eq(unimem_block_open(&b, PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 1);
	assert_clean();

	fake_reset();
	fake.base_offset = 4096; /* not on a 16 KiB page */
	cr_assert_eq(unimem_block_open(&b, PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 1);
	assert_clean();

	fake_reset();
	fake.alloc_short = 1; /* smaller than asked */
	cr_assert_eq(unimem_block_open(&b, 2 * PAGE, 0), -DARWIN_ENOMEM);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 1);
	assert_clean();

	fake_reset();
	fake.alloc_short = 1; /* the same, unpinned: nothing to unlock */
	cr_assert_eq(unimem_block_open(&b, 2 * PAGE, UNIMEM_BLOCK_UNPINNED), -DARWIN_ENOMEM);
	cr_assert_eq(fake_count(FAKE_LOCK) + fake_count(FAKE_UNLOCK), 0);
	assert_clean();
}

Test(darwin, id_lookup_round_trip_shares_the_memory)
{
	unimem_block *a, *b;
	cr_assert_eq(unimem_block_open(&a, 2 * PAGE, 0), 0);
	uint32_t id = unimem_block_id(a);
	cr_assert_neq(id, 0);

	cr_assert_eq(unimem_block_lookup(&b, id), 0);
	cr_assert_eq(fake_count(FAKE_LOOKUP), 1);
	cr_assert_eq(fake.calls[fake_find(FAKE_LOOKUP, NULL, 0)].arg, id);
	cr_assert_eq(unimem_block_id(b), id);
	cr_assert_eq(unimem_block_size(b), unimem_block_size(a));
	cr_assert_neq(unimem_block_handle(b), unimem_block_handle(a), "a ref of its own");
	cr_assert(unimem_block_pinned(b), "looked-up Blocks are pinned like a default open");
	cr_assert_eq(fake.locks_held, 2);

	unsigned char *pa = unimem_block_ptr(a), *pb = unimem_block_ptr(b);
	memset(pa, 0x5a, unimem_block_size(a));
	cr_assert_eq(pb[0], 0x5a);
	cr_assert_eq(pb[unimem_block_size(b) - 1], 0x5a);

	/* Closing the creator does not pull the pages from the other holder. */
	unimem_block_close(a);
	cr_assert_eq(fake.live_buffers, 1);
	cr_assert_eq(fake.locks_held, 1);
	pb[1] = 7;
	cr_assert_eq(pb[0], 0x5a);
	cr_assert_eq(pb[1], 7);

	unimem_block_close(b);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 2);
	assert_clean();
}

Test(darwin, lookup_of_nothing_is_enoent)
{
	unimem_block *b = (unimem_block *)&b;
	cr_assert_eq(unimem_block_lookup(&b, 0), -DARWIN_ENOENT);
	cr_assert_null(b);
	cr_assert_eq(fake.ncalls, 0, "id 0 names nothing: no call");

	cr_assert_eq(unimem_block_lookup(&b, 0xdead), -DARWIN_ENOENT);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_LOOKUP), 1);

	/* After the last holder closed, the id names nothing. */
	unimem_block *a;
	cr_assert_eq(unimem_block_open(&a, PAGE, 0), 0);
	uint32_t id = unimem_block_id(a);
	unimem_block_close(a);
	cr_assert_eq(unimem_block_lookup(&b, id), -DARWIN_ENOENT);
	cr_assert_null(b);

	cr_assert_eq(unimem_block_lookup(NULL, id), -DARWIN_EINVAL);
	assert_clean();
}

Test(darwin, lookup_lock_failure_releases_everything)
{
	unimem_block *a, *b = (unimem_block *)&b;
	cr_assert_eq(unimem_block_open(&a, PAGE, UNIMEM_BLOCK_UNPINNED), 0);
	fake.lock_result = DARWIN_kIOReturnNotPermitted;
	cr_assert_eq(unimem_block_lookup(&b, unimem_block_id(a)), -DARWIN_EPERM);
	cr_assert_null(b);
	cr_assert_eq(fake.live_surfaces, 1, "only the creator's ref is left");
	unimem_block_close(a);
	assert_clean();
}

Test(darwin, lookup_of_a_foreign_surface_that_is_no_block_is_einval)
{
	unimem_block *b = (unimem_block *)&b;
	IOSurfaceID small = fake_make_surface(4096, 0); /* less than one page */
	cr_assert_eq(unimem_block_lookup(&b, small), -DARWIN_EINVAL);
	cr_assert_null(b);
	cr_assert_eq(fake_count(FAKE_LOCK), 1);
	cr_assert_eq(fake_count(FAKE_UNLOCK), 1);
	fake_drop_surface(small);

	IOSurfaceID odd = fake_make_surface(2 * PAGE, 64); /* not page aligned */
	cr_assert_eq(unimem_block_lookup(&b, odd), -DARWIN_EINVAL);
	fake_drop_surface(odd);

	/* A big enough, aligned surface from elsewhere is a Block. */
	IOSurfaceID ok = fake_make_surface(2 * PAGE + 100, 0);
	cr_assert_eq(unimem_block_lookup(&b, ok), 0);
	cr_assert_eq(unimem_block_size(b), 2 * PAGE);
	unimem_block_close(b);
	fake_drop_surface(ok);
	assert_clean();
}

Test(darwin, send_recv_are_not_supported_and_fd_is_minus_one)
{
	unimem_block *a;
	cr_assert_eq(unimem_block_open(&a, PAGE, 0), 0);
	cr_assert_eq(unimem_block_send(3, a), -DARWIN_ENOTSUP);
	cr_assert_eq(unimem_block_send(3, NULL), -DARWIN_EINVAL);
	unimem_block *b = (unimem_block *)&b;
	cr_assert_eq(unimem_block_recv(&b, 3), -DARWIN_ENOTSUP);
	cr_assert_null(b);
	cr_assert_eq(unimem_block_recv(NULL, 3), -DARWIN_EINVAL);
	cr_assert_eq(unimem_block_fd(a), -1);
	unimem_block_close(a);
	assert_clean();
}

Test(darwin, seal_and_the_max_forms_are_stubs)
{
	unimem_block *a;
	cr_assert_eq(unimem_block_open(&a, PAGE, 0), 0);
	cr_assert_eq(unimem_block_seal(a), -DARWIN_ENOTSUP);
	cr_assert_eq(unimem_block_seal(NULL), -DARWIN_EINVAL);
	cr_assert(unimem_block_writable(a));
	cr_assert_not(unimem_block_writable(NULL));
	unimem_block *b = (unimem_block *)&b;
	cr_assert_eq(unimem_block_recv_max(&b, 3, 1), -DARWIN_ENOTSUP);
	cr_assert_null(b);
	cr_assert_eq(unimem_block_recv_max(NULL, 3, 1), -DARWIN_EINVAL);
	cr_assert_eq(unimem_block_lookup_max(NULL, 1, 1), -DARWIN_EINVAL);
	unimem_block_close(a);
	assert_clean();
}

Test(darwin, null_block_accessors_and_close)
{
	cr_assert_null(unimem_block_ptr(NULL));
	cr_assert_eq(unimem_block_size(NULL), 0);
	cr_assert_eq(unimem_block_page_size(NULL), 0);
	cr_assert_eq(unimem_block_id(NULL), 0);
	cr_assert_null(unimem_block_handle(NULL));
	cr_assert_eq(unimem_block_fd(NULL), -1);
	cr_assert_not(unimem_block_pinned(NULL));
	unimem_block_close(NULL);
	cr_assert_eq(fake.ncalls, 0);
}
