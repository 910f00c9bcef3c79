/* SPDX-License-Identifier: MIT */
/* unimem GPU: the same pages, seen by a GPU with no copy.
 *
 * Linux: NVIDIA GPUs through the CUDA driver API, loaded at run time (libcuda.so.1); the
 * same binary runs with and without a GPU. A Block is registered with the driver
 * (mapped + portable, so every CUDA context of the process can use the pointer) in the
 * primary context of device 0; with unified addressing (every 64-bit system CUDA
 * supports) the device pointer equals the host pointer. The calls push and pop that
 * context: the caller's current context, if any, is left as it was.
 *
 * Fastest way to a GPU-ready Block: open it with UNIMEM_BLOCK_UNPINNED and map it.
 * unimem_gpu_map() faults the pages in from several threads and the driver pins them,
 * which skips the mlock of a default open. (unimem_block_pinned() keeps saying false:
 * the pages are pinned by the driver, not locked by unimem.)
 *
 * Registrations are made in chunks of at most 64 GiB (drivers refuse single ones of
 * 512 GiB and more); the environment variable UNIMEM_GPU_REGISTER_CHUNK (bytes, read
 * once) changes that. The device range is checked to be contiguous. */
#ifndef UNIMEM_GPU_H
#define UNIMEM_GPU_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

/* Number of GPUs usable for mapping; 0 where there is no driver or no GPU (the first call
 * loads and initialises the driver, once). Thread-safe. */
UNIMEM_API int unimem_gpu_count(void);

/* Map the Block into the GPU's address space, zero-copy, and set *device_ptr (NULL on
 * failure). Reference-counted: the first map registers the Block with the driver, later
 * ones return the same pointer; each successful map is matched by one unimem_gpu_unmap(),
 * and unimem_block_close() drops what is still mapped. The device range is contiguous:
 * the device address of ptr + off is *device_ptr + off (see unimem_gpu_ptr()). Works for
 * unpinned Blocks (the pages are faulted in and pinned by the driver).
 * Returns 0, -EINVAL (NULL argument), -ENODEV (no GPU), -ENOMEM, or the errno of a driver
 * error (-EBUSY: the range is already registered by someone else; -EIO, ...), for which
 * unimem_strerror() gives the driver's message. Thread-safe; any thread, with or without
 * a current CUDA context. */
UNIMEM_API int unimem_gpu_map(const unimem_block *b, void **device_ptr);

/* Drop one mapping reference; the last one drops the driver's registration. Returns 0
 * (also for a Block that is not mapped), -EINVAL (NULL), -ENODEV (no GPU) or the errno of
 * a driver error (the reference is dropped all the same). Thread-safe. */
UNIMEM_API int unimem_gpu_unmap(const unimem_block *b);

/* The device address of `host`, a pointer inside the mapped Block b (a Tape take, a Grid
 * cell, a Layout tape; one past the end is allowed), in *device (NULL on failure).
 * Returns 0, -EINVAL (NULL argument, or host outside b), -ENXIO (b is not mapped), or
 * -ENODEV (no GPU). Lock-free; thread-safe. */
UNIMEM_API int unimem_gpu_ptr(const unimem_block *b, const void *host, void **device);

UNIMEM_END_DECLS

#endif
