/* SPDX-License-Identifier: MIT */
/* Device views: a kDLCUDA export carries the GPU address of the view's element, holds a
 * GPU mapping of its own, and outlives every other holder (suite 'gpu'; skipped without
 * a GPU). PyTorch reading through such a view: tests/python/test_torch_cuda.py. */
#include <unimem/unimem.h>

#include "dlpack_abi.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(view_gpu, device_export_points_at_the_same_pages)
{
	if (unimem_gpu_count() == 0)
		cr_skip_test("no GPU");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	unimem_view v;
	int64_t shape[2] = {16, 16};
	cr_assert_eq(unimem_view_init(&v, b, 8192, UNIMEM_DTYPE_F32, 2, shape), 0);
	struct DLManagedTensor *t;
	cr_assert_eq(unimem_view_to_dlpack(&v, UNIMEM_VIEW_DEVICE, &t), 0);
	umi_dl_managed_tensor *m = (umi_dl_managed_tensor *)t;
	void *dev;
	cr_assert_eq(unimem_gpu_ptr(b, unimem_view_ptr(&v), &dev), 0,
		     "the export maps the Block");
	cr_assert_eq(m->dl_tensor.data, dev);
	cr_assert_eq(m->dl_tensor.device.device_type, UMI_DL_CUDA);
	cr_assert_eq(m->dl_tensor.device.device_id, 0);
	cr_assert_eq(m->dl_tensor.byte_offset, 0);
	/* A map of the owner's own, and its unmap, leave the export's mapping alone. */
	void *base;
	cr_assert_eq(unimem_gpu_map(b, &base), 0);
	cr_assert_eq((unsigned char *)base + 8192, dev);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	cr_assert_eq(unimem_gpu_ptr(b, unimem_view_ptr(&v), &dev), 0);
	/* The owner closes; the export still holds the Block and its mapping. */
	float *host = unimem_view_ptr(&v);
	unimem_block_close(b);
	host[5] = 1.0f;
	m->deleter(m);
}

Test(view_gpu, host_and_device_exports_of_one_view)
{
	if (unimem_gpu_count() == 0)
		cr_skip_test("no GPU");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 16, UNIMEM_BLOCK_UNPINNED), 0);
	unimem_view v;
	cr_assert_eq(unimem_view_init(&v, b, 0, UNIMEM_DTYPE_U8, 0, NULL), 0);
	struct DLManagedTensor *h, *d;
	cr_assert_eq(unimem_view_to_dlpack(&v, 0, &h), 0);
	cr_assert_eq(unimem_view_to_dlpack(&v, UNIMEM_VIEW_DEVICE, &d), 0);
	cr_assert_eq(((umi_dl_managed_tensor *)h)->dl_tensor.device.device_type, UMI_DL_CPU);
	cr_assert_eq(((umi_dl_managed_tensor *)d)->dl_tensor.device.device_type, UMI_DL_CUDA);
	unimem_block_close(b);
	((umi_dl_managed_tensor *)d)->deleter((umi_dl_managed_tensor *)d);
	((umi_dl_managed_tensor *)h)->deleter((umi_dl_managed_tensor *)h);
}
