/* SPDX-License-Identifier: MIT */
/* unimem Grid: a lock-free pool of fixed-size cells over one Block. */
#ifndef UNIMEM_GRID_H
#define UNIMEM_GRID_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

typedef struct unimem_grid unimem_grid;

/* Open a pool of `cells` cells of `cell_size` bytes (rounded up to a multiple of 64).
 * Returns 0 and sets *out, or -EINVAL / -ENOMEM / -EPERM. Thread-safe. */
UNIMEM_API int unimem_grid_open(unimem_grid **out, size_t cell_size, size_t cells);
UNIMEM_API void unimem_grid_close(unimem_grid *g);
/* A free cell, or NULL when all cells are out. Lock-free. */
UNIMEM_API void *unimem_grid_take(unimem_grid *g);
/* Return a cell: 0, -EINVAL (NULL, foreign or misaligned), -EALREADY (already free). */
UNIMEM_API int unimem_grid_give(unimem_grid *g, void *cell);
UNIMEM_API size_t unimem_grid_available(const unimem_grid *g);
UNIMEM_API const unimem_block *unimem_grid_block(const unimem_grid *g);

UNIMEM_END_DECLS

#endif
