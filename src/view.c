/* SPDX-License-Identifier: MIT */
/* Views of Blocks as tensors, and their DLPack export. */
#include "block_pvt.h"
#include "view_pvt.h"
#include "dlpack_abi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dtype_info {
	const char *name;     /* safetensors spelling */
	uint8_t size;         /* bytes */
	uint8_t dl_code;      /* DLPack code; 0xff: none in DLPack 0.8 */
};

#define NO_DL 0xff

__extension__ typedef __int128 i128;

static const struct dtype_info dtypes[] = {
	[UNIMEM_DTYPE_BOOL] = {"BOOL", 1, UMI_DL_BOOL},
	[UNIMEM_DTYPE_U8] = {"U8", 1, UMI_DL_UINT},
	[UNIMEM_DTYPE_I8] = {"I8", 1, UMI_DL_INT},
	[UNIMEM_DTYPE_U16] = {"U16", 2, UMI_DL_UINT},
	[UNIMEM_DTYPE_I16] = {"I16", 2, UMI_DL_INT},
	[UNIMEM_DTYPE_U32] = {"U32", 4, UMI_DL_UINT},
	[UNIMEM_DTYPE_I32] = {"I32", 4, UMI_DL_INT},
	[UNIMEM_DTYPE_U64] = {"U64", 8, UMI_DL_UINT},
	[UNIMEM_DTYPE_I64] = {"I64", 8, UMI_DL_INT},
	[UNIMEM_DTYPE_F16] = {"F16", 2, UMI_DL_FLOAT},
	[UNIMEM_DTYPE_BF16] = {"BF16", 2, UMI_DL_BFLOAT},
	[UNIMEM_DTYPE_F32] = {"F32", 4, UMI_DL_FLOAT},
	[UNIMEM_DTYPE_F64] = {"F64", 8, UMI_DL_FLOAT},
	[UNIMEM_DTYPE_F8_E4M3] = {"F8_E4M3", 1, NO_DL},
	[UNIMEM_DTYPE_F8_E5M2] = {"F8_E5M2", 1, NO_DL},
};

#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

size_t unimem_dtype_size(int dtype)
{
	return dtype > 0 && (size_t)dtype < NDTYPES ? dtypes[dtype].size : 0;
}

const char *unimem_dtype_name(int dtype)
{
	return dtype > 0 && (size_t)dtype < NDTYPES ? dtypes[dtype].name : NULL;
}

int umi_dtype_from_name(const char *name, size_t len)
{
	for (size_t i = 1; i < NDTYPES; i++)
		if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0)
			return (int)i;
	return 0;
}

int unimem_view_init(unimem_view *v, const unimem_block *b, uint64_t offset, int dtype,
		     int ndim, const int64_t *shape)
{
	if (!v)
		return -EINVAL;
	memset(v, 0, sizeof *v);
	v->block = b;
	v->offset = offset;
	v->dtype = dtype;
	v->ndim = ndim;
	if (ndim < 0 || ndim > UNIMEM_VIEW_MAX_DIMS || (ndim > 0 && !shape))
		return -EINVAL;
	int64_t stride = 1;
	for (int i = ndim - 1; i >= 0; i--) {
		v->shape[i] = shape[i];
		v->strides[i] = stride;
		/* Strides past INT64_MAX only arise for views far larger than any Block:
		 * unimem_view_check() refuses those by their extent. */
		if (shape[i] > 1 && stride <= INT64_MAX / shape[i])
			stride *= shape[i];
		else if (shape[i] > 1)
			stride = INT64_MAX;
	}
	return unimem_view_check(v);
}

