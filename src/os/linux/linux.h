/* SPDX-License-Identifier: MIT */
/* What the files of the Linux backend (src/os/linux/) share beyond os/os.h. Never
 * installed. The calls go one way: memfd.c -> share.c -> populate.c -> sys.c, and
 * share_sock.c -> share.c. */
#ifndef UNIMEM_OS_LINUX_H
#define UNIMEM_OS_LINUX_H

#include "os/os.h"

/* Whether the machine could ever back `size` bytes (pinned: in RAM now). sys.c. */
bool umi_linux_can_back(size_t size, bool pinned);

/* Whether shmem (memfd) pages may be transparent huge pages on this machine: the policy
 * in /sys/kernel/mm/transparent_hugepage/shmem_enabled is advise, always, within_size or
 * force. Read once. sys.c. */
bool umi_linux_shmem_thp(void);

/* Lock a mapped Block and fault every page in (populate.c): 0, -EPERM when
 * RLIMIT_MEMLOCK refuses (the detail recorded for unimem_strerror), -ENOMEM. `fresh`: the
 * memfd was just created by this open and holds no page, so zeros may be written into it
 * (unless `fault_only`: writes would allocate small pages where faults in a MADV_HUGEPAGE
 * mapping get huge ones); otherwise its pages hold data and are only faulted in. The
 * caller sets b->pinned. */
int umi_linux_pin(unimem_block *b, bool fresh, bool fault_only);

/* Cross-process sharing (share.c). Longest memfd name, with its NUL. */
#define UMI_SHARE_NAME_MAX 48

/* Give a Block that is being opened its id (b->id; 0 when all are taken) and write
 * the memfd name that carries it into `name`. Thread-safe, no system call beyond
 * getpid(). */
void umi_share_claim(unimem_block *b, char name[UMI_SHARE_NAME_MAX]);

/* Mark b's fd (just opened, sealed) as its creator's live fd of the id: lookup finds
 * only marked fds. Clears b->id when it cannot. */
void umi_share_mark(unimem_block *b);

/* Take the mark off before b's fd is closed (a dup of it may outlive the Block). */
void umi_share_unmark(unimem_block *b);

/* Give b's id back (no-op for ids this process did not claim for b). Call after
 * the memfd is closed. Thread-safe. */
void umi_share_release(unimem_block *b);

/* Make b (fresh from block.c) the holder of the memfd `fd` (taken over: closed on
 * failure) that a peer handed over: checks it is a Block (-EBADMSG, the detail says which
 * check failed), of the announced size and page (0: any), within `max` bytes (0: no
 * limit; else -EFBIG) and what the machine can back pinned (-ENOMEM), all before touching
 * a page; maps it (read-only when sealed with F_SEAL_FUTURE_WRITE) and, with `pin`, pins
 * it (-EPERM). */
int umi_share_adopt(unimem_block *b, int fd, uint64_t want, uint64_t want_page, uint32_t id,
		    uint64_t max, bool pin);

#endif
