/* SPDX-License-Identifier: MIT */
/* The CUDA driver API for the GPU tests and benchmark, loaded with dlopen like unimem
 * loads it: no CUDA header, library or nvcc is needed to build. Kernels are PTX text. */
#ifndef UNIMEM_TEST_CUDA_DRIVER_H
#define UNIMEM_TEST_CUDA_DRIVER_H

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* The types and values: the library's own declarations (src/, on the include path). */
#include "cuda_decls.h"

struct cuda_driver {
	CUresult (*cuInit)(unsigned);
	CUresult (*cuDriverGetVersion)(int *);
	CUresult (*cuDeviceGetCount)(int *);
	CUresult (*cuDeviceGet)(CUdevice *, int);
	CUresult (*cuDeviceGetName)(char *, int, CUdevice);
	CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
	CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
	CUresult (*cuCtxCreate)(CUcontext *, unsigned, CUdevice);
	CUresult (*cuCtxDestroy)(CUcontext);
	CUresult (*cuCtxGetCurrent)(CUcontext *);
	CUresult (*cuCtxSetCurrent)(CUcontext);
	CUresult (*cuCtxPushCurrent)(CUcontext);
	CUresult (*cuCtxPopCurrent)(CUcontext *);
	CUresult (*cuCtxSynchronize)(void);
	CUresult (*cuModuleLoadData)(CUmodule *, const void *);
	CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*cuModuleUnload)(CUmodule);
	CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
				   unsigned, unsigned, CUstream, void **, void **);
	CUresult (*cuMemHostRegister)(void *, size_t, unsigned);
	CUresult (*cuMemHostUnregister)(void *);
	CUresult (*cuMemHostGetDevicePointer)(CUdeviceptr *, void *, unsigned);
	CUresult (*cuMemHostAlloc)(void **, size_t, unsigned);
	CUresult (*cuMemFreeHost)(void *);
	CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
	CUresult (*cuMemFree)(CUdeviceptr);
	CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
	CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*cuMemGetInfo)(size_t *, size_t *);
	CUresult (*cuEventCreate)(CUevent *, unsigned);
	CUresult (*cuEventRecord)(CUevent, CUstream);
	CUresult (*cuEventSynchronize)(CUevent);
	CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
	CUresult (*cuEventDestroy)(CUevent);
	CUresult (*cuGetErrorName)(CUresult, const char **);
};