int unimem_view_check(const unimem_view *v)
{
	if (!v || !v->block || v->ndim < 0 || v->ndim > UNIMEM_VIEW_MAX_DIMS)
		return -EINVAL;
	size_t esize = unimem_dtype_size(v->dtype);
	if (!esize || v->offset % esize)
		return -EINVAL;
	uint64_t size = unimem_block_size(v->block);
	bool empty = false;
	for (int i = 0; i < v->ndim; i++) {
		if (v->shape[i] < 0)
			return -EINVAL;
		if (v->shape[i] == 0)
			empty = true;
	}
	if (empty)
		return v->offset <= size ? 0 : -ERANGE;
	/* The lowest and highest element reached, in elements from element 0. Each
	 * dimension's reach is checked against the Block's size first, so the sums of at
	 * most 8 of them stay far inside 128 bits. */
	i128 lo = 0, hi = 0;
	for (int i = 0; i < v->ndim; i++) {
		/* |shape - 1| < 2^63 and |stride| <= 2^63: the product fits 127 bits. */
		i128 reach = (i128)(v->shape[i] - 1) * v->strides[i];
		if (reach > (i128)size || reach < -(i128)size)
			return -ERANGE;
		if (reach < 0)
			lo += reach;
		else
			hi += reach;
	}
	i128 first = (i128)v->offset + lo * (i128)esize;
	i128 last = (i128)v->offset + hi * (i128)esize + (i128)esize;
	if (first < 0 || last > (i128)size)
		return -ERANGE;
	return 0;
}

void *unimem_view_ptr(const unimem_view *v)
{
	if (!v || !v->block)
		return NULL;
	return (unsigned char *)unimem_block_ptr(v->block) + v->offset;
}

uint64_t unimem_view_count(const unimem_view *v)
{
	if (!v || v->ndim < 0 || v->ndim > UNIMEM_VIEW_MAX_DIMS)
		return 0;
	uint64_t n = 1;
	for (int i = 0; i < v->ndim; i++) {
		if (v->shape[i] < 0)
			return 0;
		if (__builtin_mul_overflow(n, (uint64_t)v->shape[i], &n))
			return 0;
	}
	return n;
}

/* One allocation per export: the managed tensor, its shape and strides, and what the
 * deleter needs. */
struct export {
	umi_dl_managed_tensor managed;
	int64_t shape[UNIMEM_VIEW_MAX_DIMS];
	int64_t strides[UNIMEM_VIEW_MAX_DIMS];
	unimem_block *block;
	bool device;
};

static void export_delete(umi_dl_managed_tensor *self)
{
	if (!self)
		return;
	struct export *e = self->manager_ctx;
	if (e->device)
		unimem_gpu_unmap(e->block);
	unimem_block_close(e->block); /* this export's hold; the last one unmaps */
	free(e);
}

int unimem_view_to_dlpack(const unimem_view *v, unsigned flags, struct DLManagedTensor **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~(unsigned)UNIMEM_VIEW_DEVICE)
		return -EINVAL;
	int err = unimem_view_check(v);
	if (err)
		return err;
	const struct dtype_info *dt = &dtypes[v->dtype];
	if (dt->dl_code == NO_DL)
		return -ENOTSUP;

	struct export *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	unimem_block *b = (unimem_block *)v->block;
	void *host = unimem_view_ptr(v);
	void *data = host;
	if (flags & UNIMEM_VIEW_DEVICE) {
		void *dev_base;
		err = unimem_gpu_map(b, &dev_base);
		if (!err) {
			err = unimem_gpu_ptr(b, host, &data);
			if (err)
				unimem_gpu_unmap(b);
		}
		if (err) {
			free(e);
			return err;
		}
		e->device = true;
	}
	umi_block_retain(b);
	e->block = b;
	for (int i = 0; i < v->ndim; i++) {
		e->shape[i] = v->shape[i];
		e->strides[i] = v->strides[i];
	}
	umi_dl_tensor *t = &e->managed.dl_tensor;
	/* The element's own address with byte_offset 0: what PyTorch, NumPy and CuPy
	 * produce, and what consumers that ignore byte_offset need. */
	t->data = data;
	t->byte_offset = 0;
	t->device.device_type = e->device ? UMI_DL_CUDA : UMI_DL_CPU;
	t->device.device_id = 0;
	t->ndim = v->ndim;
	t->dtype.code = dt->dl_code;
	t->dtype.bits = (uint8_t)(dt->size * 8);
	t->dtype.lanes = 1;
	/* A scalar still gets valid (unused) arrays: some consumers read them. */
	t->shape = e->shape;
	t->strides = e->strides;
	e->managed.manager_ctx = e;
	e->managed.deleter = export_delete;
	*out = (struct DLManagedTensor *)&e->managed;
	return 0;
}
