/* SPDX-License-Identifier: MIT */
/* A fake libcuda.so.1 for test_weights_fake.c: the driver entry points unimem loads, on
 * host memory, strict where a real driver is and stricter where a test needs it to be:
 * asynchronous copies are queued on their stream and run only when an event after them
 * or the stream is synchronised (so a source overwritten too early shows in the result),
 * and a copy from memory that is not registered fails. It counts what is held (contexts
 * retained, registrations, allocations) for the test to check that nothing is left.
 * FAKE_CUDA_MEM (bytes) limits the device memory. */
#include "cuda_decls.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int ctx_depth;
static int retained;

struct range {
	uintptr_t p;
	size_t n;
	int device; /* 1: device memory, 0: host registration */
};
static struct range ranges[4096];
static size_t nranges;
static size_t device_bytes;

struct op {
	void *dst;
	const void *src;
	size_t n;
};
struct CUstream_st {
	struct op *ops;
	size_t n, cap, done;
};
struct CUevent_st {
	struct CUstream_st *s;
	size_t at;
};

API int fake_cuda_held(int what)
{
	pthread_mutex_lock(&lock);
	int n = 0;
	for (size_t i = 0; i < nranges; i++)
		n += ranges[i].device == what;
	if (what == 2)
		n = retained;
	pthread_mutex_unlock(&lock);
	return n;
}

API CUresult cuInit(unsigned f) { (void)f; return CUDA_SUCCESS; }
API CUresult cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }
API CUresult cuDeviceGet(CUdevice *d, int i)
{
	if (i != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = 0;
	return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d)
{
	(void)d;
	pthread_mutex_lock(&lock);
	retained++;
	pthread_mutex_unlock(&lock);
	*c = (CUcontext)(uintptr_t)0x1000;
	return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d)
{
	(void)d;
	pthread_mutex_lock(&lock);
	int r = retained > 0 ? (retained--, CUDA_SUCCESS) : CUDA_ERROR_INVALID_CONTEXT;
	pthread_mutex_unlock(&lock);
	return r;
}
API CUresult cuCtxPushCurrent_v2(CUcontext c) { (void)c; ctx_depth++; return CUDA_SUCCESS; }
API CUresult cuCtxPopCurrent_v2(CUcontext *c)
{
	if (!ctx_depth)
		return CUDA_ERROR_INVALID_CONTEXT;
	ctx_depth--;
	if (c)
		*c = (CUcontext)(uintptr_t)0x1000;
	return CUDA_SUCCESS;
}

static int add_range(uintptr_t p, size_t n, int device)
{
	if (nranges == sizeof ranges / sizeof ranges[0])
		return -1;
	ranges[nranges++] = (struct range){ p, n, device };
	return 0;
}

static long find_range(uintptr_t p, int device)
{
	for (size_t i = 0; i < nranges; i++)
		if (ranges[i].device == device && p >= ranges[i].p && p < ranges[i].p + ranges[i].n)
			return (long)i;
	return -1;
}

static void drop_range(size_t i)
{
	ranges[i] = ranges[--nranges];
}

API CUresult cuMemHostRegister_v2(void *p, size_t n, unsigned f)
{
	(void)f;
	pthread_mutex_lock(&lock);
	CUresult r = find_range((uintptr_t)p, 0) >= 0 ? CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED :
		     add_range((uintptr_t)p, n, 0) ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
	pthread_mutex_unlock(&lock);
	return r;
}
API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *d, void *p, unsigned f)
{
	(void)f;
	*d = (CUdeviceptr)(uintptr_t)p;
	return CUDA_SUCCESS;
}
API CUresult cuMemHostUnregister(void *p)
{
	pthread_mutex_lock(&lock);
	long i = find_range((uintptr_t)p, 0);
	if (i >= 0 && ranges[i].p == (uintptr_t)p)
		drop_range((size_t)i);
	pthread_mutex_unlock(&lock);
	return i >= 0 ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}
