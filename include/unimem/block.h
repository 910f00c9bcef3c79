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
	/* This process's alone (Linux): anonymous memory, no fd and no id (0), so it cannot be
	 * looked up, and send and seal give -EINVAL; a child of fork() does not inherit it
	 * (MADV_DONTFORK: the child has no mapping there, so a pinned or GPU-mapped page is
	 * never copied on write under the device). Everything else works as on any Block:
	 * Tapes, Grids, views, gpu_map, net export. With UNIMEM_BLOCK_HUGE it gets
	 * transparent huge pages where the machine allows them for anonymous memory, which
	 * most distributions do by default (`madvise`) while they refuse them to shared
	 * memory (shmem_enabled `never`): the fast way to open a large pinned Block there
	 * (docs/BENCHMARKS_GPU.md). macOS: no effect (every Block is an IOSurface). */
	UNIMEM_BLOCK_PRIVATE = 1u << 2,
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
 * rule of a default open (this process's RLIMIT_MEMLOCK applies). A Block its creator
 * sealed (unimem_block_seal) is mapped read-only. Only the creator's own live fd of
 * the Block resolves (not a dup of it outliving the Block, not a memfd named alike).
 * The Block stays valid after its creator closes it or dies. Returns 0 and sets *out,
 * or a negative errno with *out set to NULL:
 *   -ENOENT  no live Block has this id (0, closed, or its creator is gone)
 *   -EACCES  the creating process belongs to another user (root with CAP_SYS_PTRACE
 *            excepted), or it is not dumpable (see docs/SHARING.md)
 *   -EINVAL  out is NULL
 *   -ENOMEM  the machine cannot back its size pinned (checked before any page is
 *            touched, as at open), or no memory
 *   -EPERM   RLIMIT_MEMLOCK refuses the pinning (see unimem_strerror)
 *   -EMFILE
 * Costs one /proc read per open fd of the creator. Thread-safe. */
UNIMEM_API int unimem_block_lookup(unimem_block **out, uint32_t id);

/* unimem_block_lookup() that also refuses, with -EFBIG and before any page is
 * touched, a Block larger than `max_bytes` (0: no limit of the caller's). Returns 0
 * and sets *out, or -EFBIG or any error of unimem_block_lookup() with *out NULL.
 * Thread-safe. */
UNIMEM_API int unimem_block_lookup_max(unimem_block **out, uint32_t id, uint64_t max_bytes);

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
 * live Block. Looked-up Blocks report their creator's id; received Blocks report 0
 * (the memfd's name is the sender's to choose, so it proves nothing). 0 when the
 * Block has none (a process has 1024 ids; Blocks opened beyond that have none). An
 * id is (pid << 10) | slot and only meaningful within one pid namespace. Residual
 * risk of a stale id (32 bits carry no generation): once its Block is closed, the
 * id names a new Block only when that pid opens a Block in that slot again. Slots
 * go round-robin from a random start per process image (getrandom), so in a live
 * process that takes 1024 opens, and after exec or pid reuse each new Block has a
 * 1 in 1024 chance of reusing a given stale id. Pass fds (send/recv) where that
 * matters. The creator's fd carries a mark in its file position: never move it
 * (use pread/pwrite on unimem_block_fd, never read/write/lseek). Thread-safe, no
 * system call. */
UNIMEM_API uint32_t unimem_block_id(const unimem_block *b);

/* The IOSurfaceRef on macOS; NULL on Linux. */
UNIMEM_API void *unimem_block_handle(const unimem_block *b);

/* The memfd backing the Block on Linux (owned by the Block: do not close it); -1 elsewhere. */
UNIMEM_API int unimem_block_fd(const unimem_block *b);

/* Whether this holder's mapping of the pages is locked in memory (false for NULL). It
 * speaks of this holder's lock only: a writable holder elsewhere can punch holes in
 * the memfd (fallocate PUNCH_HOLE, MADV_REMOVE), which frees the pages under every
 * mapping, this one included (they read back as zeros, newly allocated), or write
 * anything into them. Seal the Block (unimem_block_seal) before handing it to holders
 * you do not trust. */
UNIMEM_API bool unimem_block_pinned(const unimem_block *b);

/* Seal the Block read-only for every holder to come: adds F_SEAL_FUTURE_WRITE (and
 * F_SEAL_SEAL) to its memfd. Existing writable mappings stay writable (the creator's,
 * and those of holders that have it already); from then on nobody can map it writable,
 * write() to it or punch holes in it, so its pages stay as written and stay resident
 * under everyone's lock. Blocks looked up or received afterwards are mapped read-only
 * (unimem_block_writable() is false). Call it once the creator has written the Block,
 * before sharing it. Idempotent. Returns 0, or:
 *   -EINVAL  b is NULL
 *   -EBUSY   another holder added F_SEAL_SEAL first: it cannot be sealed any more
 *   -ENOTSUP on macOS
 * Thread-safe. */
UNIMEM_API int unimem_block_seal(unimem_block *b);

/* Whether this holder's mapping is writable: true for Blocks opened here, false for
 * Blocks looked up or received after unimem_block_seal() (writing to them faults:
 * build no Tape, Grid or Layout on them). false for NULL. Thread-safe, no system call. */
UNIMEM_API bool unimem_block_writable(const unimem_block *b);

/* The offset of p inside Block b (so that Tape and Grid allocations are named by offset:
 * on the GPU, through unimem_net, in another process); -1 when b is NULL or p is not inside [ptr, ptr + size). Thread-safe. */
UNIMEM_API int64_t unimem_block_offset(const unimem_block *b, const void *p);

/* Pass the Block over a connected Unix-domain socket (stream, seqpacket or datagram):
 * its fd (SCM_RIGHTS) and its size; the receiver needs no id. The sender keeps its
 * Block. Returns 0, or -EINVAL (b is NULL), -EBADF, -ENOTSOCK, -EPIPE (the peer is
 * gone; no SIGPIPE is raised), -EAGAIN (non-blocking socket full), -EINTR (signal
 * before anything was sent), or another negative errno of sendmsg(). Never blocks on a
 * non-blocking socket; when a stream socket took only part of the message (not seen on
 * AF_UNIX, which takes it whole), a blocking one waits at most 2 s for room, then
 * -ETIMEDOUT (the stream is then out of step: close it). Thread-safe. */
UNIMEM_API int unimem_block_send(int unix_socket, const unimem_block *b);

/* Receive a Block sent with unimem_block_send(), blocking unless the socket is
 * non-blocking. The Block is mapped and pinned by the rule of a default open, through
 * an open file of its own (the sender's file position and flags do not follow); it
 * has id 0. What came is checked: exactly one fd, a memfd sealed against shrink and
 * grow, writable (or sealed read-only by unimem_block_seal: then mapped read-only),
 * of the announced size. A non-blocking socket never blocks: when a message has begun
 * but its rest has not come, -EAGAIN (what came is consumed: the stream is out of
 * step, close it). A blocking socket waits at most 2 s for the rest of a begun
 * message, then -ETIMEDOUT (likewise consumed). Returns 0 and sets *out, or a
 * negative errno with *out NULL and every received fd closed:
 *   -EBADMSG     not a Block message (see unimem_strerror)
 *   -ECONNRESET  the peer closed the socket before sending anything
 *   -ENOMEM      the machine cannot back the size pinned (checked before any page
 *                is touched, as at open), or no memory
 *   -EPERM       RLIMIT_MEMLOCK refuses the pinning
 *   -EAGAIN      non-blocking socket: nothing yet, or only part of a message
 *   -ETIMEDOUT   blocking socket: a message began and stalled for 2 s
 *   -EINVAL (out is NULL), -EBADF, -ENOTSOCK, -EINTR, -EMFILE
 * Thread-safe (one receiver per socket at a time). */
UNIMEM_API int unimem_block_recv(unimem_block **out, int unix_socket);

/* unimem_block_recv() that also refuses, with -EFBIG and before any page is touched,
 * a Block larger than `max_bytes` (0: no limit of the caller's; the message is then
 * consumed and its fd closed). Returns 0 and sets *out, or -EFBIG or any error of
 * unimem_block_recv() with *out NULL. Thread-safe (one receiver per socket at a time). */
UNIMEM_API int unimem_block_recv_max(unimem_block **out, int unix_socket, uint64_t max_bytes);

UNIMEM_END_DECLS

#endif
