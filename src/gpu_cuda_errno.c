/* SPDX-License-Identifier: MIT */
/* The errno unimem returns for a CUDA driver result (for umi_cuda_fail, gpu_cuda.c). */
#include "weights_pvt.h"
#include "cuda_decls.h"

#include <errno.h>

int umi_cuda_errno(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_INVALID_VALUE:
	case CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED:
		return EINVAL;
	case CUDA_ERROR_OUT_OF_MEMORY:
		return ENOMEM;
	case CUDA_ERROR_NOT_INITIALIZED:
	case CUDA_ERROR_DEINITIALIZED:
	case CUDA_ERROR_STUB_LIBRARY:
	case CUDA_ERROR_INSUFFICIENT_DRIVER:
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_INVALID_DEVICE:
	case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
	case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
		return ENODEV;
	case CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED:
	case CUDA_ERROR_CONTEXT_ALREADY_IN_USE:
		return EBUSY;
	case CUDA_ERROR_NOT_PERMITTED:
		return EPERM;
	case CUDA_ERROR_NOT_SUPPORTED:
		return EOPNOTSUPP;
	default:
		return EIO;
	}
}
