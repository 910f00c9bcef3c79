/* SPDX-License-Identifier: MIT */
/* unimem Layout: three Tapes (weights, scratch, history) in ONE Block. */
#ifndef UNIMEM_LAYOUT_H
#define UNIMEM_LAYOUT_H

#include "common.h"
#include "block.h"
#include "tape.h"

UNIMEM_BEGIN_DECLS

typedef struct unimem_layout unimem_layout;

/* Open one pinned Block holding three Tapes at page-aligned offsets: weights (loaded
 * once), scratch (cleared per pass / token) and history (cleared per conversation).
 * Each size rounds up to the page size; a zero size gives a Tape that takes nothing,
 * but not all three may be zero. Returns 0 and sets *out, or -EINVAL (all zero, out
 * NULL, or the sum overflows), -EPERM, -ENOMEM as unimem_block_open(); -ENOMEM also for a
 * size over UNIMEM_TAPE_CAPACITY_MAX. */
UNIMEM_API int unimem_layout_open(unimem_layout **out, size_t weights, size_t scratch,
				  size_t history);

/* As unimem_layout_open(), with unimem_block_open() flags. */
UNIMEM_API int unimem_layout_open_flags(unimem_layout **out, size_t weights, size_t scratch,
					size_t history, unsigned flags);

/* Close the Layout, its three Tapes and its Block. NULL is a no-op. */
UNIMEM_API void unimem_layout_close(unimem_layout *l);

/* The Tapes belong to the Layout: never pass them to unimem_tape_close(). */
UNIMEM_API unimem_tape *unimem_layout_weights(unimem_layout *l);
UNIMEM_API unimem_tape *unimem_layout_scratch(unimem_layout *l);
UNIMEM_API unimem_tape *unimem_layout_history(unimem_layout *l);

/* Rewind scratch: one store. */
UNIMEM_API void unimem_layout_clear_pass(unimem_layout *l);

/* Rewind scratch and history: two stores. Weights stay. */
UNIMEM_API void unimem_layout_clear_talk(unimem_layout *l);

UNIMEM_API const unimem_block *unimem_layout_block(const unimem_layout *l);

UNIMEM_END_DECLS

#endif
