/* SPDX-License-Identifier: MIT */
/* Streaming weights, the GPU path, on this machine: unimem loads tests/fake_cuda.c as
 * libcuda.so.1 (LD_LIBRARY_PATH, set by meson), whose asynchronous copies run only at an
 * event's or the stream's synchronisation and refuse unregistered sources. So a staging
 * slot reused before its copies ran, a copy from a slot never registered, or a driver
 * object left behind (context, registration, allocation) fails here, without a GPU. */
#include <unimem/unimem.h>

#include "weights_files.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long long devptr;
static int (*held)(int what);  /* 0 registrations, 1 allocations, 2 contexts retained */
static int (*mem_alloc)(devptr *, size_t);
static int (*mem_free)(devptr);
static char path[] = "/tmp/unimem-fake-cuda-XXXXXX";

static const struct wf_tensor model[] = {
	{ "embed.weight", "BF16", 2, 2, { 333, 257 } },
	{ "norm.bias", "U8", 1, 1, { 7 } },
	{ "scalar", "F32", 4, 0, { 0 } },
	{ "empty", "F16", 2, 2, { 0, 5 } },
	{ "big", "F32", 4, 2, { 301, 1031 } },
	{ "tail", "I64", 8, 1, { 3 } },
};
#define N (sizeof model / sizeof model[0])

static void setup(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW);
	cr_assert_not_null(h, "%s", dlerror());
	void *f = dlsym(h, "fake_cuda_held"), *a = dlsym(h, "cuMemAlloc_v2"),
	     *r = dlsym(h, "cuMemFree_v2");
	if (!f)
		cr_skip_test("libcuda.so.1 is not the fake (LD_LIBRARY_PATH)");
	/* dlsym's void * to function pointers, as POSIX allows and ISO C does not say */
	memcpy(&held, &f, sizeof f);
	memcpy(&mem_alloc, &a, sizeof a);
	memcpy(&mem_free, &r, sizeof r);
	cr_assert_eq(unimem_gpu_count(), 1, "%s", unimem_strerror(-ENODEV));
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_gt(wf_write(path, model, N, NULL, 11), 0);
	setenv("UNIMEM_WEIGHTS_CHUNK", "65536", 1);
	setenv("UNIMEM_WEIGHTS_THREADS", "3", 1);
}

static void teardown(void)
{
	unlink(path);
}

TestSuite(weights_fake, .init = setup, .fini = teardown);

static void nothing_held(void)
{
	cr_assert_eq(held(0), 0, "registrations left");
	cr_assert_eq(held(1), 0, "device allocations left");
	cr_assert_eq(held(2), 0, "contexts left retained");
}

Test(weights_fake, slots_are_reused_only_once_their_copies_ran)
{
	for (int round = 0; round < 3; round++) {
		unimem_weights *w = NULL;
		int err = unimem_weights_load(&w, path, 0, NULL, 0, round == 2 ? UNIMEM_READ_BUFFERED : 0);
		cr_assert_eq(err, 0, "%s", unimem_strerror(err));
		cr_assert_eq(held(1), 1); /* one allocation per model */
		cr_assert_eq(held(0), 0); /* the ring is unregistered once the copies ran */
		for (size_t i = 0; i < N; i++) {
			const unsigned char *p = unimem_weights_ptr(w, i);
			cr_assert_eq((uintptr_t)p % UNIMEM_WEIGHTS_ALIGN, 0);
			cr_assert_eq(wf_check(p, model, i, 11), 0, "%s", model[i].name);
		}
		unimem_weights_close(w);
		nothing_held();
	}
}

Test(weights_fake, into_a_callers_device_buffer_and_what_is_refused)
{
	unimem_weights *w = NULL;
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	size_t bytes = unimem_weights_bytes(w);
	devptr buf, small;
	cr_assert_eq(mem_alloc(&buf, bytes), 0);
	cr_assert_eq(mem_alloc(&small, bytes / 2), 0);
	static unsigned char host[64] __attribute__((aligned(64)));
	cr_assert_eq(unimem_weights_upload(w, 0, host, bytes), -EINVAL);
	cr_assert_eq(unimem_weights_upload(w, 0, (void *)(uintptr_t)small, bytes), -EINVAL);
	cr_assert_eq(unimem_weights_upload(w, 1, (void *)(uintptr_t)buf, bytes), -ENODEV);
	cr_assert_eq(held(2), 0);
	cr_assert_eq(unimem_weights_upload(w, 0, (void *)(uintptr_t)buf, bytes), 0);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(wf_check(unimem_weights_ptr(w, i), model, i, 11), 0);
	unimem_weights_close(w);
	cr_assert_eq(held(1), 2); /* the caller's buffers stay the caller's */
	cr_assert_eq(mem_free(buf), 0);
	cr_assert_eq(mem_free(small), 0);
	nothing_held();
}

Test(weights_fake, no_device_memory_is_enomem_and_leaves_nothing)
{
	setenv("FAKE_CUDA_MEM", "1000", 1);
	unimem_weights *w = (unimem_weights *)1;
	int err = unimem_weights_load(&w, path, 0, NULL, 0, 0);
	cr_assert_eq(err, -ENOMEM);
	cr_assert_null(w);
	cr_assert_not_null(strstr(unimem_strerror(err), "cuMemAlloc"), "%s", unimem_strerror(err));
	nothing_held();
	unsetenv("FAKE_CUDA_MEM");
}

Test(weights_fake, a_file_that_shrinks_midway_is_eio_and_leaves_nothing)
{
	unimem_weights *w = NULL;
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	cr_assert_eq(truncate(path, 100000), 0);
	cr_assert_eq(unimem_weights_upload(w, 0, NULL, 0), -EIO);
	cr_assert_null(unimem_weights_ptr(w, 0));
	unimem_weights_close(w);
	nothing_held();
}
