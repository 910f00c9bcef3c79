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
#include "safetensors.h"
#include "weights.h"
#include "net.h"
#include <unimem/types.h> /* generated: typed accessors per -Dblock_types */
#include <unimem/grids.h> /* generated: one Grid type per -Dgrids entry */

UNIMEM_BEGIN_DECLS

/* A message for a code this library returned (negative or positive). Never NULL. Where
 * this thread's last failure with that code recorded what exactly went wrong, the message
 * says it (a refused pin: RLIMIT_MEMLOCK's value and the size; the CUDA driver's error;
 * which check refused a received Block or a safetensors header); otherwise it lists the
 * causes of that code (-EPERM: RLIMIT_MEMLOCK, ulimit -l and UNIMEM_BLOCK_UNPINNED). The
 * text lives in thread-local storage until this thread's next call. Thread-safe. */
UNIMEM_API const char *unimem_strerror(int err);

/* The library version, "MAJOR.MINOR.PATCH". */
UNIMEM_API const char *unimem_version(void);

UNIMEM_END_DECLS

#endif
