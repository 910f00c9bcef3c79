/* SPDX-License-Identifier: MIT */
/* Views of Blocks and their DLPack export: fields, bounds, and the Block's lifetime. */
#include <unimem/unimem.h>

#include "dlpack_abi.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Whether addr lies in a mapping of this process. */
static bool mapped(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	cr_assert_not_null(f);
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= (uintptr_t)addr &&
		    (uintptr_t)addr < hi)
			found = true;
	}
	fclose(f);
	return found;
}

static umi_dl_managed_tensor *as_dl(struct DLManagedTensor *t)
{
	return (umi_dl_managed_tensor *)t;
}

Test(view, dtype_sizes_and_names)
{
	static const struct {
		int dtype;
		size_t size;
		const char *name;
	} want[] = {
		{UNIMEM_DTYPE_BOOL, 1, "BOOL"}, {UNIMEM_DTYPE_U8, 1, "U8"}, {UNIMEM_DTYPE_I8, 1, "I8"},
		{UNIMEM_DTYPE_U16, 2, "U16"}, {UNIMEM_DTYPE_I16, 2, "I16"},
		{UNIMEM_DTYPE_U32, 4, "U32"}, {UNIMEM_DTYPE_I32, 4, "I32"},
		{UNIMEM_DTYPE_U64, 8, "U64"}, {UNIMEM_DTYPE_I64, 8, "I64"},
		{UNIMEM_DTYPE_F16, 2, "F16"}, {UNIMEM_DTYPE_BF16, 2, "BF16"},
		{UNIMEM_DTYPE_F32, 4, "F32"}, {UNIMEM_DTYPE_F64, 8, "F64"},
		{UNIMEM_DTYPE_F8_E4M3, 1, "F8_E4M3"}, {UNIMEM_DTYPE_F8_E5M2, 1, "F8_E5M2"},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		cr_assert_eq(unimem_dtype_size(want[i].dtype), want[i].size);
		cr_assert_str_eq(unimem_dtype_name(want[i].dtype), want[i].name);
	}
	cr_assert_eq(unimem_dtype_size(0), 0);
	cr_assert_eq(unimem_dtype_size(16), 0);
	cr_assert_eq(unimem_dtype_size(-1), 0);
	cr_assert_null(unimem_dtype_name(0));
	cr_assert_null(unimem_dtype_name(99));
}

Test(view, init_gives_row_major_strides)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 16, 0), 0);
	unimem_view v;
	int64_t shape[3] = {2, 3, 4};
	cr_assert_eq(unimem_view_init(&v, b, 256, UNIMEM_DTYPE_F32, 3, shape), 0);
	cr_assert_eq(v.strides[0], 12);
	cr_assert_eq(v.strides[1], 4);
	cr_assert_eq(v.strides[2], 1);
	cr_assert_eq(unimem_view_count(&v), 24);
	cr_assert_eq(unimem_view_ptr(&v), (unsigned char *)unimem_block_ptr(b) + 256);
	/* A scalar: no dimension, one element. */
	cr_assert_eq(unimem_view_init(&v, b, 8, UNIMEM_DTYPE_F64, 0, NULL), 0);
	cr_assert_eq(unimem_view_count(&v), 1);
	unimem_block_close(b);
}

Test(view, bounds_and_bad_arguments)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	size_t size = unimem_block_size(b);
	unimem_view v;
	int64_t one[1] = {1}, all[1] = {(int64_t)size / 4}, over[1] = {(int64_t)size / 4 + 1};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_F32, 1, all), 0);
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_F32, 1, over), -ERANGE);
	cr_assert_eq(unimem_view_init(&v, b, size - 4, UNIMEM_DTYPE_F32, 1, one), 0);
	cr_assert_eq(unimem_view_init(&v, b, size, UNIMEM_DTYPE_F32, 1, one), -ERANGE);
	cr_assert_eq(unimem_view_init(&v, b, UINT64_MAX - 3, UNIMEM_DTYPE_F32, 1, one), -ERANGE);
	cr_assert_eq(unimem_view_init(&v, b, 2, UNIMEM_DTYPE_F32, 1, one), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, b, 0, 0, 1, one), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, b, 0, 77, 1, one), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, NULL, 0, UNIMEM_DTYPE_U8, 1, one), -EINVAL);
	cr_assert_eq(unimem_view_init(NULL, b, 0, UNIMEM_DTYPE_U8, 1, one), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 1, NULL), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, -1, one), -EINVAL);
	int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 9, nine), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 8, nine), 0);
	int64_t neg[2] = {2, -1};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 2, neg), -EINVAL);
	/* Products far past 64 bits: refused by extent, never wrapped. */
	int64_t huge[4] = {INT64_MAX, INT64_MAX, INT64_MAX, 2};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_F64, 4, huge), -ERANGE);
	int64_t big2[2] = {INT64_MAX, 2};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 2, big2), -ERANGE);
	/* Zero elements: only the offset must be inside (or at the end). */
	int64_t empty[2] = {0, INT64_MAX};
	cr_assert_eq(unimem_view_init(&v, b, size, UNIMEM_DTYPE_U8, 2, empty), 0);
	cr_assert_eq(unimem_view_init(&v, b, size + 1, UNIMEM_DTYPE_U8, 2, empty), -ERANGE);
	cr_assert_eq(unimem_view_check(NULL), -EINVAL);
	cr_assert_null(unimem_view_ptr(NULL));
	cr_assert_eq(unimem_view_count(NULL), 0);
	unimem_block_close(b);
}

