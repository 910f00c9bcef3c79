/* SPDX-License-Identifier: MIT */
/* Bad input, function by function: the executable half of docs/ERRORS.md. Each test is
 * named after the function whose rows it proves; limits (RLIMIT_*) are in test_limits.c. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Every flag bit beyond the known ones. */
static const unsigned unknown_flags[] = { 1u << 3, 1u << 4, 1u << 7, 1u << 16, 1u << 31,
					  UNIMEM_BLOCK_UNPINNED | 1u << 5, ~0u };

/* Sizes whose rounding up to the page overflows. */
static size_t overflowing[3];

static void init_sizes(void)
{
	overflowing[0] = SIZE_MAX;
	overflowing[1] = SIZE_MAX - page() + 2;
	overflowing[2] = SIZE_MAX - 1;
}

/* ---- Block --------------------------------------------------------------------------- */

Test(badinput, block_open)
{
	init_sizes();
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(NULL, 4096, 0), -EINVAL, "out NULL");
	cr_assert_eq(unimem_block_open(&b, 0, 0), -EINVAL, "bytes 0");
	cr_assert_null(b);
	for (size_t i = 0; i < 3; i++) {
		b = (unimem_block *)0x1;
		cr_assert_eq(unimem_block_open(&b, overflowing[i], 0), -EINVAL, "%zu", overflowing[i]);
		cr_assert_null(b);
		cr_assert_eq(unimem_block_open(&b, overflowing[i], UNIMEM_BLOCK_HUGE), -EINVAL);
		cr_assert_eq(unimem_block_open(&b, overflowing[i], UNIMEM_BLOCK_UNPINNED), -EINVAL);
	}
	for (size_t i = 0; i < sizeof unknown_flags / sizeof unknown_flags[0]; i++) {
		b = (unimem_block *)0x1;
		cr_assert_eq(unimem_block_open(&b, 4096, unknown_flags[i]), -EINVAL, "flags %#x",
			     unknown_flags[i]);
		cr_assert_null(b);
	}
	/* Sizes the machine cannot back: refused before anything is mapped. */
	int fds = count_fds(), maps = count_maps();
	size_t huge[] = { (size_t)1 << 46, (size_t)1 << 62, SIZE_MAX - 2 * page() };
	for (size_t i = 0; i < 3; i++) {
		b = (unimem_block *)0x1;
		cr_assert_eq(unimem_block_open(&b, huge[i], 0), -ENOMEM, "%zu", huge[i]);
		cr_assert_null(b);
		cr_assert_eq(unimem_block_open(&b, huge[i], UNIMEM_BLOCK_UNPINNED), -ENOMEM);
		cr_assert_eq(unimem_block_open(&b, huge[i], UNIMEM_BLOCK_HUGE), -ENOMEM);
	}
	cr_assert_eq(count_fds(), fds);
	cr_assert_eq(count_maps(), maps);
	/* Not errors: 1 byte, and HUGE where the system has no huge pages. */
	cr_assert_eq(unimem_block_open(&b, 1, UNIMEM_BLOCK_HUGE | UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_geq(unimem_block_size(b), 1);
	unimem_block_close(b);
}

Test(badinput, block_close)
{
	unimem_block_close(NULL);
}

Test(badinput, block_accessors_of_null)
{
	cr_assert_null(unimem_block_ptr(NULL));
	cr_assert_eq(unimem_block_size(NULL), 0);
	cr_assert_eq(unimem_block_page_size(NULL), 0);
	cr_assert_eq(unimem_block_id(NULL), 0);
	cr_assert_null(unimem_block_handle(NULL));
	cr_assert_eq(unimem_block_fd(NULL), -1);
	cr_assert_not(unimem_block_pinned(NULL));
}

Test(badinput, block_lookup)
{
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_lookup(NULL, 1), -EINVAL, "out NULL");
	cr_assert_eq(unimem_block_lookup(&b, 0), -ENOENT, "id 0");
	cr_assert_null(b);
	b = (unimem_block *)0x1;
	/* This process's slot 1023 is not in use. */
	cr_assert_eq(unimem_block_lookup(&b, (uint32_t)getpid() << 10 | 1023), -ENOENT);
	cr_assert_null(b);
}