/* Load the driver into *d. Returns 0, or -1 with a reason in why. */
static inline int cuda_driver_load(struct cuda_driver *d, char *why, size_t why_len)
{
	memset(d, 0, sizeof *d);
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, why_len, "libcuda.so.1 could not be loaded");
		return -1;
	}
	static const struct {
		const char *a, *b;
		size_t at;
	} fns[] = {
#define F(f, a, b) { a, b, offsetof(struct cuda_driver, f) }
		F(cuInit, "cuInit", NULL),
		F(cuDriverGetVersion, "cuDriverGetVersion", NULL),
		F(cuDeviceGetCount, "cuDeviceGetCount", NULL),
		F(cuDeviceGet, "cuDeviceGet", NULL),
		F(cuDeviceGetName, "cuDeviceGetName", NULL),
		F(cuDeviceGetAttribute, "cuDeviceGetAttribute", NULL),
		F(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL),
		F(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"),
		F(cuCtxCreate, "cuCtxCreate_v2", "cuCtxCreate"),
		F(cuCtxDestroy, "cuCtxDestroy_v2", NULL),
		F(cuCtxGetCurrent, "cuCtxGetCurrent", NULL),
		F(cuCtxSetCurrent, "cuCtxSetCurrent", NULL),
		F(cuCtxPushCurrent, "cuCtxPushCurrent_v2", NULL),
		F(cuCtxPopCurrent, "cuCtxPopCurrent_v2", NULL),
		F(cuCtxSynchronize, "cuCtxSynchronize", NULL),
		F(cuModuleLoadData, "cuModuleLoadData", NULL),
		F(cuModuleGetFunction, "cuModuleGetFunction", NULL),
		F(cuModuleUnload, "cuModuleUnload", NULL),
		F(cuLaunchKernel, "cuLaunchKernel", NULL),
		F(cuMemHostRegister, "cuMemHostRegister_v2", NULL),
		F(cuMemHostUnregister, "cuMemHostUnregister", NULL),
		F(cuMemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2", NULL),
		F(cuMemHostAlloc, "cuMemHostAlloc", NULL),
		F(cuMemFreeHost, "cuMemFreeHost", NULL),
		F(cuMemAlloc, "cuMemAlloc_v2", NULL),
		F(cuMemFree, "cuMemFree_v2", NULL),
		F(cuMemcpyHtoD, "cuMemcpyHtoD_v2", NULL),
		F(cuMemcpyDtoH, "cuMemcpyDtoH_v2", NULL),
		F(cuMemGetInfo, "cuMemGetInfo_v2", NULL),
		F(cuEventCreate, "cuEventCreate", NULL),
		F(cuEventRecord, "cuEventRecord", NULL),
		F(cuEventSynchronize, "cuEventSynchronize", NULL),
		F(cuEventElapsedTime, "cuEventElapsedTime", "cuEventElapsedTime_v2"),
		F(cuEventDestroy, "cuEventDestroy_v2", NULL),
		F(cuGetErrorName, "cuGetErrorName", NULL),
#undef F
	};
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		void *p = dlsym(h, fns[i].a);
		if (!p && fns[i].b)
			p = dlsym(h, fns[i].b);
		if (!p) {
			snprintf(why, why_len, "libcuda.so.1 lacks %s", fns[i].a);
			return -1;
		}
		memcpy((char *)d + fns[i].at, &p, sizeof p);
	}
	int n = 0;
	CUresult r = d->cuInit(0);
	if (r == CUDA_SUCCESS)
		r = d->cuDeviceGetCount(&n);
	if (r != CUDA_SUCCESS || n < 1) {
		snprintf(why, why_len, "cuInit/cuDeviceGetCount: %d, %d devices", r, n);
		return -1;
	}
	return 0;
}

static inline const char *cuda_error_name(const struct cuda_driver *d, CUresult r)
{
	const char *s = NULL;
	if (d->cuGetErrorName)
		d->cuGetErrorName(r, &s);
	return s ? s : "?";
}

/* The kernels, as PTX for any sm_XY: %s is the .version and .target lines.
 *   affine(x, y, n, a, b):  y[i] = a * x[i] + b                   (f32, grid-stride)
 *   muladd(x, w, y, n):     y[i] = x[i] * w[i] + y[i]              (f32, grid-stride)
 *   rd(p, n16, out):        reads n16 16-byte vectors, xor-folds them, stores the
 *                           fold to *out only when it equals a magic value
 *   wr(p, n16, v):          writes v to n16 16-byte vectors */