API CUresult cuGetErrorString(CUresult r, const char **s) { (void)r; *s = "fake error"; return CUDA_SUCCESS; }
API CUresult cuGetErrorName(CUresult r, const char **s)
{
	*s = r == CUDA_ERROR_OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA_ERROR_FAKE";
	return CUDA_SUCCESS;
}
API CUresult cuMemAlloc_v2(CUdeviceptr *d, size_t n)
{
	const char *lim = getenv("FAKE_CUDA_MEM");
	pthread_mutex_lock(&lock);
	CUresult r = CUDA_SUCCESS;
	void *p = NULL;
	if (lim && device_bytes + n > strtoull(lim, NULL, 0))
		r = CUDA_ERROR_OUT_OF_MEMORY;
	else if (!(p = aligned_alloc(256, (n + 255) / 256 * 256)) || add_range((uintptr_t)p, n, 1))
		r = CUDA_ERROR_OUT_OF_MEMORY;
	if (r == CUDA_SUCCESS) {
		device_bytes += n;
		*d = (CUdeviceptr)(uintptr_t)p;
	} else {
		free(p);
	}
	pthread_mutex_unlock(&lock);
	return r;
}
API CUresult cuMemFree_v2(CUdeviceptr d)
{
	pthread_mutex_lock(&lock);
	long i = find_range((uintptr_t)d, 1);
	if (i >= 0) {
		device_bytes -= ranges[i].n;
		drop_range((size_t)i);
		free((void *)(uintptr_t)d);
	}
	pthread_mutex_unlock(&lock);
	return i >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
	if (!ctx_depth)
		return CUDA_ERROR_INVALID_CONTEXT;
	pthread_mutex_lock(&lock);
	long h = find_range((uintptr_t)src, 0), d = find_range((uintptr_t)dst, 1);
	CUresult r = CUDA_SUCCESS;
	if (h < 0 || (uintptr_t)src + n > ranges[h].p + ranges[h].n)
		r = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED; /* stricter than a driver: tests the ring */
	else if (d < 0 || dst + n > ranges[d].p + ranges[d].n)
		r = CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_unlock(&lock);
	if (r)
		return r;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->ops = realloc(s->ops, s->cap * sizeof *s->ops);
	}
	s->ops[s->n++] = (struct op){ (void *)(uintptr_t)dst, src, n };
	return CUDA_SUCCESS;
}
API CUresult cuStreamCreate(CUstream *s, unsigned f)
{
	(void)f;
	*s = calloc(1, sizeof **s);
	return *s ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
static void run_to(CUstream s, size_t at)
{
	for (; s->done < at; s->done++)
		memcpy(s->ops[s->done].dst, s->ops[s->done].src, s->ops[s->done].n);
}
API CUresult cuStreamSynchronize(CUstream s) { run_to(s, s->n); return CUDA_SUCCESS; }
API CUresult cuStreamDestroy_v2(CUstream s)
{
	run_to(s, s->n);
	free(s->ops);
	free(s);
	return CUDA_SUCCESS;
}
API CUresult cuEventCreate(CUevent *e, unsigned f)
{
	(void)f;
	*e = calloc(1, sizeof **e);
	return *e ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
API CUresult cuEventRecord(CUevent e, CUstream s)
{
	e->s = s;
	e->at = s->n;
	return CUDA_SUCCESS;
}
API CUresult cuEventSynchronize(CUevent e)
{
	if (e->s)
		run_to(e->s, e->at);
	return CUDA_SUCCESS;
}
API CUresult cuEventDestroy_v2(CUevent e) { free(e); return CUDA_SUCCESS; }
API CUresult cuPointerGetAttribute(void *data, int attr, CUdeviceptr p)
{
	pthread_mutex_lock(&lock);
	long i = find_range((uintptr_t)p, 1);
	CUresult r = i < 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
	if (!r) {
		if (attr == CU_POINTER_ATTRIBUTE_MEMORY_TYPE)
			*(unsigned *)data = CU_MEMORYTYPE_DEVICE;
		else if (attr == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL)
			*(int *)data = 0;
		else if (attr == CU_POINTER_ATTRIBUTE_RANGE_START_ADDR)
			*(CUdeviceptr *)data = ranges[i].p;
		else if (attr == CU_POINTER_ATTRIBUTE_RANGE_SIZE)
			*(size_t *)data = ranges[i].n;
		else
			r = CUDA_ERROR_INVALID_VALUE;
	}
	pthread_mutex_unlock(&lock);
	return r;
}
