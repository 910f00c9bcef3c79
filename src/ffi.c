/* SPDX-License-Identifier: MIT */
/* libunimem-ffi: every inline function of the public headers (unimem_tape_take,
 * unimem_tape_clear, unimem_tape_used, the typed takes, the Grid hot paths, ...) compiled
 * out of line under its own name, for callers that cannot inline C: ctypes, cffi in ABI
 * mode, other languages' FFIs. The rest of the API comes from libunimem, which this
 * library links against (dlsym on a handle of libunimem-ffi finds both). As liburing-ffi
 * does for liburing: one definition of each hot path (the header's), no hand-written twin
 * to keep in step, and libunimem's ABI stays exactly its UNIMEM_API names.
 * C and C++ programs link libunimem and inline; an FFI call costs a call more. */
#define UNIMEM_INLINE UNIMEM_API
/* The fixed headers only, not <unimem/unimem.h>: the generated types.h and grids.h stay
 * inline for every consumer, so that this library exports the same names for every
 * -Dgrids and -Dblock_types (src/unimem-ffi.map lists them). */
#include <unimem/common.h>
#include <unimem/block.h>
#include <unimem/bf16.h>
#include <unimem/tape.h>
#include <unimem/grid.h>
#include <unimem/layout.h>
#include <unimem/gpu.h>
#include <unimem/view.h>
#include <unimem/load.h>
