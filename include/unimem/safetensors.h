/* SPDX-License-Identifier: MIT */
/* unimem safetensors: the weights of a safetensors file placed in a Tape with one read
 * (as <unimem/load.h> reads files: O_DIRECT where it can, no bounce buffer) and returned
 * as views. */
#ifndef UNIMEM_SAFETENSORS_H
#define UNIMEM_SAFETENSORS_H

#include "common.h"
#include "load.h"
#include "tape.h"
#include "view.h"

UNIMEM_BEGIN_DECLS

/* Tensors of a safetensors file, placed in a Tape. */
typedef struct unimem_safetensors unimem_safetensors;

/* The alignment unimem_safetensors_load() gives every tensor at align 0: what GPU
 * libraries want (cuBLAS picks its kernels by it, JAX refuses buffers under 16). */
#define UNIMEM_SAFETENSORS_ALIGN 256

/* Load the safetensors file at `path` into Tape t (a Layout's weights Tape, typically).
 * The header is parsed strictly (the format of huggingface/safetensors): an 8-byte
 * little-endian length N (at most 100,000,000), then N bytes of a JSON object that starts
 * with '{', maps each tensor name to {"dtype", "shape", "data_offsets"} and nothing else,
 * and may hold one "__metadata__" object of strings; then the data, which the tensors
 * must cover exactly, in order, with no gap and no overlap.
 * Placement: every tensor is aligned to A = `align` (a power of two; 0 means
 * UNIMEM_SAFETENSORS_ALIGN, 256) or to its element's size when that is larger. The data
 * is read in one piece into one room taken once (O_DIRECT where it can, as
 * unimem_tape_read_fd() reads), with the data section's start at an address aligned to
 * min(A, 4096): tensors whose offsets in the data are multiples of A (those of real
 * checkpoints) stay where they were read; any other is copied to a place of its own
 * after the data, in the same room (unimem_safetensors_moved() counts them). Pages in the
 * page cache are read straight to that placement; pages read with O_DIRECT land at their
 * file offset modulo 4096 and the data section is then moved down by under 4096 bytes.
 * Opt-out: align 1 keeps each tensor at its file offset modulo 4096 (aligned to its
 * element only; files written by the safetensors library then move nothing).
 * The file is opened without blocking (a FIFO is refused with -EINVAL, never waited on).
 * Returns 0 and sets *out, or a negative errno with *out NULL:
 *   -EBADMSG  not a safetensors file: short, a length past the file, bad JSON (syntax,
 *             escapes, UTF-8, numbers), a missing, duplicate, unknown or mistyped field,
 *             an unknown dtype, offsets that disagree with dtype and shape, or data that
 *             the tensors do not cover exactly (a truncated file)
 *   -ENOTSUP  a tensor of more than UNIMEM_VIEW_MAX_DIMS dimensions
 *   -EINVAL   out, t or path NULL, align not a power of two, flags as above
 *   -EINVAL   also: not a regular file (a FIFO, a directory, a device)
 *   -ENOSPC   the Tape has no room for the data and the moved tensors
 *   -ENOMEM, and what unimem_tape_read_fd() and open() return
 * On failure the room is given back as unimem_tape_read_fd() gives it back: only when
 * nothing was taken after it, so other threads' takes are never handed out again.
 * A malformed file never crashes the loader and never makes it read past what it read.
 * Thread-safe as unimem_tape_read_fd(). */
UNIMEM_API int unimem_safetensors_load(unimem_safetensors **out, unimem_tape *t,
				       const char *path, size_t align, unsigned flags);

/* Free what the loader allocated (names and views; the tensors' memory stays in the
 * Tape until it is cleared or closed). NULL is a no-op. */
UNIMEM_API void unimem_safetensors_close(unimem_safetensors *st);

/* Number of tensors. */
UNIMEM_API size_t unimem_safetensors_count(const unimem_safetensors *st);

/* Name of tensor i (in the order of the data), NULL when i is out of range. */
UNIMEM_API const char *unimem_safetensors_name(const unimem_safetensors *st, size_t i);

/* View of tensor i, NULL when i is out of range. Its Block is the Tape's. */
UNIMEM_API const unimem_view *unimem_safetensors_view(const unimem_safetensors *st, size_t i);

/* View of the tensor named `name`, NULL when there is none. O(log n). */
UNIMEM_API const unimem_view *unimem_safetensors_find(const unimem_safetensors *st,
						      const char *name);

/* Value of `key` in the file's "__metadata__", NULL when there is none. */
UNIMEM_API const char *unimem_safetensors_metadata(const unimem_safetensors *st,
						   const char *key);

/* Key i of the file's "__metadata__" (in byte order of the keys), NULL when i is out of
 * range: iterate with i = 0, 1, ... until NULL. */
UNIMEM_API const char *unimem_safetensors_metadata_key(const unimem_safetensors *st, size_t i);

/* Tensors the loader copied to a place of their own to meet the alignment (0 when every
 * one stayed where the read placed it). */
UNIMEM_API size_t unimem_safetensors_moved(const unimem_safetensors *st);

UNIMEM_END_DECLS

#endif