Test(badinput, block_send)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_eq(unimem_block_send(-1, NULL), -EINVAL, "Block NULL");
	cr_assert_eq(unimem_block_send(-1, b), -EBADF, "fd -1");
	cr_assert_eq(unimem_block_send(1 << 20, b), -EBADF, "fd not open");
	unimem_block_close(b);
}

Test(badinput, block_recv)
{
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_recv(NULL, 0), -EINVAL, "out NULL");
	cr_assert_eq(unimem_block_recv(&b, -1), -EBADF, "fd -1");
	cr_assert_null(b);
	b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_recv(&b, 1 << 20), -EBADF, "fd not open");
	cr_assert_null(b);
}

Test(badinput, block_recv_max_lookup_max_seal_writable)
{
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_recv_max(NULL, 0, 0), -EINVAL, "out NULL");
	cr_assert_eq(unimem_block_recv_max(&b, -1, 4096), -EBADF, "fd -1");
	cr_assert_null(b);
	cr_assert_eq(unimem_block_lookup_max(NULL, 1, 0), -EINVAL, "out NULL");
	b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_lookup_max(&b, 0, 4096), -ENOENT, "id 0");
	cr_assert_null(b);
	cr_assert_eq(unimem_block_seal(NULL), -EINVAL);
	cr_assert_not(unimem_block_writable(NULL));
}

/* ---- typed accessors and takes (generated) -------------------------------------------- */

Test(badinput, block_as_T_and_len_T_of_null)
{
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
	cr_assert_null(unimem_block_as_f32(NULL));
	cr_assert_null(unimem_block_as_f32_mut(NULL));
	cr_assert_eq(unimem_block_len_f32(NULL), 0);
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U16
	cr_assert_null(unimem_block_as_u16(NULL));
	cr_assert_eq(unimem_block_len_u16(NULL), 0);
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_BF16
	cr_assert_null(unimem_block_as_bf16_mut(NULL));
	cr_assert_eq(unimem_block_len_bf16(NULL), 0);
#endif
}

Test(badinput, tape_take_T)
{
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, 4096), 0);
	cr_assert_null(unimem_tape_take_f32(t, SIZE_MAX), "count * 4 overflows");
	cr_assert_null(unimem_tape_take_f32(t, SIZE_MAX / 4 + 1), "count * 4 overflows");
	cr_assert_null(unimem_tape_take_f32(t, unimem_tape_capacity(t) / 4 + 1), "does not fit");
	cr_assert_eq(unimem_tape_used(t), 0, "a refused typed take moved the cursor");
	cr_assert_not_null(unimem_tape_take_f32(t, 0), "count 0 is not an error");
	unimem_tape_close(t);
#else
	cr_skip("built without f32");
#endif
}

/* ---- bf16 ---------------------------------------------------------------------------- */

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

Test(badinput, bf16_from_f32)
{
	/* Any float is a valid input: NaNs of any payload stay NaN with their sign, infinities
	 * stay, the largest floats round to infinity. */
	uint32_t nans[] = { 0x7f800001, 0xff800001, 0x7fffffff, 0xffffffff, 0x7f80ffff };
	for (size_t i = 0; i < 5; i++) {
		unimem_bf16 h = unimem_bf16_from_f32(from_bits(nans[i]));
		cr_assert(isnan(unimem_bf16_to_f32(h)), "%#x", nans[i]);
		cr_assert_eq(h.bits >> 15, nans[i] >> 31);
	}
	cr_assert_eq(unimem_bf16_from_f32(INFINITY).bits, 0x7f80);
	cr_assert_eq(unimem_bf16_from_f32(-INFINITY).bits, 0xff80);
	cr_assert_eq(unimem_bf16_from_f32(from_bits(0x7f7fffff)).bits, 0x7f80);
	cr_assert_eq(unimem_bf16_from_f32(from_bits(0xff7fffff)).bits, 0xff80);
	cr_assert_eq(unimem_bf16_from_f32(from_bits(0x00000001)).bits, 0x0000);
}