static const char cuda_kernels_ptx[] =
	"%s\n"
	".address_size 64\n"
	"\n"
	".visible .entry affine(.param .u64 x_p, .param .u64 y_p, .param .u32 n_p,\n"
	"                       .param .f32 a_p, .param .f32 b_p)\n"
	"{\n"
	"  .reg .pred %%p;\n"
	"  .reg .b32 %%r<8>;\n"
	"  .reg .f32 %%f<4>;\n"
	"  .reg .b64 %%rd<8>;\n"
	"  ld.param.u64 %%rd1, [x_p];\n"
	"  ld.param.u64 %%rd2, [y_p];\n"
	"  ld.param.u32 %%r1, [n_p];\n"
	"  ld.param.f32 %%f1, [a_p];\n"
	"  ld.param.f32 %%f2, [b_p];\n"
	"  cvta.to.global.u64 %%rd1, %%rd1;\n"
	"  cvta.to.global.u64 %%rd2, %%rd2;\n"
	"  mov.u32 %%r2, %%ctaid.x;\n"
	"  mov.u32 %%r3, %%ntid.x;\n"
	"  mov.u32 %%r4, %%tid.x;\n"
	"  mad.lo.s32 %%r5, %%r2, %%r3, %%r4;\n"
	"  mov.u32 %%r6, %%nctaid.x;\n"
	"  mul.lo.s32 %%r6, %%r6, %%r3;\n"
	"AF_LOOP:\n"
	"  setp.ge.u32 %%p, %%r5, %%r1;\n"
	"  @%%p bra AF_DONE;\n"
	"  mul.wide.u32 %%rd3, %%r5, 4;\n"
	"  add.s64 %%rd4, %%rd1, %%rd3;\n"
	"  ld.global.f32 %%f3, [%%rd4];\n"
	"  fma.rn.f32 %%f3, %%f3, %%f1, %%f2;\n"
	"  add.s64 %%rd5, %%rd2, %%rd3;\n"
	"  st.global.f32 [%%rd5], %%f3;\n"
	"  add.u32 %%r5, %%r5, %%r6;\n"
	"  bra AF_LOOP;\n"
	"AF_DONE:\n"
	"  ret;\n"
	"}\n"
	"\n"
	".visible .entry muladd(.param .u64 x_p, .param .u64 w_p, .param .u64 y_p,\n"
	"                       .param .u32 n_p)\n"
	"{\n"
	"  .reg .pred %%p;\n"
	"  .reg .b32 %%r<8>;\n"
	"  .reg .f32 %%f<4>;\n"
	"  .reg .b64 %%rd<10>;\n"
	"  ld.param.u64 %%rd1, [x_p];\n"
	"  ld.param.u64 %%rd2, [w_p];\n"
	"  ld.param.u64 %%rd3, [y_p];\n"
	"  ld.param.u32 %%r1, [n_p];\n"
	"  cvta.to.global.u64 %%rd1, %%rd1;\n"
	"  cvta.to.global.u64 %%rd2, %%rd2;\n"
	"  cvta.to.global.u64 %%rd3, %%rd3;\n"
	"  mov.u32 %%r2, %%ctaid.x;\n"
	"  mov.u32 %%r3, %%ntid.x;\n"
	"  mov.u32 %%r4, %%tid.x;\n"
	"  mad.lo.s32 %%r5, %%r2, %%r3, %%r4;\n"
	"  mov.u32 %%r6, %%nctaid.x;\n"
	"  mul.lo.s32 %%r6, %%r6, %%r3;\n"
	"MA_LOOP:\n"
	"  setp.ge.u32 %%p, %%r5, %%r1;\n"
	"  @%%p bra MA_DONE;\n"
	"  mul.wide.u32 %%rd4, %%r5, 4;\n"
	"  add.s64 %%rd5, %%rd1, %%rd4;\n"
	"  ld.global.f32 %%f1, [%%rd5];\n"
	"  add.s64 %%rd6, %%rd2, %%rd4;\n"
	"  ld.global.f32 %%f2, [%%rd6];\n"
	"  add.s64 %%rd7, %%rd3, %%rd4;\n"
	"  ld.global.f32 %%f3, [%%rd7];\n"
	"  fma.rn.f32 %%f3, %%f1, %%f2, %%f3;\n"
	"  st.global.f32 [%%rd7], %%f3;\n"
	"  add.u32 %%r5, %%r5, %%r6;\n"
	"  bra MA_LOOP;\n"
	"MA_DONE:\n"
	"  ret;\n"
	"}\n"
	"\n"
	".visible .entry rd(.param .u64 p_p, .param .u64 n_p, .param .u64 out_p)\n"
	"{\n"
	"  .reg .pred %%p;\n"
	"  .reg .b32 %%r<12>;\n"
	"  .reg .b64 %%rd<12>;\n"
	"  ld.param.u64 %%rd1, [p_p];\n"
	"  ld.param.u64 %%rd2, [n_p];\n"
	"  ld.param.u64 %%rd3, [out_p];\n"
	"  cvta.to.global.u64 %%rd1, %%rd1;\n"
	"  cvta.to.global.u64 %%rd3, %%rd3;\n"
	"  mov.u32 %%r1, %%ctaid.x;\n"
	"  mov.u32 %%r2, %%ntid.x;\n"
	"  mov.u32 %%r3, %%tid.x;\n"
	"  mov.u32 %%r4, %%nctaid.x;\n"
	"  mul.wide.u32 %%rd4, %%r1, %%r2;\n"
	"  cvt.u64.u32 %%rd5, %%r3;\n"
	"  add.u64 %%rd4, %%rd4, %%rd5;\n"
	"  mul.wide.u32 %%rd6, %%r4, %%r2;\n"
	"  mov.u32 %%r5, 0;\n"
	"RD_LOOP:\n"
	"  setp.ge.u64 %%p, %%rd4, %%rd2;\n"
	"  @%%p bra RD_END;\n"
	"  shl.b64 %%rd7, %%rd4, 4;\n"
	"  add.u64 %%rd8, %%rd1, %%rd7;\n"
	"  ld.global.v4.u32 {%%r6, %%r7, %%r8, %%r9}, [%%rd8];\n"
	"  xor.b32 %%r5, %%r5, %%r6;\n"
	"  xor.b32 %%r5, %%r5, %%r7;\n"
	"  xor.b32 %%r5, %%r5, %%r8;\n"
	"  xor.b32 %%r5, %%r5, %%r9;\n"
	"  add.u64 %%rd4, %%rd4, %%rd6;\n"
	"  bra RD_LOOP;\n"
	"RD_END:\n"
	"  setp.ne.u32 %%p, %%r5, 1592654592;\n"
	"  @%%p bra RD_DONE;\n"
	"  st.global.u32 [%%rd3], %%r5;\n"
	"RD_DONE:\n"
	"  ret;\n"
	"}\n"
	"\n"
	".visible .entry wr(.param .u64 p_p, .param .u64 n_p, .param .u32 v_p)\n"
	"{\n"
	"  .reg .pred %%p;\n"
	"  .reg .b32 %%r<8>;\n"
	"  .reg .b64 %%rd<10>;\n"
	"  ld.param.u64 %%rd1, [p_p];\n"
	"  ld.param.u64 %%rd2, [n_p];\n"
	"  ld.param.u32 %%r5, [v_p];\n"
	"  mov.b32 %%r6, %%r5;\n"
	"  mov.b32 %%r7, %%r5;\n"
	"  cvta.to.global.u64 %%rd1, %%rd1;\n"
	"  mov.u32 %%r1, %%ctaid.x;\n"
	"  mov.u32 %%r2, %%ntid.x;\n"
	"  mov.u32 %%r3, %%tid.x;\n"
	"  mov.u32 %%r4, %%nctaid.x;\n"
	"  mul.wide.u32 %%rd4, %%r1, %%r2;\n"
	"  cvt.u64.u32 %%rd5, %%r3;\n"
	"  add.u64 %%rd4, %%rd4, %%rd5;\n"
	"  mul.wide.u32 %%rd6, %%r4, %%r2;\n"
	"WR_LOOP:\n"
	"  setp.ge.u64 %%p, %%rd4, %%rd2;\n"
	"  @%%p bra WR_DONE;\n"
	"  shl.b64 %%rd7, %%rd4, 4;\n"
	"  add.u64 %%rd8, %%rd1, %%rd7;\n"
	"  st.global.v4.u32 [%%rd8], {%%r5, %%r6, %%r7, %%r5};\n"
	"  add.u64 %%rd4, %%rd4, %%rd6;\n"
	"  bra WR_LOOP;\n"
	"WR_DONE:\n"
	"  ret;\n"
	"}\n";

/* Load the kernels for the current context's device: the PTX is tried with the device's
 * own target first, then older ISA versions and targets. Returns 0 or the last error. */
static inline CUresult cuda_kernels_load(const struct cuda_driver *d, CUdevice dev, CUmodule *mod)
{
	int major = 0, minor = 0;
	d->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
	d->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
	static const char *versions[] = { "8.0", "7.8", "7.0", "6.0" };
	char target[32], head[64], ptx[sizeof cuda_kernels_ptx + 64];
	CUresult r = 1;
	for (int t = 0; t < 2; t++) {
		if (t == 0)
			snprintf(target, sizeof target, "sm_%d%d", major, minor);
		else
			snprintf(target, sizeof target, "sm_52");
		for (size_t v = 0; v < sizeof versions / sizeof versions[0]; v++) {
			snprintf(head, sizeof head, ".version %s\n.target %s", versions[v], target);
			snprintf(ptx, sizeof ptx, cuda_kernels_ptx, head);
			r = d->cuModuleLoadData(mod, ptx);
			if (r == CUDA_SUCCESS)
				return r;
		}
	}
	return r;
}

#endif
