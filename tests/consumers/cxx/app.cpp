// SPDX-License-Identifier: MIT
// A C++ consumer: every installed public header (all.hpp, written by run.sh, includes
// each one), compiled with warnings as errors, calling the inline hot paths.
// Exits 0 when they behave as in C; prints nothing.
#include "all.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

static int failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                  \
		}                                                                    \
	} while (0)

int main()
{
	unimem_tape *t = nullptr;
	int err = unimem_tape_start(&t, 1 << 16);
	if (err == -EPERM) // RLIMIT_MEMLOCK: pinning is not what this program tests
		err = unimem_tape_start_flags(&t, 1 << 16, UNIMEM_BLOCK_UNPINNED);
	CHECK(err == 0 && t != nullptr);
	if (!t)
		return 1;

	// Inline hot paths, from C++.
	void *a = unimem_tape_take(t, 100, 64);
	void *b = unimem_tape_take_owned(t, 8, 8);
	CHECK(a != nullptr && reinterpret_cast<std::uintptr_t>(a) % 64 == 0);
	CHECK(b != nullptr && static_cast<char *>(b) >= static_cast<char *>(a) + 100);
	CHECK(unimem_tape_take(t, 8, 3) == nullptr); // align not a power of two
	CHECK(unimem_tape_used(t) >= 108 && unimem_tape_used(t) <= unimem_tape_capacity(t));
	unimem_tape_clear(t);
	CHECK(unimem_tape_used(t) == 0);
	CHECK(unimem_tape_take(t, unimem_tape_capacity(t) + 1, 1) == nullptr);

	const unimem_block *blk = unimem_tape_block(t);
	CHECK(unimem_block_size(blk) >= unimem_tape_capacity(t));
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
	float *v = unimem_tape_take_f32(t, 16);
	CHECK(v != nullptr && reinterpret_cast<std::uintptr_t>(v) % alignof(float) == 0);
	CHECK(static_cast<const void *>(unimem_block_as_f32(blk)) == unimem_block_ptr(blk));
	CHECK(unimem_block_len_f32(blk) == unimem_block_size(blk) / sizeof(float));
#endif
	unimem_bf16 h = unimem_bf16_from_f32(1.5f);
	CHECK(unimem_bf16_to_f32(h) == 1.5f);
	CHECK(unimem_bf16_from_f32(1.0f).bits == 0x3f80);
	unimem_tape_close(t);

	CHECK(std::strlen(unimem_version()) > 0);
	CHECK(std::strlen(UNIMEM_GRIDS) > 0);
	return failures ? 1 : 0;
}