Test(badinput, bf16_to_f32)
{
	/* Every bit pattern converts, exactly. */
	for (uint32_t v = 0; v <= 0xffff; v += 0x101) {
		float f = unimem_bf16_to_f32((unimem_bf16){ (uint16_t)v });
		uint32_t u;
		memcpy(&u, &f, 4);
		cr_assert_eq(u, v << 16);
	}
}

/* ---- Tape ---------------------------------------------------------------------------- */

Test(badinput, tape_start)
{
	init_sizes();
	unimem_tape *t = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start(NULL, 4096), -EINVAL, "out NULL");
	cr_assert_eq(unimem_tape_start(&t, 0), -EINVAL, "bytes 0");
	cr_assert_null(t);
	for (size_t i = 0; i < 3; i++) {
		t = (unimem_tape *)0x1;
		cr_assert_eq(unimem_tape_start(&t, overflowing[i]), -EINVAL, "%zu", overflowing[i]);
		cr_assert_null(t);
	}
	t = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start(&t, (size_t)1 << 46), -ENOMEM);
	cr_assert_null(t);
}

Test(badinput, tape_start_flags)
{
	unimem_tape *t = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start_flags(NULL, 4096, 0), -EINVAL, "out NULL");
	for (size_t i = 0; i < sizeof unknown_flags / sizeof unknown_flags[0]; i++) {
		t = (unimem_tape *)0x1;
		cr_assert_eq(unimem_tape_start_flags(&t, 4096, unknown_flags[i]), -EINVAL, "%#x",
			     unknown_flags[i]);
		cr_assert_null(t);
	}
	cr_assert_eq(unimem_tape_start_flags(&t, 0, UNIMEM_BLOCK_UNPINNED), -EINVAL);
	cr_assert_eq(unimem_tape_start_flags(&t, SIZE_MAX, UNIMEM_BLOCK_UNPINNED), -EINVAL);
	cr_assert_eq(unimem_tape_start_flags(&t, (size_t)1 << 46, UNIMEM_BLOCK_UNPINNED), -ENOMEM);
	cr_assert_null(t);
}

Test(badinput, tape_close)
{
	unimem_tape_close(NULL);
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 4096, 4096, 4096), 0);
	unimem_tape_close(unimem_layout_weights(l)); /* belongs to the Layout: a no-op */
	cr_assert_not_null(unimem_tape_take(unimem_layout_weights(l), 4096, 1));
	unimem_layout_close(l);
}

Test(badinput, tape_block)
{
	cr_assert_null(unimem_tape_block(NULL));
}

/* Both take paths refuse the same inputs and leave the cursor where it was. */
static void refused(unimem_tape *t, size_t size, size_t align)
{
	size_t used = unimem_tape_used(t);
	cr_assert_null(unimem_tape_take(t, size, align), "take(%zu, %zu)", size, align);
	cr_assert_null(unimem_tape_take_owned(t, size, align), "take_owned(%zu, %zu)", size, align);
	cr_assert_eq(unimem_tape_used(t), used, "refused take(%zu, %zu) moved the cursor", size,
		     align);
}

