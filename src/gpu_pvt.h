/* SPDX-License-Identifier: MIT */
/* What the GPU backend (gpu_cuda.c or gpu_none.c) offers the Block. Never installed. */
#ifndef UNIMEM_GPU_PVT_H
#define UNIMEM_GPU_PVT_H

#include "block_pvt.h"

/* Drop the GPU mapping of a Block that is being closed (no-op when not mapped). */
void umi_gpu_release(unimem_block *b);

#endif
