/* SPDX-License-Identifier: MIT */
/* unimem: unified memory for CPU, GPU and other processes, with zero copies.
 * One header for everything. */
#ifndef UNIMEM_H
#define UNIMEM_H

#include "common.h"
#include "block.h"
#include "bf16.h"
#include "tape.h"
#include "grid.h"
#include "layout.h"
#include "gpu.h"
#include "view.h"
#include "load.h"
#include "net.h"
#include <unimem/types.h> /* generated: typed accessors per -Dblock_types */
#include <unimem/grids.h> /* generated: one Grid type per -Dgrids entry */

UNIMEM_BEGIN_DECLS

/* A message for a code this library returned (negative or positive). Never NULL.
 * For -EPERM it names RLIMIT_MEMLOCK, its value and UNIMEM_BLOCK_UNPINNED. Thread-safe. */
UNIMEM_API const char *unimem_strerror(int err);

/* The library version, "MAJOR.MINOR.PATCH". */
UNIMEM_API const char *unimem_version(void);

UNIMEM_END_DECLS

#endif
