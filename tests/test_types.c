/* SPDX-License-Identifier: MIT */
/* Generated typed accessors and Tape takes; bf16 conversions. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

Test(types, block_accessors_follow_the_build_options)
{
	cr_assert_str_eq(UNIMEM_BLOCK_TYPES, "f32 u16 bf16");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 10000, 0), 0);
	size_t size = unimem_block_size(b);
	cr_assert_eq((void *)unimem_block_as_f32(b), unimem_block_ptr(b));
	cr_assert_eq((void *)unimem_block_as_f32_mut(b), unimem_block_ptr(b));
	cr_assert_eq((void *)unimem_block_as_u16(b), unimem_block_ptr(b));
	cr_assert_eq((void *)unimem_block_as_bf16_mut(b), unimem_block_ptr(b));
	cr_assert_eq(unimem_block_len_f32(b), size / 4);
	cr_assert_eq(unimem_block_len_u16(b), size / 2);
	cr_assert_eq(unimem_block_len_bf16(b), size / 2);
	float *f = unimem_block_as_f32_mut(b);
	for (size_t i = 0; i < unimem_block_len_f32(b); i++)
		cr_assert_eq(f[i], 0.0f);
	f[unimem_block_len_f32(b) - 1] = 1.5f;
	cr_assert_eq(unimem_block_as_f32(b)[unimem_block_len_f32(b) - 1], 1.5f);
	cr_assert_null(unimem_block_as_f32(NULL));
	cr_assert_eq(unimem_block_len_f32(NULL), 0);
	unimem_block_close(b);
}

Test(types, typed_takes_are_naturally_aligned_and_checked)
{
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, 4096), 0);
	cr_assert_not_null(unimem_tape_take(t, 1, 1));
	float *f = unimem_tape_take_f32(t, 10);
	cr_assert_not_null(f);
	cr_assert_eq((uintptr_t)f % 4, 0);
	cr_assert_not_null(unimem_tape_take(t, 1, 1));
	uint16_t *u = unimem_tape_take_u16(t, 3);
	cr_assert_eq((uintptr_t)u % 2, 0);
	cr_assert_gt((void *)u, (void *)(f + 9));
	unimem_bf16 *h = unimem_tape_take_bf16(t, 5);
	cr_assert_eq((uintptr_t)h % 2, 0);
	cr_assert_null(unimem_tape_take_f32(t, SIZE_MAX / 2), "count * 4 overflows");
	cr_assert_null(unimem_tape_take_f32(t, SIZE_MAX / 4 + 1));
	cr_assert_null(unimem_tape_take_f32(t, 4096));
	size_t used = unimem_tape_used(t);
	cr_assert_not_null(unimem_tape_take_f32(t, (4096 - used) / 4));
	unimem_tape_close(t);
}

static uint32_t bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint16_t bf(float f)
{
	return unimem_bf16_from_f32(f).bits;
}

Test(types, bf16_known_values)
{
	cr_assert_eq(bf(1.0f), 0x3f80);
	cr_assert_eq(bf(-2.0f), 0xc000);
	cr_assert_eq(bf(0.0f), 0x0000);
	cr_assert_eq(bf(-0.0f), 0x8000);
	cr_assert_eq(bf(INFINITY), 0x7f80);
	cr_assert_eq(bf(-INFINITY), 0xff80);
	/* Ties go to even. */
	cr_assert_eq(bf(from_bits(0x3f808000)), 0x3f80);
	cr_assert_eq(bf(from_bits(0x3f818000)), 0x3f82);
	cr_assert_eq(bf(from_bits(0x3f808001)), 0x3f81);
	cr_assert_eq(bf(from_bits(0x3f807fff)), 0x3f80);
	/* The largest float rounds to infinity; subnormals round too. */
	cr_assert_eq(bf(from_bits(0x7f7fffff)), 0x7f80);
	cr_assert_eq(bf(from_bits(0x00008000)), 0x0000);
	cr_assert_eq(bf(from_bits(0x00018000)), 0x0002);
	cr_assert_eq(unimem_bf16_to_f32((unimem_bf16){ 0x3f80 }), 1.0f);
	cr_assert_eq(unimem_bf16_to_f32((unimem_bf16){ 0x4049 }), from_bits(0x40490000));
}

Test(types, bf16_nan_stays_nan)
{
	uint32_t nans[] = { 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7f80ffff,
			    0x7fffffff, 0x7fa00000 };
	for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
		unimem_bf16 h = unimem_bf16_from_f32(from_bits(nans[i]));
		cr_assert(isnan(unimem_bf16_to_f32(h)), "0x%08x -> 0x%04x", nans[i], h.bits);
		cr_assert_eq(h.bits >> 15, nans[i] >> 31, "sign kept");
	}
}

Test(types, bf16_round_trip_of_every_bf16)
{
	for (uint32_t v = 0; v <= 0xffff; v++) {
		unimem_bf16 h = { (uint16_t)v };
		float f = unimem_bf16_to_f32(h);
		cr_assert_eq(bits(f), v << 16);
		unimem_bf16 back = unimem_bf16_from_f32(f);
		if (isnan(f))
			cr_assert(isnan(unimem_bf16_to_f32(back)));
		else
			cr_assert_eq(back.bits, v, "0x%04x", v);
	}
}

/* Against a reference computed in double: the nearer of the two neighbours, ties to
 * the even one, over a stride through every float. */
Test(types, bf16_rounding_matches_a_double_reference)
{
	for (uint64_t k = 0; k <= 0xffffffffull; k += 997) {
		uint32_t u = (uint32_t)k;
		float x = from_bits(u);
		if (isnan(x))
			continue;
		uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
		double dx = x, dlo = from_bits(lo), dhi = from_bits(hi);
		uint16_t want;
		if ((lo & 0x7fffffffu) == 0x7f800000u) {
			want = (uint16_t)(lo >> 16); /* infinity */
		} else {
			/* hi may be the infinity: it counts as the next value up. */
			if ((hi & 0x7f800000u) == 0x7f800000u)
				dhi = (u >> 31 ? -1.0 : 1.0) * ldexp(1.0, 128);
			double dl = fabs(dx - dlo), dh = fabs(dhi - dx);
			if (dl < dh || (dl == dh && !((lo >> 16) & 1)))
				want = (uint16_t)(lo >> 16);
			else
				want = (uint16_t)(hi >> 16);
		}
		cr_assert_eq(bf(x), want, "0x%08x", u);
	}
}
