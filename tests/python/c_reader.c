/* SPDX-License-Identifier: MIT */
/* The C side of the NumPy test: reads and writes Block bytes through libunimem's own
 * pointer (unimem_block_ptr), never through anything Python handed over but the Block. */
#include <unimem/unimem.h>

#define EXPORT __attribute__((visibility("default")))

/* Where C sees byte `off` of the Block. */
EXPORT uintptr_t reader_addr(const unimem_block *b, uint64_t off)
{
	return (uintptr_t)unimem_block_ptr(b) + (uintptr_t)off;
}

/* Sum of n floats at byte `off`, in double. */
EXPORT double reader_sum_f32(const unimem_block *b, uint64_t off, size_t n)
{
	const float *p = (const float *)((const unsigned char *)unimem_block_ptr(b) + off);
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

/* Index of the first of n floats at `off` that is not start + i * step; n if none. */
EXPORT size_t reader_check_f32(const unimem_block *b, uint64_t off, size_t n, float start,
			       float step)
{
	const float *p = (const float *)((const unsigned char *)unimem_block_ptr(b) + off);
	for (size_t i = 0; i < n; i++)
		if (p[i] != start + (float)i * step)
			return i;
	return n;
}

/* Write n int32 values start, start + 1, ... at `off`. */
EXPORT void reader_fill_i32(const unimem_block *b, uint64_t off, size_t n, int32_t start)
{
	int32_t *p = (int32_t *)((unsigned char *)unimem_block_ptr(b) + off);
	for (size_t i = 0; i < n; i++)
		p[i] = start + (int32_t)i;
}
