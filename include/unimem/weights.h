/* SPDX-License-Identifier: MIT */
/* unimem weights: a safetensors checkpoint (one file, or the shards of a
 * model.safetensors.index.json) streamed into GPU memory, or host memory, at copy-engine
 * speed, with the host never holding the whole model.
 *
 * How a load goes: the headers are parsed (strictly, as unimem_safetensors_load() does)
 * and the tensors are laid out one after the other in one destination buffer, each at a
 * multiple of UNIMEM_WEIGHTS_ALIGN bytes from its start. The data sections are cut in
 * chunks; a few threads (as many as the machine has idle CPUs, 4 to 12) each own two
 * chunks of a small staging ring (a Block registered with the CUDA driver, so that copies
 * from it run at copy-engine speed) and loop: read a chunk (pread from the page cache, or
 * O_DIRECT when it is not cached, as unimem_tape_read_fd() reads), queue its host-to-
 * device copies on the thread's own stream, and read the next chunk into the other half
 * while those run. The destination is one cuMemAlloc per model, freed with it, or a
 * buffer the caller owns (a torch.empty(uint8) tensor, say).
 *
 * Environment (read at each load): UNIMEM_WEIGHTS_THREADS (1..64), UNIMEM_WEIGHTS_CHUNK
 * (bytes, a multiple of 4096, 64 KiB..1 GiB) override the defaults (idle CPUs, 4 to 12;
 * 4 MiB: a ring of 96 MiB at most). */
#ifndef UNIMEM_WEIGHTS_H
#define UNIMEM_WEIGHTS_H

#include "common.h"

UNIMEM_BEGIN_DECLS

/* A checkpoint's tensors: names, types, shapes, and, once uploaded, where each one is. */
typedef struct unimem_weights unimem_weights;

/* `device` of unimem_weights_upload(): host memory instead of a GPU's. */
#define UNIMEM_WEIGHTS_CPU (-1)

/* Every tensor starts at a multiple of this many bytes from the buffer's start. */
#define UNIMEM_WEIGHTS_ALIGN 256

/* Parse the checkpoint at `path` (no tensor data is read): a .safetensors file, a
 * model.safetensors.index.json (its "weight_map" names the shards, which lie beside it;
 * every tensor it names must be in that shard and every tensor of a shard must be named),
 * or a directory holding model.safetensors.index.json or model.safetensors. `flags`:
 * UNIMEM_READ_BUFFERED or UNIMEM_READ_DIRECT (load.h), or 0, for the upload's reads.
 * Returns 0 and sets *out, or a negative errno with *out NULL:
 *   -EINVAL   out or path NULL, unknown or both read flags
 *   -ENOENT   the file, or a shard the index names, is not there (or open()'s errno)
 *   -EBADMSG  a header that unimem_safetensors_load() refuses (short file, bad JSON,
 *             truncated data, ...); an index that is not JSON, has no "weight_map",
 *             names a shard with an absolute path or "..", or disagrees with the shards;
 *             one tensor name in two shards
 *   -ENOTSUP  a tensor of more than 8 dimensions
 *   -ENOMEM
 * Thread-safe (no shared state). */
UNIMEM_API int unimem_weights_open(unimem_weights **out, const char *path, unsigned flags);

/* Bytes the tensors take in a destination buffer (each at a multiple of
 * UNIMEM_WEIGHTS_ALIGN): the `cap` unimem_weights_upload() needs. 0 for NULL. */
UNIMEM_API size_t unimem_weights_bytes(const unimem_weights *w);

