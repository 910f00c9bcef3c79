/* SPDX-License-Identifier: MIT */
/* src/dlpack_abi.h (our own declarations of DLPack 0.8) against the DLPack header of the
 * system (Debian's libdlpack-dev): every size, offset and value the library uses must
 * agree. All checks are at compile time; built only where <dlpack/dlpack.h> exists. */
#include <dlpack/dlpack.h>
#include <stddef.h>

#include "dlpack_abi.h"

#define SAME_FIELD(a, b, f) \
	_Static_assert(offsetof(a, f) == offsetof(b, f) && sizeof(((a *)0)->f) == sizeof(((b *)0)->f), \
		       #a "." #f " differs")

_Static_assert(sizeof(DLDevice) == sizeof(umi_dl_device), "DLDevice");
_Static_assert(offsetof(DLDevice, device_id) == offsetof(umi_dl_device, device_id), "DLDevice");
_Static_assert(sizeof(DLDataType) == sizeof(umi_dl_data_type), "DLDataType");
SAME_FIELD(DLDataType, umi_dl_data_type, code);
SAME_FIELD(DLDataType, umi_dl_data_type, bits);
SAME_FIELD(DLDataType, umi_dl_data_type, lanes);
_Static_assert(sizeof(DLTensor) == sizeof(umi_dl_tensor), "DLTensor");
SAME_FIELD(DLTensor, umi_dl_tensor, data);
SAME_FIELD(DLTensor, umi_dl_tensor, device);
SAME_FIELD(DLTensor, umi_dl_tensor, ndim);
SAME_FIELD(DLTensor, umi_dl_tensor, dtype);
SAME_FIELD(DLTensor, umi_dl_tensor, shape);
SAME_FIELD(DLTensor, umi_dl_tensor, strides);
SAME_FIELD(DLTensor, umi_dl_tensor, byte_offset);
_Static_assert(sizeof(DLManagedTensor) == sizeof(umi_dl_managed_tensor), "DLManagedTensor");
SAME_FIELD(DLManagedTensor, umi_dl_managed_tensor, dl_tensor);
SAME_FIELD(DLManagedTensor, umi_dl_managed_tensor, manager_ctx);
SAME_FIELD(DLManagedTensor, umi_dl_managed_tensor, deleter);

_Static_assert((int)kDLCPU == UMI_DL_CPU && (int)kDLCUDA == UMI_DL_CUDA && (int)kDLCUDAHost == UMI_DL_CUDA_HOST &&
		       (int)kDLCUDAManaged == UMI_DL_CUDA_MANAGED, "device types");
_Static_assert((int)kDLInt == UMI_DL_INT && (int)kDLUInt == UMI_DL_UINT && (int)kDLFloat == UMI_DL_FLOAT &&
		       (int)kDLOpaqueHandle == UMI_DL_OPAQUE_HANDLE && (int)kDLBfloat == UMI_DL_BFLOAT &&
		       (int)kDLComplex == UMI_DL_COMPLEX, "type codes");
#if defined(DLPACK_VERSION) && DLPACK_VERSION >= 80
_Static_assert((int)kDLBool == UMI_DL_BOOL, "kDLBool");
#endif

int main(void)
{
	return 0;
}