Test(view, strides_negative_zero_and_extreme)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	unimem_view v;
	int64_t shape[1] = {10};
	/* Reversed: element 0 at byte 36, the last at byte 0. */
	cr_assert_eq(unimem_view_init(&v, b, 36, UNIMEM_DTYPE_F32, 1, shape), 0);
	v.strides[0] = -1;
	cr_assert_eq(unimem_view_check(&v), 0);
	v.offset = 32;
	cr_assert_eq(unimem_view_check(&v), -ERANGE);
	/* Broadcast: every element is the same one. */
	v.offset = 4092;
	v.strides[0] = 0;
	cr_assert_eq(unimem_view_check(&v), 0);
	v.strides[0] = INT64_MAX;
	cr_assert_eq(unimem_view_check(&v), -ERANGE);
	v.strides[0] = INT64_MIN;
	cr_assert_eq(unimem_view_check(&v), -ERANGE);
	int64_t s2[2] = {INT64_MAX, INT64_MAX};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 2, s2), -ERANGE);
	v.strides[0] = INT64_MIN;
	v.strides[1] = INT64_MAX;
	cr_assert_eq(unimem_view_check(&v), -ERANGE);
	unimem_block_close(b);
}

Test(view, dlpack_fields)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 16, 0), 0);
	unimem_view v;
	int64_t shape[2] = {3, 5};
	cr_assert_eq(unimem_view_init(&v, b, 1024, UNIMEM_DTYPE_F32, 2, shape), 0);
	v.strides[0] = 8; /* padded rows */
	struct DLManagedTensor *t;
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t), 0);
	umi_dl_managed_tensor *m = as_dl(t);
	cr_assert_eq(m->dl_tensor.data, (unsigned char *)unimem_block_ptr(b) + 1024);
	cr_assert_eq(m->dl_tensor.byte_offset, 0);
	cr_assert_eq(m->dl_tensor.device.device_type, UMI_DL_CPU);
	cr_assert_eq(m->dl_tensor.device.device_id, 0);
	cr_assert_eq(m->dl_tensor.ndim, 2);
	cr_assert_eq(m->dl_tensor.dtype.code, UMI_DL_FLOAT);
	cr_assert_eq(m->dl_tensor.dtype.bits, 32);
	cr_assert_eq(m->dl_tensor.dtype.lanes, 1);
	cr_assert_eq(m->dl_tensor.shape[0], 3);
	cr_assert_eq(m->dl_tensor.shape[1], 5);
	cr_assert_eq(m->dl_tensor.strides[0], 8);
	cr_assert_eq(m->dl_tensor.strides[1], 1);
	cr_assert_not_null(m->deleter);
	/* The export owns its shape: changing the view afterwards changes nothing. */
	v.shape[0] = 1;
	cr_assert_eq(m->dl_tensor.shape[0], 3);
	m->deleter(m);
	unimem_block_close(b);
}

Test(view, dlpack_type_codes)
{
	static const struct {
		int dtype;
		uint8_t code, bits;
	} want[] = {
		{UNIMEM_DTYPE_BOOL, UMI_DL_BOOL, 8}, {UNIMEM_DTYPE_U8, UMI_DL_UINT, 8},
		{UNIMEM_DTYPE_I8, UMI_DL_INT, 8}, {UNIMEM_DTYPE_U16, UMI_DL_UINT, 16},
		{UNIMEM_DTYPE_I16, UMI_DL_INT, 16}, {UNIMEM_DTYPE_U32, UMI_DL_UINT, 32},
		{UNIMEM_DTYPE_I32, UMI_DL_INT, 32}, {UNIMEM_DTYPE_U64, UMI_DL_UINT, 64},
		{UNIMEM_DTYPE_I64, UMI_DL_INT, 64}, {UNIMEM_DTYPE_F16, UMI_DL_FLOAT, 16},
		{UNIMEM_DTYPE_BF16, UMI_DL_BFLOAT, 16}, {UNIMEM_DTYPE_F32, UMI_DL_FLOAT, 32},
		{UNIMEM_DTYPE_F64, UMI_DL_FLOAT, 64},
	};
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		unimem_view v;
		cr_assert_eq(unimem_view_init(&v, b, 0, want[i].dtype, 0, NULL), 0);
		struct DLManagedTensor *t;
		cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t), 0);
		cr_assert_eq(as_dl(t)->dl_tensor.dtype.code, want[i].code, "dtype %d", want[i].dtype);
		cr_assert_eq(as_dl(t)->dl_tensor.dtype.bits, want[i].bits);
		cr_assert_eq(as_dl(t)->dl_tensor.ndim, 0);
		as_dl(t)->deleter(as_dl(t));
	}
	/* DLPack 0.8 has no 8-bit floats. */
	unimem_view v;
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_F8_E4M3, 0, NULL), 0);
	struct DLManagedTensor *t = (struct DLManagedTensor *)&v;
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t), -ENOTSUP);
	cr_assert_null(t);
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, NULL), -EINVAL);
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 0, NULL), 0);
	cr_assert_eq(unimem_view_to_dlpack(&v, 1u << 7, &t), -EINVAL);
	v.offset = 1u << 20;
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t), -ERANGE);
	cr_assert_null(t);
	unimem_block_close(b);
}