static void tape_take_rows(void)
{
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, 4096), 0);
	size_t cap = unimem_tape_capacity(t);
	size_t not_pow2[] = { 0, 3, 6, 12, 100, 4097, SIZE_MAX, ((size_t)1 << 63) + 1 };
	for (size_t i = 0; i < sizeof not_pow2 / sizeof not_pow2[0]; i++)
		refused(t, 8, not_pow2[i]);
	refused(t, cap + 1, 1);            /* larger than the Tape */
	refused(t, SIZE_MAX, 1);           /* would wrap */
	refused(t, SIZE_MAX - 10, 16);     /* would wrap with padding */
	refused(t, 1, (size_t)1 << 63);    /* alignment beyond any Tape */
	refused(t, 0, 2 * cap);            /* alignment larger than the Tape */
	cr_assert_not_null(unimem_tape_take(t, cap - 10, 1));
	refused(t, 11, 1);                 /* does not fit */
	refused(t, 8, 16);                 /* fits without padding only */
	cr_assert_not_null(unimem_tape_take(t, 10, 1), "the room a refusal left is still there");
	refused(t, 1, 1);                  /* full */
	unimem_tape_close(t);
	/* A Tape of capacity 0 (a Layout's unused one) takes nothing, not even 0 bytes. */
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 0, 4096, 0), 0);
	refused(unimem_layout_weights(l), 0, 1);
	refused(unimem_layout_history(l), 1, 1);
	unimem_layout_close(l);
}

Test(badinput, tape_take)
{
	tape_take_rows();
}

Test(badinput, tape_take_owned)
{
	tape_take_rows(); /* refused() tries both paths */
}

Test(badinput, tape_clear_used_capacity)
{
	/* No input to get wrong but the Tape itself (not checked: see docs/ERRORS.md). A clear
	 * of a full, an empty and a zero-capacity Tape are all fine. */
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 0, 4096, 0), 0);
	unimem_tape *w = unimem_layout_weights(l), *s = unimem_layout_scratch(l);
	unimem_tape_clear(w);
	cr_assert_eq(unimem_tape_used(w), 0);
	cr_assert_eq(unimem_tape_capacity(w), 0);
	cr_assert_not_null(unimem_tape_take(s, 4096, 1));
	unimem_tape_clear(s);
	unimem_tape_clear(s);
	cr_assert_eq(unimem_tape_used(s), 0);
	unimem_layout_close(l);
}

Test(badinput, tape_chunk_refill)
{
	/* The slow path is public (the inline take calls it): NULL and a chunk without a
	 * Tape are refused rather than followed. */
	cr_assert_null(unimem_tape_chunk_refill(NULL, 8, 8));
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, NULL, 0);
	cr_assert_null(unimem_tape_chunk_refill(&c, 8, 8));
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, 4096), 0);
	unimem_tape_chunk_init(&c, t, 1024);
	cr_assert_null(unimem_tape_chunk_refill(&c, 8, 3), "align not a power of two");
	cr_assert_null(unimem_tape_chunk_refill(&c, 8, 0), "align 0");
	cr_assert_null(unimem_tape_chunk_take(&c, SIZE_MAX, 1), "larger than the Tape");
	cr_assert_eq(unimem_tape_used(t), 0, "a refused chunk take moved the cursor");
	unimem_tape_close(t);
}

/* ---- Layout -------------------------------------------------------------------------- */

Test(badinput, layout_open)
{
	init_sizes();
	unimem_layout *l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open(NULL, 1, 1, 1), -EINVAL, "out NULL");
	cr_assert_eq(unimem_layout_open(&l, 0, 0, 0), -EINVAL, "all three zero");
	cr_assert_null(l);
	for (size_t i = 0; i < 3; i++) {
		l = (unimem_layout *)0x1;
		cr_assert_eq(unimem_layout_open(&l, overflowing[i], 0, 0), -EINVAL, "weights");
		cr_assert_null(l);
		cr_assert_eq(unimem_layout_open(&l, 0, overflowing[i], 0), -EINVAL, "scratch");
		cr_assert_eq(unimem_layout_open(&l, 0, 0, overflowing[i]), -EINVAL, "history");
	}
	/* The sum overflows, though each size rounds. */
	cr_assert_eq(unimem_layout_open(&l, SIZE_MAX / 2, SIZE_MAX / 2, SIZE_MAX / 2), -EINVAL);
	cr_assert_eq(unimem_layout_open(&l, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, 0), -EINVAL);
	cr_assert_eq(unimem_layout_open(&l, 0, SIZE_MAX - 4 * page(), 8 * page()), -EINVAL);
	/* A sum the machine cannot back. */
	cr_assert_eq(unimem_layout_open(&l, (size_t)1 << 45, (size_t)1 << 45, 4096), -ENOMEM);
	cr_assert_null(l);
	/* Not errors: one or two zero sizes. */
	cr_assert_eq(unimem_layout_open(&l, 0, 0, 1), 0);
	unimem_layout_close(l);
}

