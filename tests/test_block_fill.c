/* SPDX-License-Identifier: MIT */
/* The pinned open's fill (src/os/linux/populate.c): every page resident, locked and zero,
 * for sizes around the chunk and thread thresholds, with helper threads and without. */
#include <unimem/unimem.h>

#include "helpers.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static void check_block(size_t bytes)
{
	long before = status_kb("VmLck");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, bytes, 0), 0, "open %zu", bytes);
	size_t size = unimem_block_size(b), page = (size_t)sysconf(_SC_PAGESIZE);
	cr_assert_geq(size, bytes);
	cr_assert(unimem_block_pinned(b));
	cr_assert_eq(status_kb("VmLck") - before, (long)(size / 1024), "all of it locked");
	unsigned char *vec = malloc(size / page);
	cr_assert_eq(mincore(unimem_block_ptr(b), size, vec), 0);
	for (size_t i = 0; i < size / page; i++)
		cr_assert(vec[i] & 1, "size %zu: page %zu not resident", bytes, i);
	free(vec);
	const uint64_t *w = unimem_block_ptr(b);
	for (size_t i = 0; i < size / 8; i++)
		if (w[i])
			cr_assert_fail("size %zu: byte %zu is not zero", bytes, i * 8);
	memset(unimem_block_ptr(b), 0xa5, size); /* dirty it: the next open must be zero */
	unimem_block_close(b);
	cr_assert_eq(status_kb("VmLck"), before, "close unlocks");
}

static const size_t sizes[] = {
	4096, 12345, (512u << 10) - 4096, 512u << 10, (512u << 10) + 4096, 2u << 20,
	(2u << 20) + 4096, (16u << 20) + 12345, 64u << 20,
};

Test(block_fill, every_page_resident_locked_and_zero)
{
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		check_block(sizes[i]);
	for (int r = 0; r < 3; r++)
		check_block(16u << 20);
}

Test(block_fill, on_one_cpu_without_helpers)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		check_block(sizes[i]);
}

/* A received (or looked-up) Block is pinned by faulting its pages in: the data another
 * holder wrote must stay, whatever the size (above the thresholds where the open of a new
 * Block writes zeros from one end and faults from the other). */
Test(block_fill, pinning_a_received_block_keeps_its_data)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	size_t sizes_with_data[] = { 4096, (2u << 20) + 4096, 16u << 20 };
	for (size_t i = 0; i < 3; i++) {
		unimem_block *a, *b;
		cr_assert_eq(unimem_block_open(&a, sizes_with_data[i], 0), 0);
		size_t size = unimem_block_size(a);
		uint32_t *w = unimem_block_ptr(a);
		for (size_t k = 0; k < size / 4; k++)
			w[k] = (uint32_t)k * 2654435761u + 1;
		cr_assert_eq(unimem_block_send(sv[0], a), 0);
		cr_assert_eq(unimem_block_recv(&b, sv[1]), 0);
		cr_assert(unimem_block_pinned(b));
		const uint32_t *r = unimem_block_ptr(b);
		for (size_t k = 0; k < size / 4; k++)
			if (r[k] != (uint32_t)k * 2654435761u + 1 || w[k] != r[k])
				cr_assert_fail("size %zu: word %zu lost", size, k);
		unimem_block_close(b);
		unimem_block_close(a);
	}
	close(sv[0]);
	close(sv[1]);
}
