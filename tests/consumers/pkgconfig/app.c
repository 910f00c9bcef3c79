/* SPDX-License-Identifier: MIT */
/* A consumer built against an installed unimem with nothing but
 *   cc app.c $(pkg-config --cflags --libs unimem)
 * Exits 0 when the installed library does what the headers promise; prints nothing. */
#include <unimem/unimem.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);     \
			failures++;                                                    \
		}                                                                      \
	} while (0)

int main(int argc, char **argv)
{
	/* argv[1]: the version the installed unimem.pc announced. */
	CHECK(argc == 2 && strcmp(unimem_version(), argv[1]) == 0);

	unimem_layout *l = NULL;
	int err = unimem_layout_open(&l, 1 << 16, 1 << 16, 1 << 16);
	if (err == -EPERM) /* RLIMIT_MEMLOCK: pinning is not what this program tests */
		err = unimem_layout_open_flags(&l, 1 << 16, 1 << 16, 1 << 16,
					       UNIMEM_BLOCK_UNPINNED);
	CHECK(err == 0 && l != NULL);
	if (!l)
		return 1;
	unimem_tape *scratch = unimem_layout_scratch(l);
	float *x = unimem_tape_take_f32(scratch, 1024);
	CHECK(x != NULL);
	if (x)
		x[1023] = 1.0f;
	CHECK(unimem_tape_used(scratch) == 1024 * sizeof(float));
	unimem_layout_clear_pass(l);
	CHECK(unimem_tape_used(scratch) == 0);
	CHECK(unimem_block_size(unimem_layout_block(l)) >= 3 << 16);
	unimem_layout_close(l);

	CHECK(strlen(unimem_strerror(-EINVAL)) > 0);
	return failures ? 1 : 0;
}