Test(badinput, layout_open_flags)
{
	unimem_layout *l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open_flags(NULL, 1, 1, 1, 0), -EINVAL, "out NULL");
	for (size_t i = 0; i < sizeof unknown_flags / sizeof unknown_flags[0]; i++) {
		l = (unimem_layout *)0x1;
		cr_assert_eq(unimem_layout_open_flags(&l, 4096, 4096, 4096, unknown_flags[i]), -EINVAL,
			     "%#x", unknown_flags[i]);
		cr_assert_null(l);
	}
	cr_assert_eq(unimem_layout_open_flags(&l, 0, 0, 0, UNIMEM_BLOCK_UNPINNED), -EINVAL);
	cr_assert_null(l);
}

Test(badinput, layout_close)
{
	unimem_layout_close(NULL);
}

Test(badinput, layout_accessors_of_null)
{
	cr_assert_null(unimem_layout_weights(NULL));
	cr_assert_null(unimem_layout_scratch(NULL));
	cr_assert_null(unimem_layout_history(NULL));
	cr_assert_null(unimem_layout_block(NULL));
}

/* ---- Grid ------------------------------------------------------------------------- */

Test(badinput, grid_open)
{
	init_sizes();
	unimem_grid *g = (unimem_grid *)0x1;
	cr_assert_eq(unimem_grid_open(NULL, 64, 1), -EINVAL, "out NULL");
	cr_assert_eq(unimem_grid_open_flags(NULL, 64, 1, 0), -EINVAL, "out NULL");
	cr_assert_eq(unimem_grid_open(&g, 0, 1), -EINVAL, "cell size 0");
	cr_assert_null(g);
	g = (unimem_grid *)0x1;
	cr_assert_eq(unimem_grid_open(&g, 64, 0), -EINVAL, "no cells");
	cr_assert_null(g);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(unimem_grid_open(&g, overflowing[i], 1), -EINVAL, "%zu", overflowing[i]);
	cr_assert_eq(unimem_grid_open(&g, 4096, SIZE_MAX / 4096 + 1), -EINVAL, "size overflows");
	for (size_t i = 0; i < sizeof unknown_flags / sizeof unknown_flags[0]; i++) {
		g = (unimem_grid *)0x1;
		cr_assert_eq(unimem_grid_open_flags(&g, 64, 4, unknown_flags[i]), -EINVAL, "%#x",
			     unknown_flags[i]);
		cr_assert_null(g);
	}
	g = (unimem_grid *)0x1;
	int err = unimem_grid_open(&g, (size_t)1 << 20, (size_t)1 << 26); /* 64 TiB */
	cr_assert(err == -ENOMEM || err == -EINVAL, "%d", err);
	cr_assert_null(g);
}

