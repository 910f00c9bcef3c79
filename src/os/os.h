/* SPDX-License-Identifier: MIT */
/* The platform contract under src/block.c and the Grid's holders (grid_slow.c,
 * grid_reclaim.c) (mimalloc's prim.h pattern). One backend per host implements it:
 * src/os/linux/ (memfd, seals, /proc ids, SCM_RIGHTS, membarrier) or src/os/darwin/
 * (IOSurface; stubs where the platform has no equivalent); meson picks the folder.
 *
 * block.c owns the policy: it validates every argument, rounds sizes (once), allocates
 * the struct (calloc, then fd = -1), decides pinning (a default open pins unless
 * UNIMEM_BLOCK_UNPINNED; a looked-up or received Block is pinned by the rule of a default
 * open), sets b->pinned after a pinned success, and frees the struct. The backend makes,
 * pins, shares and tears down the memory.
 *
 * Every int function returns 0 or a negative errno. On failure it has released all it
 * made (memory, fds, references, locks, ids) and the caller only frees b, whose fields are
 * then unspecified. Where a failure has more to say than its code (a refused pin), the
 * backend records it with umi_fail() (base.h). Never installed. */
#ifndef UNIMEM_OS_H
#define UNIMEM_OS_H

#include "block_pvt.h"

/* The system's base page size: a power of two, cached after the first call. Never fails,
 * thread-safe. Every Block size is a multiple of it. */
size_t umi_os_page_size(void);

/* Helper threads worth starting now: CPUs this thread may run on that no runnable task
 * holds at this instant (0 where that cannot be told, or none is idle). Thread-safe. */
long umi_os_idle_cpus(void);

/* Which pages of the mapping [p, p + len) (p page aligned) are resident: bit 0 of vec[i]
 * for page i. 0, or -1 where that cannot be told (then vec is untouched). Thread-safe. */
int umi_os_resident(const void *p, size_t len, unsigned char *vec);

/* Make the memory of a new Block. Preconditions: b fresh from block.c; size > 0, a
 * multiple of umi_os_page_size() and at most INT64_MAX; flags has no bit but
 * UNIMEM_BLOCK_HUGE (a hint: silently normal pages where huge ones cannot be had) and
 * UNIMEM_BLOCK_PRIVATE (this process's memory alone, where the platform has such: then
 * fd -1 and id 0).
 * Fills b->ptr, size (at least the size asked, a multiple of page), page, fd or handle,
 * id (0: none), writable; the memory reads as zeros. With `pin`, the memory is also
 * locked and every page faulted in, before return. Errors: -ENOMEM (the machine cannot
 * back it), -EPERM (pinning refused: detail recorded), -EMFILE. */
int umi_os_create(unimem_block *b, size_t size, unsigned flags, bool pin);

/* Tear down a Block made by umi_os_create/_lookup/_recv, b->pinned telling whether it
 * was pinned; its GPU mapping is gone already. Leaves b for the caller to free. */
void umi_os_destroy(unimem_block *b);

/* Make b a new holder of the Block whose id is `id` (not 0), of at most `max` bytes
 * (0: any; else -EFBIG, refused before a page is touched); `pin` as for create, with the
 * pages holding data (faulted in, never written). -ENOENT (no such Block), -EACCES,
 * -EPERM, -ENOMEM, -EMFILE. */
int umi_os_lookup(unimem_block *b, uint32_t id, uint64_t max, bool pin);

/* Send Block b (not NULL) over the Unix-domain socket. -EINVAL, -EBADF, -EPIPE, -EAGAIN,
 * -ENOTSUP (the platform cannot). */
int umi_os_send(int unix_socket, const unimem_block *b);

/* Make b the holder of a Block that comes over the socket, at most `max` bytes (0: any);
 * `pin` as for lookup. -EBADF, -EBADMSG (not a Block message: the detail says which
 * check failed), -ECONNRESET, -EAGAIN, -ETIMEDOUT, -EFBIG, -ENOMEM, -EPERM, -EMFILE,
 * -ENOTSUP. */
int umi_os_recv(unimem_block *b, int unix_socket, uint64_t max, bool pin);

/* Seal Block b (not NULL) read-only for every later holder: 0 (also when sealed
 * already), -EBUSY (sealing forbidden by another holder), -ENOTSUP, -EINVAL. */
int umi_os_seal(unimem_block *b);

/* ---- Threads and processes, for the Grid (os/linux/proc.c, os/darwin/proc.c) ---- */

/* The calling thread's id: never 0, unique among the live threads of the process (Linux:
 * the kernel's thread id, one system call: the Grid caches it; darwin: a number the
 * thread draws on its first call, never reused). Never fails, thread-safe. */
int32_t umi_os_tid(void);

/* Register the process for umi_os_membarrier(false) (once per process, and again in a
 * fork's child). 0, or a negative errno: -ENOSYS where the platform has no such barrier
 * (darwin), -EINVAL or -EPERM where the kernel refuses it. */
int umi_os_membarrier_register(void);

/* A full memory barrier on every running thread of this process (`all_processes` false;
 * Linux: MEMBARRIER_CMD_PRIVATE_EXPEDITED, an IPI to each CPU that runs one, about a
 * microsecond), or of every process (true; Linux: MEMBARRIER_CMD_GLOBAL, an RCU grace
 * period: milliseconds). Not MEMBARRIER_CMD_GLOBAL_EXPEDITED: it goes by a per-CPU copy
 * of the registration that the kernel leaves stale on a CPU where the process ran before
 * it registered and that switched to it from idle since, and then sends that CPU no IPI
 * (shown on both machines we use: docs/GRID.md, "The fence"). 0, or a negative errno:
 * -ENOSYS (darwin), -EINVAL (true on a nohz_full kernel, or false when not registered). */
int umi_os_membarrier(bool all_processes);

/* Whether process `pid` (> 0) runs, and since when: 0 with *start set to its start time
 * (an opaque number: two processes that had the same pid in turn differ in it); -ESRCH
 * when there is no such process or it is a zombie; another negative errno when it exists
 * but its start cannot be read (-EACCES, e.g. under hidepid; -ENOSYS where the platform
 * cannot tell: darwin). Thread-safe. */
int umi_os_proc_start(int pid, uint64_t *start);

/* Whether thread `tid` of process `pid` (whose start time's low 32 bits are `start`, as
 * umi_os_proc_start gives it) sleeps off its CPU, seen after this call began: 1 (it has
 * passed the scheduler's full barrier since its last user instruction, and passes another
 * before its next), 0 when it runs or is about to, or a negative errno when this cannot be
 * told: -ESRCH (no such thread, or the pid is another process's now), -EACCES or -EPERM
 * (not ours to look at), -ENOSYS (darwin). Costs a few system calls. */
int umi_os_thread_parked(int pid, uint32_t start, int32_t tid);

#endif
