/* SPDX-License-Identifier: MIT */
/* A consumer that took unimem as a subproject with -Dgrids=256x1024 and
 * -Dblock_types=f32,bf16 (see meson.build). Exits 0 when it got what it asked for. */
#include <unimem/unimem.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The generated header carries our pools, and only ours. */
_Static_assert(UNIMEM_GRID_256X1024_CELL == 256, "cell size of our pool");
_Static_assert(UNIMEM_GRID_256X1024_COUNT == 1024, "cell count of our pool");
#if defined(UNIMEM_GRID_4096X256_CELL) || defined(UNIMEM_GRID_64X4096_CELL)
#error "unimem's default pools reached a consumer that chose its own"
#endif
#if !defined(UNIMEM_HAVE_BLOCK_TYPE_F32) || !defined(UNIMEM_HAVE_BLOCK_TYPE_BF16) || \
	defined(UNIMEM_HAVE_BLOCK_TYPE_U16)
#error "typed accessors other than block_types=f32,bf16"
#endif

#define POOL_BYTES (UNIMEM_GRID_256X1024_CELL * UNIMEM_GRID_256X1024_COUNT)

static int failures;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);     \
			failures++;                                                    \
		}                                                                      \
	} while (0)

/* Pinning is not what this program tests: where RLIMIT_MEMLOCK refuses it, go lazy. */
static int tape_start(unimem_tape **t, size_t bytes)
{
	int err = unimem_tape_start(t, bytes);
	if (err == -EPERM)
		err = unimem_tape_start_flags(t, bytes, UNIMEM_BLOCK_UNPINNED);
	return err;
}

int main(void)
{
	CHECK(strcmp(UNIMEM_GRIDS, "256x1024") == 0);
	CHECK(strcmp(unimem_version(), EXPECT_VERSION) == 0);

	/* A Tape sized for exactly our pool, carved into its cells. */
	unimem_tape *t = NULL;
	int err = tape_start(&t, POOL_BYTES);
	if (err) {
		fprintf(stderr, "unimem_tape_start: %s\n", unimem_strerror(err));
		return 1;
	}
	CHECK(unimem_tape_capacity(t) >= POOL_BYTES);
	unsigned char *first = NULL, *prev = NULL;
	for (size_t i = 0; i < UNIMEM_GRID_256X1024_COUNT; i++) {
		unsigned char *cell = unimem_tape_take(t, UNIMEM_GRID_256X1024_CELL, 64);
		CHECK(cell != NULL && (uintptr_t)cell % 64 == 0);
		if (!cell)
			break;
		CHECK(prev == NULL || cell == prev + UNIMEM_GRID_256X1024_CELL);
		memset(cell, (int)(i & 0xff), UNIMEM_GRID_256X1024_CELL);
		first = first ? first : cell;
		prev = cell;
	}
	CHECK(first && first[0] == 0 && first[POOL_BYTES - 1] == 0xff);
	CHECK(unimem_tape_used(t) == POOL_BYTES);

	/* The Block under the Tape, through the typed accessors we generated. */
	const unimem_block *b = unimem_tape_block(t);
	CHECK(unimem_block_len_f32(b) == unimem_block_size(b) / sizeof(float));
	CHECK((const void *)unimem_block_as_f32(b) == unimem_block_ptr(b));

	unimem_tape_clear(t);
	CHECK(unimem_tape_used(t) == 0);
	float *v = unimem_tape_take_f32(t, 4);
	unimem_bf16 *h = unimem_tape_take_bf16(t, 4);
	CHECK(v && h);
	if (v && h) {
		for (int i = 0; i < 4; i++) {
			v[i] = 1.5f * (float)i;
			h[i] = unimem_bf16_from_f32(v[i]);
			CHECK(unimem_bf16_to_f32(h[i]) == v[i]);
		}
	}
	unimem_tape_close(t);

	/* Our own pool type, generated for us: every cell once, then refused, then back. */
	unimem_grid_256x1024 *pool = NULL;
	err = unimem_grid_256x1024_open(&pool);
	if (err == -EPERM)
		err = unimem_grid_256x1024_open_flags(&pool, UNIMEM_BLOCK_UNPINNED);
	CHECK(err == 0 && pool != NULL);
	if (pool) {
		static unsigned char *cells[UNIMEM_GRID_256X1024_COUNT];
		for (size_t i = 0; i < UNIMEM_GRID_256X1024_COUNT; i++) {
			cells[i] = unimem_grid_256x1024_take(pool);
			CHECK(cells[i] != NULL && (uintptr_t)cells[i] % 64 == 0);
			if (cells[i])
				memset(cells[i], 0x5a, UNIMEM_GRID_256X1024_CELL);
		}
		CHECK(unimem_grid_256x1024_take(pool) == NULL);
		for (size_t i = 0; i < UNIMEM_GRID_256X1024_COUNT; i++)
			CHECK(cells[i] && unimem_grid_256x1024_give(pool, cells[i]) == 0);
		CHECK(unimem_grid_256x1024_give(pool, cells[0]) == -EALREADY);
		CHECK(unimem_grid_256x1024_give(pool, cells[0] + 1) == -EINVAL);
	}
	unimem_grid_256x1024_close(pool);

	/* A plain Block, pinned where the limit allows. */
	unimem_block *blk = NULL;
	err = unimem_block_open(&blk, UNIMEM_GRID_256X1024_CELL, 0);
	if (err == -EPERM)
		err = unimem_block_open(&blk, UNIMEM_GRID_256X1024_CELL, UNIMEM_BLOCK_UNPINNED);
	CHECK(err == 0 && blk != NULL);
	if (blk) {
		float *x = unimem_block_as_f32_mut(blk);
		x[0] = 42.0f;
		CHECK(unimem_block_as_f32(blk)[0] == 42.0f);
	}
	unimem_block_close(blk);

	if (failures)
		fprintf(stderr, "%d checks failed\n", failures);
	return failures ? 1 : 0;
}