/* Every pool of -Dgrids, through UNIMEM_GRID_FOREACH. */
#define GENERATED_OPEN_ROWS(NAME, CELL, COUNT)                                                \
	{                                                                                     \
		unimem_grid_##NAME *g = (unimem_grid_##NAME *)0x1;                              \
		cr_assert_eq(unimem_grid_##NAME##_open(NULL), -EINVAL, #NAME ": out NULL");     \
		cr_assert_eq(unimem_grid_##NAME##_open_flags(NULL, 0), -EINVAL, #NAME);         \
		for (size_t i = 0; i < sizeof unknown_flags / sizeof unknown_flags[0]; i++) {   \
			g = (unimem_grid_##NAME *)0x1;                                          \
			cr_assert_eq(unimem_grid_##NAME##_open_flags(&g, unknown_flags[i]),     \
				     -EINVAL, #NAME ": flags %#x", unknown_flags[i]);           \
			cr_assert_null(g);                                                      \
		}                                                                             \
		unimem_grid_##NAME##_close(NULL);                                               \
	}

Test(badinput, grid_generated_open)
{
#ifdef UNIMEM_GRID_FOREACH
	UNIMEM_GRID_FOREACH(GENERATED_OPEN_ROWS)
#else
	cr_skip("no generated pools in this build (-Dgrids)");
#endif
}

/* ---- GPU ----------------------------------------------------------------------------- */

Test(badinput, gpu_map)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	void *dev = (void *)0x1;
	cr_assert_eq(unimem_gpu_map(NULL, &dev), -EINVAL, "Block NULL");
	cr_assert_null(dev);
	cr_assert_eq(unimem_gpu_map(b, NULL), -EINVAL, "device_ptr NULL");
	if (unimem_gpu_count() == 0) {
		dev = (void *)0x1;
		cr_assert_eq(unimem_gpu_map(b, &dev), -ENODEV, "no GPU");
		cr_assert_null(dev);
	}
	unimem_block_close(b);
}

Test(badinput, gpu_unmap)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_eq(unimem_gpu_unmap(NULL), -EINVAL, "Block NULL");
	if (unimem_gpu_count() == 0) {
		cr_assert_eq(unimem_gpu_unmap(b), -ENODEV, "no GPU");
	} else {
		cr_assert_eq(unimem_gpu_unmap(b), 0, "a Block that is not mapped");
		void *dev;
		cr_assert_eq(unimem_gpu_map(b, &dev), 0);
		cr_assert_eq(unimem_gpu_unmap(b), 0);
		cr_assert_eq(unimem_gpu_unmap(b), 0, "more unmaps than maps");
	}
	unimem_block_close(b);
}

Test(badinput, gpu_ptr)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	unsigned char *p = unimem_block_ptr(b);
	void *dev = (void *)0x1;
	cr_assert_eq(unimem_gpu_ptr(NULL, p, &dev), -EINVAL, "Block NULL");
	cr_assert_null(dev);
	cr_assert_eq(unimem_gpu_ptr(b, NULL, &dev), -EINVAL, "host NULL");
	cr_assert_eq(unimem_gpu_ptr(b, p, NULL), -EINVAL, "device NULL");
	cr_assert_eq(unimem_gpu_ptr(b, p + 4097, &dev), -EINVAL, "past the end");
	cr_assert_eq(unimem_gpu_ptr(b, p - 1, &dev), -EINVAL, "before the start");
	int err = unimem_gpu_ptr(b, p + 4096, &dev); /* one past the end is allowed */
	cr_assert(err == -ENODEV || err == -ENXIO, "not mapped: %d", err);
	cr_assert_null(dev);
	if (unimem_gpu_count() == 0)
		cr_assert_eq(err, -ENODEV, "no GPU");
	unimem_block_close(b);
}

Test(badinput, gpu_count)
{
	cr_assert_geq(unimem_gpu_count(), 0);
}

/* ---- errors -------------------------------------------------------------------------- */

Test(badinput, strerror)
{
	int any[] = { INT_MIN, INT_MIN + 1, -123456, -4096, -1, 0, 1, 4095, 123456, INT_MAX };
	for (size_t i = 0; i < sizeof any / sizeof any[0]; i++) {
		const char *m = unimem_strerror(any[i]);
		cr_assert_not_null(m, "%d", any[i]);
		cr_assert_gt(strlen(m), 0, "%d", any[i]);
	}
}

Test(badinput, version)
{
	cr_assert_not_null(unimem_version());
}
