/* SPDX-License-Identifier: MIT */
/* unimem Block: one pinned, shareable buffer, visible to every compute unit. */
#ifndef UNIMEM_BLOCK_H
#define UNIMEM_BLOCK_H

#include "common.h"

UNIMEM_BEGIN_DECLS

typedef struct unimem_block unimem_block;

/* Flags of unimem_block_open(). */
enum {
	/* Do not lock the pages: the Block is lazy (no mlock, no prefault). */
	UNIMEM_BLOCK_UNPINNED = 1u << 0,
	/* Huge pages where the system has them; silently normal pages where not. */
	UNIMEM_BLOCK_HUGE = 1u << 1,
};

/* Open a Block of at least `bytes` bytes (rounded up to the page size, or to the huge
 * page size when UNIMEM_BLOCK_HUGE is granted). The memory is zeroed, page aligned, stays
 * at one address until close and, unless UNIMEM_BLOCK_UNPINNED, is resident and locked.
 * Returns 0 and sets *out, or a negative errno with *out set to NULL:
 *   -EINVAL  out is NULL, bytes is 0, its rounding overflows, or flags are unknown
 *   -EPERM   RLIMIT_MEMLOCK refuses the pinning (see unimem_strerror)
 *   -ENOMEM  the system cannot back the size
 * Thread-safe. */
UNIMEM_API int unimem_block_open(unimem_block **out, size_t bytes, unsigned flags);

/* Map the Block that another process of the same user named with unimem_block_id().
 * Returns 0, or -ENOENT (no such Block), -EACCES (another user's), -EINVAL, -ENOMEM,
 * -EPERM (pinning refused). Thread-safe. */
UNIMEM_API int unimem_block_lookup(unimem_block **out, uint32_t id);

/* Unmap and release this holder's reference. Other holders keep their pages.
 * NULL is a no-op. Not safe against concurrent use of the same Block. */
UNIMEM_API void unimem_block_close(unimem_block *b);

/* Base address (page aligned; stable for the Block's lifetime). */
UNIMEM_API void *unimem_block_ptr(const unimem_block *b);

/* Usable size in bytes (>= the size asked for). */
UNIMEM_API size_t unimem_block_size(const unimem_block *b);

/* Size of the pages backing the Block (4096, or the huge page size when granted). */
UNIMEM_API size_t unimem_block_page_size(const unimem_block *b);

/* Id that another process of the same user can pass to unimem_block_lookup();
 * 0 when the Block has none. */
UNIMEM_API uint32_t unimem_block_id(const unimem_block *b);

/* The IOSurfaceRef on macOS; NULL on Linux. */
UNIMEM_API void *unimem_block_handle(const unimem_block *b);

/* The memfd backing the Block on Linux (owned by the Block: do not close it); -1 elsewhere. */
UNIMEM_API int unimem_block_fd(const unimem_block *b);

/* Whether the pages are locked in memory. */
UNIMEM_API bool unimem_block_pinned(const unimem_block *b);

/* Pass the Block over a connected Unix-domain socket (SCM_RIGHTS).
 * Returns 0 or a negative errno. Thread-safe. */
UNIMEM_API int unimem_block_send(int unix_socket, const unimem_block *b);

/* Receive a Block sent with unimem_block_send(). Returns 0 or a negative errno. */
UNIMEM_API int unimem_block_recv(unimem_block **out, int unix_socket);

UNIMEM_END_DECLS

#endif