/* Stream every tensor into memory of `device` (a CUDA ordinal, or UNIMEM_WEIGHTS_CPU).
 * `buf` NULL: unimem allocates unimem_weights_bytes(w) (cuMemAlloc; host: mmap), freed
 * by unimem_weights_close(); else `buf` (cap bytes, 64-byte aligned; on a GPU a device
 * allocation of that device, checked with the driver) is the caller's, and stays so.
 * Returns when every byte is in place (the copies are synchronised). Once per w.
 * Returns 0, or a negative errno, with nothing of w uploaded (what unimem allocated is
 * freed; a caller's buffer may hold part of the data):
 *   -EINVAL    w NULL; buf not 64-byte aligned, or not device memory of `device`, or a
 *              device allocation smaller than cap
 *   -ENOSPC    cap < unimem_weights_bytes(w)
 *   -EALREADY  w was uploaded already
 *   -ENODEV    no GPU, or `device` is not one (below UNIMEM_WEIGHTS_CPU, or too high)
 *   -ENOMEM    no device memory (or host memory) for it, or the staging ring
 *   -EIO       a file got shorter while it was read
 *   the errno of a read (as unimem_tape_read_fd()), or of a driver call, for which
 *   unimem_strerror() gives the driver's message
 * Not thread-safe on one w; any thread, with or without a current CUDA context (the
 * device's primary context is used and the caller's left as it was). */
UNIMEM_API int unimem_weights_upload(unimem_weights *w, int device, void *buf, size_t cap);

/* unimem_weights_open() then unimem_weights_upload(): the whole load in one call.
 * Returns 0 and sets *out, or one of the two's errors with *out NULL (nothing kept). */
UNIMEM_API int unimem_weights_load(unimem_weights **out, const char *path, int device,
				   void *buf, size_t cap, unsigned flags);

/* Free w, and the device or host memory unimem allocated for it (a caller's buffer stays
 * the caller's). NULL is a no-op. The tensors' memory must no longer be in use. */
UNIMEM_API void unimem_weights_close(unimem_weights *w);

/* Number of tensors (shard by shard, in data order). 0 for NULL. */
UNIMEM_API size_t unimem_weights_count(const unimem_weights *w);

/* Name of tensor i, NULL when w is NULL or i out of range. */
UNIMEM_API const char *unimem_weights_name(const unimem_weights *w, size_t i);

/* Index of the tensor named `name`, -1 when there is none (or w or name is NULL).
 * O(log n). */
UNIMEM_API long unimem_weights_find(const unimem_weights *w, const char *name);

/* unimem_dtype of tensor i (view.h); 0 when out of range. */
UNIMEM_API int unimem_weights_dtype(const unimem_weights *w, size_t i);

/* Dimensions of tensor i (0 for a scalar); -1 when out of range. */
UNIMEM_API int unimem_weights_ndim(const unimem_weights *w, size_t i);

/* Shape of tensor i (unimem_weights_ndim() values); NULL when out of range. */
UNIMEM_API const int64_t *unimem_weights_shape(const unimem_weights *w, size_t i);

/* Bytes of tensor i; 0 when out of range. */
UNIMEM_API size_t unimem_weights_nbytes(const unimem_weights *w, size_t i);

/* Offset of tensor i from the destination buffer's start (a multiple of
 * UNIMEM_WEIGHTS_ALIGN); 0 when out of range. Known before the upload. */
UNIMEM_API size_t unimem_weights_offset(const unimem_weights *w, size_t i);

/* Address of tensor i in the destination (a device address for a GPU), NULL before the
 * upload or when out of range. */
UNIMEM_API void *unimem_weights_ptr(const unimem_weights *w, size_t i);

/* The device uploaded to (UNIMEM_WEIGHTS_CPU for host memory); -2 before the upload or
 * for NULL. */
UNIMEM_API int unimem_weights_device(const unimem_weights *w);

/* Value of `key` in the "__metadata__" of the checkpoint (of its first shard, in the
 * order of the shards' file names, for an index), NULL when there is none. */
UNIMEM_API const char *unimem_weights_metadata(const unimem_weights *w, const char *key);

/* Key i of that "__metadata__" (in byte order), NULL when i is out of range. */
UNIMEM_API const char *unimem_weights_metadata_key(const unimem_weights *w, size_t i);

/* Number of files the checkpoint is in (1 for a single file). 0 for NULL. */
UNIMEM_API size_t unimem_weights_files(const unimem_weights *w);

/* Bytes of the staging ring the upload used (0 before it, or for NULL): the host
 * memory a load takes beyond the library's own. */
UNIMEM_API size_t unimem_weights_staging(const unimem_weights *w);

UNIMEM_END_DECLS

#endif
