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

/* Map the Block that another process of the same user named with unimem_block_id():
 * the very same pages, through a mapping and fd of this holder's own, pinned by the
 * rule of a default open (this process's RLIMIT_MEMLOCK applies). The Block stays
 * valid after its creator closes it or dies. Returns 0 and sets *out, or a negative
 * errno with *out set to NULL:
 *   -ENOENT  no live Block has this id (0, closed, or its creator is gone)
 *   -EACCES  the creating process belongs to another user (root with CAP_SYS_PTRACE
 *            excepted), or it is not dumpable (see docs/SHARING.md)
 *   -EINVAL  out is NULL
 *   -EPERM   RLIMIT_MEMLOCK refuses the pinning (see unimem_strerror)
 *   -ENOMEM, -EMFILE
 * Costs one /proc read per open fd of the creator. Thread-safe. */
UNIMEM_API int unimem_block_lookup(unimem_block **out, uint32_t id);

/* Unmap and release this holder's reference. Other holders keep their pages.
 * DLPack exports of views (<unimem/view.h>) hold the Block as well: while one is
 * alive, close leaves the mapping (and any GPU mapping) in place, and the export's
 * deleter unmaps it last. NULL is a no-op. Not safe against concurrent use of the
 * same Block by this holder; safe against deleters running on other threads. */
UNIMEM_API void unimem_block_close(unimem_block *b);

/* Base address (page aligned; stable for the Block's lifetime). */
UNIMEM_API void *unimem_block_ptr(const unimem_block *b);

/* Usable size in bytes (>= the size asked for). */
UNIMEM_API size_t unimem_block_size(const unimem_block *b);

/* Size of the pages backing the Block (4096, or the huge page size when granted). */
UNIMEM_API size_t unimem_block_page_size(const unimem_block *b);

/* Id that another process of the same user can pass to unimem_block_lookup(),
 * valid while the process that opened the Block holds it; never the id of another
 * live Block. Looked-up and received Blocks report their creator's id. 0 when the
 * Block has none (a process has 1024 ids; Blocks opened beyond that have none). An
 * id is only meaningful within one pid namespace. Thread-safe, no system call. */
UNIMEM_API uint32_t unimem_block_id(const unimem_block *b);

/* The IOSurfaceRef on macOS; NULL on Linux. */
UNIMEM_API void *unimem_block_handle(const unimem_block *b);

/* The memfd backing the Block on Linux (owned by the Block: do not close it); -1 elsewhere. */
UNIMEM_API int unimem_block_fd(const unimem_block *b);

/* Whether the pages are locked in memory. */
UNIMEM_API bool unimem_block_pinned(const unimem_block *b);

/* Pass the Block over a connected Unix-domain socket (stream, seqpacket or datagram):
 * its fd (SCM_RIGHTS) and its size; the receiver needs no id. The sender keeps its
 * Block. Returns 0, or -EINVAL (b is NULL), -EBADF, -ENOTSOCK, -EPIPE (the peer is
 * gone; no SIGPIPE is raised), -EAGAIN (non-blocking socket full), -EINTR (signal
 * before anything was sent), or another negative errno of sendmsg(). Thread-safe. */
UNIMEM_API int unimem_block_send(int unix_socket, const unimem_block *b);

/* Receive a Block sent with unimem_block_send(), blocking unless the socket is
 * non-blocking. The Block is mapped and pinned by the rule of a default open. What
 * came is checked: exactly one fd, a writable memfd sealed against shrink and grow,
 * of the announced size. Returns 0 and sets *out, or a negative errno with *out NULL
 * and every received fd closed:
 *   -EBADMSG     not a Block message (see unimem_strerror)
 *   -ECONNRESET  the peer closed the socket before sending anything
 *   -EPERM       RLIMIT_MEMLOCK refuses the pinning
 *   -EINVAL (out is NULL), -EBADF, -ENOTSOCK, -EAGAIN, -EINTR, -ENOMEM, -EMFILE
 * Thread-safe (one receiver per socket at a time). */
UNIMEM_API int unimem_block_recv(unimem_block **out, int unix_socket);

UNIMEM_END_DECLS

#endif
