/* SPDX-License-Identifier: MIT */
/* What grid.c offers the generated pools (build/src/grids.c). Never installed. */
#ifndef UNIMEM_GRID_PVT_H
#define UNIMEM_GRID_PVT_H

#include "base.h"

/* Initialise a Grid of `cells` cells of `cell_size` bytes (rounded up to 64) over a new
 * Block opened with `flags`; the generated pools call it with their constants.
 * Returns 0 or a negative errno (the Grid is then left without a Block). */
int umi_grid_init(unimem_grid *g, size_t cell_size, size_t cells, unsigned flags);

/* Close the Block of a Grid set up by umi_grid_init(). */
void umi_grid_fini(unimem_grid *g);

#endif
