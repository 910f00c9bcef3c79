/* SPDX-License-Identifier: MIT */
/* Layout: three Tapes in one Block, page-aligned, and the two clears. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

Test(layout, three_tapes_in_one_block)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 1 << 20, 100000, 3 * page() + 1), 0);
	const unimem_block *b = unimem_layout_block(l);
	unimem_tape *w = unimem_layout_weights(l), *s = unimem_layout_scratch(l),
		    *h = unimem_layout_history(l);
	cr_assert_eq(unimem_tape_block(w), b);
	cr_assert_eq(unimem_tape_block(s), b);
	cr_assert_eq(unimem_tape_block(h), b);
	cr_assert_eq(unimem_tape_capacity(w), 1 << 20);
	cr_assert_eq(unimem_tape_capacity(s), (100000 + page() - 1) / page() * page());
	cr_assert_eq(unimem_tape_capacity(h), 4 * page());
	unsigned char *base = unimem_block_ptr(b);
	unsigned char *pw = unimem_tape_take(w, 1, 1), *ps = unimem_tape_take(s, 1, 1),
		      *ph = unimem_tape_take(h, 1, 1);
	cr_assert_eq(pw, base);
	cr_assert_eq(ps, base + unimem_tape_capacity(w));
	cr_assert_eq(ph, ps + unimem_tape_capacity(s));
	cr_assert_eq((uintptr_t)ps % page(), 0);
	cr_assert_eq((uintptr_t)ph % page(), 0);
	cr_assert_geq(unimem_block_size(b), unimem_tape_capacity(w) + unimem_tape_capacity(s) +
						    unimem_tape_capacity(h));
	cr_assert(unimem_block_pinned(b));
	/* What a Tape writes is the Block's memory. */
	*ph = 42;
	cr_assert_eq(base[ph - base], 42);
	unimem_layout_close(l);
	unimem_layout_close(NULL);
}

Test(layout, tapes_fill_to_their_own_capacity_only)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, page(), page(), page()), 0);
	unimem_tape *s = unimem_layout_scratch(l);
	cr_assert_not_null(unimem_tape_take(s, page(), 1));
	cr_assert_null(unimem_tape_take(s, 1, 1), "scratch must not spill into history");
	unimem_layout_close(l);
}

Test(layout, clear_pass_rewinds_scratch_only)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 8192, 8192, 8192), 0);
	unimem_tape *w = unimem_layout_weights(l), *s = unimem_layout_scratch(l),
		    *h = unimem_layout_history(l);
	unsigned char *wp = unimem_tape_take(w, 100, 1);
	memset(wp, 9, 100);
	cr_assert_not_null(unimem_tape_take(s, 200, 1));
	cr_assert_not_null(unimem_tape_take(h, 300, 1));
	unimem_layout_clear_pass(l);
	cr_assert_eq(unimem_tape_used(w), 100);
	cr_assert_eq(unimem_tape_used(s), 0);
	cr_assert_eq(unimem_tape_used(h), 300);
	cr_assert_eq(wp[99], 9, "weights untouched");
	unimem_layout_close(l);
}

Test(layout, clear_talk_rewinds_scratch_and_history)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 8192, 8192, 8192), 0);
	unimem_tape *w = unimem_layout_weights(l), *s = unimem_layout_scratch(l),
		    *h = unimem_layout_history(l);
	unsigned char *wp = unimem_tape_take(w, 100, 1);
	memset(wp, 9, 100);
	unsigned char *hp = unimem_tape_take(h, 300, 1);
	cr_assert_not_null(unimem_tape_take(s, 200, 1));
	unimem_layout_clear_talk(l);
	cr_assert_eq(unimem_tape_used(w), 100);
	cr_assert_eq(unimem_tape_used(s), 0);
	cr_assert_eq(unimem_tape_used(h), 0);
	cr_assert_eq(wp[0], 9);
	cr_assert_eq(unimem_tape_take(h, 300, 1), hp, "history starts over");
	unimem_layout_close(l);
}

Test(layout, zero_sized_tapes_take_nothing)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 0, 4096, 0), 0);
	cr_assert_eq(unimem_tape_capacity(unimem_layout_weights(l)), 0);
	cr_assert_eq(unimem_tape_capacity(unimem_layout_history(l)), 0);
	cr_assert_null(unimem_tape_take(unimem_layout_weights(l), 1, 1));
	cr_assert_null(unimem_tape_take(unimem_layout_weights(l), 0, 1));
	cr_assert_null(unimem_tape_take(unimem_layout_history(l), 1, 1));
	cr_assert_not_null(unimem_tape_take(unimem_layout_scratch(l), 4096, 1));
	unimem_layout_clear_talk(l);
	unimem_layout_close(l);
}

Test(layout, bad_input)
{
	unimem_layout *l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open(&l, 0, 0, 0), -EINVAL);
	cr_assert_null(l);
	cr_assert_eq(unimem_layout_open(NULL, 1, 1, 1), -EINVAL);
	l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open(&l, SIZE_MAX, 0, 0), -EINVAL);
	cr_assert_null(l);
	cr_assert_eq(unimem_layout_open(&l, SIZE_MAX / 2, SIZE_MAX / 2, SIZE_MAX / 2), -EINVAL);
	cr_assert_eq(unimem_layout_open(&l, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, 0), -EINVAL);
	cr_assert_eq(unimem_layout_open_flags(&l, 4096, 0, 0, 1u << 9), -EINVAL);
	cr_assert_null(l);
	cr_assert_null(unimem_layout_weights(NULL));
	cr_assert_null(unimem_layout_block(NULL));
}

Test(layout, closing_a_layout_tape_is_a_no_op)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 4096, 4096, 4096), 0);
	unimem_tape_close(unimem_layout_scratch(l));
	cr_assert_not_null(unimem_tape_take(unimem_layout_scratch(l), 64, 64));
	unimem_layout_close(l);
}

Test(layout, unpinned_flag)
{
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open_flags(&l, 4096, 4096, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(unimem_layout_block(l)));
	unimem_layout_close(l);
}

Test(layout, clears_of_null_are_no_ops)
{
	unimem_layout_clear_pass(NULL);
	unimem_layout_clear_talk(NULL);
}
