/* SPDX-License-Identifier: MIT */
/* What the GPU backend (gpu_cuda.c, gpu_none.c) offers the streaming loader (weights*.c;
 * issue 16). Never installed. */
#ifndef UNIMEM_WEIGHTS_PVT_H
#define UNIMEM_WEIGHTS_PVT_H

#include "base.h"

/* The CUDA driver table loaded by gpu_cuda.c, NULL where there is no GPU (src/cuda_decls.h
 * declares it). Thread-safe. */
struct umi_cuda;
const struct umi_cuda *umi_cuda_driver(void);

/* Record a driver failure of `call` (umi_fail: unimem_strerror() says it) and return its
 * negative errno. Thread-safe. */
int umi_cuda_fail(int r, const char *call);

/* The positive errno of a CUDA driver result (gpu_cuda_errno.c). */
int umi_cuda_errno(int r);

#endif
