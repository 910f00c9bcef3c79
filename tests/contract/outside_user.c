/* SPDX-License-Identifier: MIT */
/* A program written only against DESIGN.md's API contract, as an outside user would write
 * it: no internal header, no helper from the tests. Exits 0 when every promise holds. */
#include <unimem/unimem.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                 \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__,    \
				__LINE__, #cond);                                   \
			failures++;                                                 \
		}                                                                   \
	} while (0)

static void block(void)
{
	unimem_block *b = NULL;
	CHECK(unimem_block_open(&b, 0, 0) == -EINVAL && b == NULL);
	CHECK(unimem_block_open(&b, (size_t)-1, 0) == -EINVAL && b == NULL);

	CHECK(unimem_block_open(&b, 1000, 0) == 0 && b != NULL);
	size_t size = unimem_block_size(b);
	unsigned char *p = unimem_block_ptr(b);
	CHECK(size >= 1000 && size % 4096 == 0);
	CHECK((uintptr_t)p % 4096 == 0);
	CHECK(unimem_block_pinned(b));
	CHECK(unimem_block_fd(b) >= 0);
	CHECK(unimem_block_handle(b) == NULL);
	int zero = 1;
	for (size_t i = 0; i < size; i++)
		zero &= p[i] == 0;
	CHECK(zero);
	float *f = unimem_block_as_f32_mut(b);
	CHECK((void *)f == p && unimem_block_len_f32(b) == size / sizeof(float));
	f[0] = 3.0f;
	CHECK(unimem_block_as_f32(b)[0] == 3.0f);
	CHECK(unimem_block_len_u16(b) == size / 2 && unimem_block_len_bf16(b) == size / 2);
	unimem_bf16 *h = unimem_block_as_bf16_mut(b);
	h[1] = unimem_bf16_from_f32(1.0f);
	CHECK(unimem_bf16_to_f32(unimem_block_as_bf16(b)[1]) == 1.0f);
	CHECK(unimem_block_ptr(b) == p);
	unimem_block_close(b);
	unimem_block_close(NULL);

	CHECK(unimem_block_open(&b, 1 << 20, UNIMEM_BLOCK_UNPINNED) == 0);
	CHECK(!unimem_block_pinned(b));
	unimem_block_close(b);
}

static void tape(void)
{
	unimem_tape *t = NULL;
	CHECK(unimem_tape_start(&t, 4096) == 0);
	size_t cap = unimem_tape_capacity(t);
	CHECK(cap >= 4096 && unimem_tape_used(t) == 0);
	CHECK(unimem_tape_block(t) != NULL);
	unsigned char *a = unimem_tape_take(t, 3, 1);
	unsigned char *b = unimem_tape_take(t, 8, 64);
	CHECK(a && b && (uintptr_t)b % 64 == 0 && b >= a + 3);
	CHECK(unimem_tape_take(t, 8, 3) == NULL);   /* not a power of two */
	CHECK(unimem_tape_take(t, 8, 0) == NULL);
	CHECK(unimem_tape_take(t, (size_t)-1, 1) == NULL); /* never wraps */
	CHECK(unimem_tape_take(t, cap, 1) == NULL);        /* full */
	float *f = unimem_tape_take_f32(t, 4);
	CHECK(f && (uintptr_t)f % sizeof(float) == 0);
	unimem_tape_clear(t);
	CHECK(unimem_tape_used(t) == 0);
	CHECK(unimem_tape_take(t, cap, 1) == a);
	CHECK(unimem_tape_take(t, 1, 1) == NULL);
	unimem_tape_close(t);
	unimem_tape_close(NULL);
}

static void layout(void)
{
	unimem_layout *l = NULL;
	CHECK(unimem_layout_open(&l, 0, 0, 0) == -EINVAL && l == NULL);
	CHECK(unimem_layout_open(&l, 1 << 16, 1 << 14, 1 << 14) == 0);
	unimem_tape *w = unimem_layout_weights(l), *s = unimem_layout_scratch(l),
		    *h = unimem_layout_history(l);
	CHECK(unimem_tape_block(w) == unimem_layout_block(l));
	CHECK(unimem_tape_block(s) == unimem_layout_block(l));
	CHECK(unimem_tape_take(w, 100, 16) && unimem_tape_take(s, 100, 16) &&
	      unimem_tape_take(h, 100, 16));
	unimem_layout_clear_pass(l);
	CHECK(unimem_tape_used(s) == 0 && unimem_tape_used(h) == 100 && unimem_tape_used(w) == 100);
	unimem_tape_take(s, 100, 16);
	unimem_layout_clear_talk(l);
	CHECK(unimem_tape_used(s) == 0 && unimem_tape_used(h) == 0 && unimem_tape_used(w) == 100);
	unimem_layout_close(l);
}

int main(void)
{
	block();
	tape();
	layout();
	CHECK(unimem_strerror(-EINVAL) != NULL && unimem_strerror(EINVAL) != NULL);
	CHECK(strstr(unimem_strerror(-EPERM), "RLIMIT_MEMLOCK") != NULL);
	CHECK(unimem_version()[0] != '\0');
	if (failures)
		fprintf(stderr, "%d broken promises\n", failures);
	return failures ? 1 : 0;
}
