/* SPDX-License-Identifier: MIT */
/* unimem views: part of a Block seen as a tensor (offset, element type, shape, strides),
 * handed to other frameworks as a DLPack managed tensor with no copy: NumPy, PyTorch,
 * CuPy, JAX and every other DLPack consumer see the very same pages.
 *
 *     unimem_view v;
 *     int64_t shape[2] = {rows, cols};
 *     unimem_view_init(&v, block, offset, UNIMEM_DTYPE_F32, 2, shape);
 *     struct DLManagedTensor *t;
 *     unimem_view_to_dlpack(&v, 0, &t);                  // kDLCPU, the host pointer
 *     unimem_view_to_dlpack(&v, UNIMEM_VIEW_DEVICE, &t); // kDLCUDA, the device pointer
 *     ... hand t to the consumer; it calls t->deleter(t) when done.
 *
 * DLPack is declared here, not defined: include <dlpack/dlpack.h> (or a framework's
 * copy of it) to read the fields. What unimem_view_to_dlpack() makes follows the DLPack
 * 0.8 ABI (DLManagedTensor), which every later DLPack keeps for its unversioned tensor. */
#ifndef UNIMEM_VIEW_H
#define UNIMEM_VIEW_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

struct DLManagedTensor;

/* Element types. Numbering is unimem's own (0 is no type); unimem_view_to_dlpack()
 * translates to DLPack's (code, bits, lanes). The names follow safetensors. */
typedef enum unimem_dtype {
	UNIMEM_DTYPE_BOOL = 1,
	UNIMEM_DTYPE_U8,
	UNIMEM_DTYPE_I8,
	UNIMEM_DTYPE_U16,
	UNIMEM_DTYPE_I16,
	UNIMEM_DTYPE_U32,
	UNIMEM_DTYPE_I32,
	UNIMEM_DTYPE_U64,
	UNIMEM_DTYPE_I64,
	UNIMEM_DTYPE_F16,
	UNIMEM_DTYPE_BF16,
	UNIMEM_DTYPE_F32,
	UNIMEM_DTYPE_F64,
	UNIMEM_DTYPE_F8_E4M3,  /* no DLPack 0.8 code: views of it do not export */
	UNIMEM_DTYPE_F8_E5M2,  /* no DLPack 0.8 code: views of it do not export */
} unimem_dtype;

/* Most dimensions a view has. */
#define UNIMEM_VIEW_MAX_DIMS 8

/* A tensor inside a Block. Plain data that the caller owns (copy it, keep it on the
 * stack): it holds no reference, and it is only as valid as its Block. Fill it with
 * unimem_view_init(), then change strides if the layout is not row-major.
 * ABI: the layout is fixed; changing it bumps the soversion. */
typedef struct unimem_view {
	const unimem_block *block;
	uint64_t offset;   /* bytes from the Block's start to element [0, ..., 0] */
	int32_t dtype;     /* unimem_dtype */
	int32_t ndim;      /* 0 (a scalar) to UNIMEM_VIEW_MAX_DIMS */
	int64_t shape[UNIMEM_VIEW_MAX_DIMS];
	int64_t strides[UNIMEM_VIEW_MAX_DIMS]; /* in elements, as DLPack counts them */
} unimem_view;

/* Flags of unimem_view_to_dlpack(). */
enum {
	/* A kDLCUDA tensor with the GPU's address of the same pages (the Block is mapped
	 * with unimem_gpu_map() until the deleter runs), instead of a kDLCPU one. */
	UNIMEM_VIEW_DEVICE = 1u << 0,
};

/* Bytes of one element of `dtype`; 0 for a value that is no unimem_dtype. */
UNIMEM_API size_t unimem_dtype_size(int dtype);

/* The safetensors name of `dtype` ("F32", "BF16", ...); NULL for an unknown value. */
UNIMEM_API const char *unimem_dtype_name(int dtype);

/* Fill *v: `ndim` dimensions of `shape`, row-major (C order) strides, element [0, ...]
 * at byte `offset` of Block b. shape may be NULL when ndim is 0. Returns 0, or
 * -EINVAL / -ERANGE as unimem_view_check() (*v is filled all the same, for messages).
 * Thread-safe. */
UNIMEM_API int unimem_view_init(unimem_view *v, const unimem_block *b, uint64_t offset,
				int dtype, int ndim, const int64_t *shape);

/* Check a view: 0 when every element lies inside its Block, or
 *   -EINVAL  v or its Block is NULL, an unknown dtype, ndim outside 0..8, a negative
 *            dimension, or an offset not a multiple of the element size
 *   -ERANGE  an element reaches outside the Block (strides may be negative or 0)
 * A view with a zero dimension holds no element and only needs offset <= the size.
 * Thread-safe. */
UNIMEM_API int unimem_view_check(const unimem_view *v);

/* Host address of element [0, ..., 0], or NULL when v or its Block is NULL. */
UNIMEM_API void *unimem_view_ptr(const unimem_view *v);

/* Elements in the view (the product of its shape; 1 for a scalar); 0 when v is NULL
 * or the product overflows. */
UNIMEM_API uint64_t unimem_view_count(const unimem_view *v);

/* Export the view as a DLPack managed tensor (DLPack 0.8 DLManagedTensor) in *out
 * (NULL on failure): data is the element's own address (byte_offset 0), shape and
 * strides are the view's (strides always given), device kDLCPU with id 0, or with
 * UNIMEM_VIEW_DEVICE kDLCUDA with id 0 and the GPU address from unimem_gpu_map().
 * The tensor holds the Block: unimem_block_close() (or the close of the Tape or Layout
 * that owns it) leaves the memory mapped until the tensor's deleter has run, so the
 * consumer may outlive every other holder. Each export is one holder and one GPU
 * mapping reference; call its deleter exactly once (consumers do).
 * Returns 0, or -EINVAL / -ERANGE as unimem_view_check() (out NULL, unknown flags:
 * -EINVAL), -ENOTSUP (an element type DLPack 0.8 has no code for), -ENOMEM, or what
 * unimem_gpu_map() returns (-ENODEV without a GPU). Thread-safe; the deleter may run on
 * any thread, also after every other holder closed the Block. */
UNIMEM_API int unimem_view_to_dlpack(const unimem_view *v, unsigned flags,
				     struct DLManagedTensor **out);

UNIMEM_END_DECLS

#endif
