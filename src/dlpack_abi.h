/* SPDX-License-Identifier: MIT */
/* DLPack 0.8, the unversioned ABI (DLManagedTensor), declared from the specification
 * (github.com/dmlc/dlpack, include/dlpack/dlpack.h and docs) under names of our own, so
 * that the library builds without a DLPack header and never clashes with a consumer's.
 * tests/test_dlpack_abi.c checks every size, offset and value against Debian's
 * <dlpack/dlpack.h> where libdlpack-dev is installed. Never installed. */
#ifndef UNIMEM_DLPACK_ABI_H
#define UNIMEM_DLPACK_ABI_H

#include <stdint.h>

/* DLDeviceType: a C enum (int sized) in the specification. */
enum {
	UMI_DL_CPU = 1,
	UMI_DL_CUDA = 2,
	UMI_DL_CUDA_HOST = 3,   /* rejected by PyTorch and CuPy: never produced */
	UMI_DL_CUDA_MANAGED = 13,
};

/* DLDataTypeCode */
enum {
	UMI_DL_INT = 0,
	UMI_DL_UINT = 1,
	UMI_DL_FLOAT = 2,
	UMI_DL_OPAQUE_HANDLE = 3,
	UMI_DL_BFLOAT = 4,
	UMI_DL_COMPLEX = 5,
	UMI_DL_BOOL = 6,        /* new in 0.8 */
};

typedef struct {
	int device_type;   /* DLDeviceType */
	int32_t device_id;
} umi_dl_device;

typedef struct {
	uint8_t code;
	uint8_t bits;
	uint16_t lanes;
} umi_dl_data_type;

typedef struct {
	void *data;
	umi_dl_device device;
	int32_t ndim;
	umi_dl_data_type dtype;
	int64_t *shape;
	int64_t *strides;      /* in elements; NULL would mean compact row-major */
	uint64_t byte_offset;
} umi_dl_tensor;

typedef struct umi_dl_managed_tensor {
	umi_dl_tensor dl_tensor;
	void *manager_ctx;
	void (*deleter)(struct umi_dl_managed_tensor *self);
} umi_dl_managed_tensor;

#endif
