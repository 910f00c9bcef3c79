/* SPDX-License-Identifier: MIT */
/* GPU calls where there is no GPU (CI; and the GPU machine with CUDA_VISIBLE_DEVICES=-1,
 * which tests/meson.build sets): count 0, -ENODEV, no crash, no output. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Test(gpu_absent, count_is_zero)
{
	cr_assert_eq(unimem_gpu_count(), 0);
	cr_assert_eq(unimem_gpu_count(), 0);
}

Test(gpu_absent, map_unmap_and_ptr_say_no_device)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	void *d = (void *)1;
	cr_assert_eq(unimem_gpu_map(b, &d), -ENODEV);
	cr_assert_null(d, "the out-parameter is cleared on failure");
	cr_assert_eq(unimem_gpu_unmap(b), -ENODEV);
	d = (void *)1;
	cr_assert_eq(unimem_gpu_ptr(b, unimem_block_ptr(b), &d), -ENODEV);
	cr_assert_null(d);
	/* The Block is untouched and closes cleanly. */
	memset(unimem_block_ptr(b), 7, unimem_block_size(b));
	unimem_block_close(b);
}

Test(gpu_absent, unpinned_block_too)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	void *d;
	cr_assert_eq(unimem_gpu_map(b, &d), -ENODEV);
	cr_assert_eq(unimem_gpu_unmap(b), -ENODEV);
	unimem_block_close(b);
}

Test(gpu_absent, bad_arguments_are_einval)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	void *d;
	cr_assert_eq(unimem_gpu_map(NULL, &d), -EINVAL);
	cr_assert_eq(unimem_gpu_map(b, NULL), -EINVAL);
	cr_assert_eq(unimem_gpu_unmap(NULL), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(NULL, unimem_block_ptr(b), &d), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(b, NULL, &d), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(b, unimem_block_ptr(b), NULL), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(b, (char *)unimem_block_ptr(b) + unimem_block_size(b) + 1, &d),
		     -EINVAL);
	unimem_block_close(b);
}

Test(gpu_absent, message_says_no_gpu)
{
	void *d;
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	cr_assert_eq(unimem_gpu_map(b, &d), -ENODEV);
	const char *m = unimem_strerror(-ENODEV);
	cr_assert(strstr(m, "no GPU"), "%s", m);
	cr_assert_str_eq(unimem_strerror(ENODEV), m);
	unimem_block_close(b);
}

/* "No noise": loading (or failing to load) the driver prints nothing. */
Test(gpu_absent, prints_nothing)
{
	char path[] = "/tmp/unimem-gpu-absent-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	fflush(stdout);
	fflush(stderr);
	int out = dup(1), err = dup(2);
	dup2(fd, 1);
	dup2(fd, 2);
	unimem_block *b;
	void *d;
	int rc_open = unimem_block_open(&b, 4096, 0);
	int n = unimem_gpu_count();
	int rc_map = rc_open ? 0 : unimem_gpu_map(b, &d);
	if (!rc_open)
		unimem_block_close(b);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	close(fd);
	cr_assert_eq(rc_open, 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(rc_map, -ENODEV);
	cr_assert_eq(st.st_size, 0, "%lld bytes of output", (long long)st.st_size);
}
