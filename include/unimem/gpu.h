/* SPDX-License-Identifier: MIT */
/* unimem GPU: the same pages, seen by a GPU with no copy. */
#ifndef UNIMEM_GPU_H
#define UNIMEM_GPU_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

/* Number of GPUs usable for mapping; 0 where there is no driver or no GPU. Thread-safe. */
UNIMEM_API int unimem_gpu_count(void);

/* Map the Block into the GPU's address space, zero-copy, and set *device_ptr.
 * Reference-counted: each successful map is matched by one unimem_gpu_unmap().
 * Returns 0, -ENODEV without a GPU, -EINVAL for bad arguments, or a driver error.
 * Thread-safe. */
UNIMEM_API int unimem_gpu_map(const unimem_block *b, void **device_ptr);

/* Drop one mapping reference. Returns 0 (also for a Block that is not mapped), or
 * -ENODEV without a GPU. Thread-safe. */
UNIMEM_API int unimem_gpu_unmap(const unimem_block *b);

UNIMEM_END_DECLS

#endif
