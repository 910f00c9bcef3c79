/* SPDX-License-Identifier: MIT */
/* Another process's view of a Block: look it up by id and print the sum of `count`
 * floats at byte `offset` (for tests/python/test_numpy.py). Usage: block_reader ID
 * OFFSET COUNT. Exit 1 with a message on stderr when the lookup fails. */
#include <unimem/unimem.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: block_reader ID OFFSET COUNT\n");
		return 2;
	}
	unimem_block *b;
	int err = unimem_block_lookup(&b, (uint32_t)strtoul(argv[1], NULL, 0));
	if (err) {
		fprintf(stderr, "lookup: %s\n", unimem_strerror(err));
		return 1;
	}
	size_t off = strtoull(argv[2], NULL, 0), n = strtoull(argv[3], NULL, 0);
	if (off > unimem_block_size(b) || n > (unimem_block_size(b) - off) / sizeof(float)) {
		fprintf(stderr, "range outside the Block\n");
		unimem_block_close(b);
		return 1;
	}
	const float *p = (const float *)((const unsigned char *)unimem_block_ptr(b) + off);
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	printf("%.17g\n", s);
	unimem_block_close(b);
	return 0;
}
