/* SPDX-License-Identifier: MIT */
/* The few CUDA driver API types and values unimem uses, declared here so that nothing
 * needs cuda.h: the driver is loaded at run time (gpu_cuda.c), and the tests and the GPU
 * benchmark load it the same way (tests/lib/cuda_driver.h includes this header). Private:
 * never installed. Values are those of cuda.h (CUDA 12/13). */
#ifndef UNIMEM_CUDA_DECLS_H
#define UNIMEM_CUDA_DECLS_H

#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef unsigned long long CUdeviceptr;

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_DEINITIALIZED = 4,
	CUDA_ERROR_STUB_LIBRARY = 34,
	CUDA_ERROR_INSUFFICIENT_DRIVER = 35,
	CUDA_ERROR_NO_DEVICE = 100,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_CONTEXT_ALREADY_IN_USE = 216,
	CUDA_ERROR_OPERATING_SYSTEM = 304,
	CUDA_ERROR_NOT_READY = 600,
	CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
	CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
	CUDA_ERROR_NOT_PERMITTED = 800,
	CUDA_ERROR_NOT_SUPPORTED = 801,
	CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
	CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
};

#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY 19
#define CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING 41
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_MEMHOSTALLOC_PORTABLE 0x01u
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02u
#define CU_MEMHOSTREGISTER_PORTABLE 0x01u
#define CU_MEMHOSTREGISTER_DEVICEMAP 0x02u
#define CU_EVENT_DEFAULT 0x0u
#define CU_EVENT_DISABLE_TIMING 0x2u
#define CU_STREAM_NON_BLOCKING 0x1u

/* The driver entry points unimem calls (gpu_cuda.c loads them; weights.c streams with
 * them). Each is the _v2 symbol where the driver has one. */
struct umi_cuda {
	CUresult (*init)(unsigned flags);
	CUresult (*device_get_count)(int *count);
	CUresult (*device_get)(CUdevice *dev, int ordinal);
	CUresult (*primary_retain)(CUcontext *ctx, CUdevice dev);
	CUresult (*primary_release)(CUdevice dev);
	CUresult (*ctx_push)(CUcontext ctx);
	CUresult (*ctx_pop)(CUcontext *ctx);
	CUresult (*host_register)(void *p, size_t bytes, unsigned flags);
	CUresult (*host_device_pointer)(CUdeviceptr *dev, void *p, unsigned flags);
	CUresult (*host_unregister)(void *p);
	CUresult (*error_string)(CUresult r, const char **s);
	CUresult (*error_name)(CUresult r, const char **s);
	/* Streaming loads (weights.c). */
	CUresult (*mem_alloc)(CUdeviceptr *dev, size_t bytes);
	CUresult (*mem_free)(CUdeviceptr dev);
	CUresult (*memcpy_htod_async)(CUdeviceptr dst, const void *src, size_t bytes,
				      CUstream s);
	CUresult (*stream_create)(CUstream *s, unsigned flags);
	CUresult (*stream_destroy)(CUstream s);
	CUresult (*stream_synchronize)(CUstream s);
	CUresult (*event_create)(CUevent *e, unsigned flags);
	CUresult (*event_record)(CUevent e, CUstream s);
	CUresult (*event_synchronize)(CUevent e);
	CUresult (*event_destroy)(CUevent e);
	CUresult (*pointer_get_attribute)(void *data, int attribute, CUdeviceptr p);
};

#define CU_POINTER_ATTRIBUTE_MEMORY_TYPE 2
#define CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL 9
#define CU_POINTER_ATTRIBUTE_RANGE_START_ADDR 11
#define CU_POINTER_ATTRIBUTE_RANGE_SIZE 12
#define CU_MEMORYTYPE_HOST 1
#define CU_MEMORYTYPE_DEVICE 2

#endif
