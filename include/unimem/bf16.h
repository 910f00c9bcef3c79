/* SPDX-License-Identifier: MIT */
/* unimem bf16: brain float, and its conversion from and to f32. */
#ifndef UNIMEM_BF16_H
#define UNIMEM_BF16_H

#include "common.h"

UNIMEM_BEGIN_DECLS

/* A struct, so that no arithmetic happens on it by accident. */
typedef struct unimem_bf16 {
	uint16_t bits;
} unimem_bf16;

/* f32 -> bf16, rounding to nearest, ties to even. NaN stays NaN (quiet), infinities stay. */
UNIMEM_INLINE unimem_bf16 unimem_bf16_from_f32(float x)
{
	uint32_t u;
	__builtin_memcpy(&u, &x, sizeof u);
	unimem_bf16 r;
	if ((u & 0x7fffffffu) > 0x7f800000u) {
		/* NaN: keep the sign and the top of the payload, force the quiet bit so that
		 * dropping the low payload bits can never make it an infinity. */
		r.bits = (uint16_t)((u >> 16) | 0x0040u);
		return r;
	}
	u += 0x7fffu + ((u >> 16) & 1u);
	r.bits = (uint16_t)(u >> 16);
	return r;
}

/* bf16 -> f32, exact. */
UNIMEM_INLINE float unimem_bf16_to_f32(unimem_bf16 x)
{
	uint32_t u = (uint32_t)x.bits << 16;
	float f;
	__builtin_memcpy(&f, &u, sizeof f);
	return f;
}

UNIMEM_END_DECLS

#endif