Test(view, export_keeps_the_block_until_the_deleter)
{
	int fds = count_fds();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 16, 0), 0);
	unsigned char *p = unimem_block_ptr(b);
	memset(p, 7, 4096);
	unimem_view v;
	int64_t shape[1] = {4096};
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 1, shape), 0);
	struct DLManagedTensor *t1, *t2;
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t1), 0);
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t2), 0);
	unimem_block_close(b);
	/* The owner is gone; the two consumers still read the same pages. */
	cr_assert(mapped(p));
	unsigned char *d = as_dl(t1)->dl_tensor.data;
	cr_assert_eq(d, p);
	cr_assert_eq(d[4095], 7);
	as_dl(t1)->deleter(as_dl(t1));
	cr_assert(mapped(p));
	cr_assert_eq(((unsigned char *)as_dl(t2)->dl_tensor.data)[0], 7);
	as_dl(t2)->deleter(as_dl(t2));
	cr_assert_not(mapped(p), "the last holder must unmap");
	cr_assert_eq(count_fds(), fds);
}

Test(view, tape_and_layout_close_leave_exports_alive)
{
	unimem_tape *t;
	cr_assert_eq(unimem_tape_start(&t, 1 << 16), 0);
	float *x = unimem_tape_take(t, 64 * sizeof(float), 64);
	x[63] = 2.5f;
	const unimem_block *b = unimem_tape_block(t);
	unimem_view v;
	int64_t shape[1] = {64};
	cr_assert_eq(unimem_view_init(&v, b, (uint64_t)((unsigned char *)x -
						       (unsigned char *)unimem_block_ptr(b)),
				      UNIMEM_DTYPE_F32, 1, shape), 0);
	struct DLManagedTensor *e;
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &e), 0);
	unimem_tape_close(t);
	cr_assert_eq(((float *)as_dl(e)->dl_tensor.data)[63], 2.5f);
	as_dl(e)->deleter(as_dl(e));
	cr_assert_not(mapped(x));

	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 1 << 16, 1 << 16, 0), 0);
	float *s = unimem_tape_take(unimem_layout_scratch(l), 16, 16);
	s[0] = 1.5f;
	b = unimem_layout_block(l);
	cr_assert_eq(unimem_view_init(&v, b, (uint64_t)((unsigned char *)s -
						       (unsigned char *)unimem_block_ptr(b)),
				      UNIMEM_DTYPE_F32, 0, NULL), 0);
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &e), 0);
	unimem_layout_close(l);
	cr_assert_eq(*(float *)as_dl(e)->dl_tensor.data, 1.5f);
	as_dl(e)->deleter(as_dl(e));
	cr_assert_not(mapped(s));
}

static void *run_deleter(void *arg)
{
	umi_dl_managed_tensor *m = arg;
	m->deleter(m);
	return NULL;
}

Test(view, deleters_on_many_threads_race_the_close)
{
	/* Each Block holds a memfd: the count comes back only if every Block was torn
	 * down (and a second teardown would be a double free). Thread stacks stay
	 * mapped, so mappings are not counted here. */
	int fds = count_fds();
	for (int round = 0; round < 50; round++) {
		unimem_block *b;
		cr_assert_eq(unimem_block_open(&b, 1 << 14, UNIMEM_BLOCK_UNPINNED), 0);
		unimem_view v;
		cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U32, 0, NULL), 0);
		enum { N = 8 };
		struct DLManagedTensor *t[N];
		pthread_t th[N];
		for (int i = 0; i < N; i++)
			cr_assert_eq(unimem_view_to_dlpack(&v, 0, &t[i]), 0);
		for (int i = 0; i < N; i++)
			cr_assert_eq(pthread_create(&th[i], NULL, run_deleter, t[i]), 0);
		unimem_block_close(b);
		for (int i = 0; i < N; i++)
			pthread_join(th[i], NULL);
	}
	cr_assert_eq(count_fds(), fds, "every Block torn down");
}

Test(view, device_export_without_a_gpu)
{
	if (unimem_gpu_count() > 0)
		cr_skip_test("a GPU is present: the gpu suite covers device exports");
	int fds = count_fds();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	void *p = unimem_block_ptr(b);
	unimem_view v;
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_F32, 0, NULL), 0);
	struct DLManagedTensor *t;
	cr_assert_eq(unimem_view_to_dlpack(&v, UNIMEM_VIEW_DEVICE, &t), -ENODEV);
	cr_assert_null(t);
	unimem_block_close(b); /* no hold was left behind: this unmaps */
	cr_assert_not(mapped(p));
	cr_assert_eq(count_fds(), fds);
}
