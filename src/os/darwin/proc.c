/* SPDX-License-Identifier: MIT */
/* macOS: threads and processes for the Grid's holders. No membarrier: the Grid runs
 * without its per-thread caches there (umi_os_membarrier_register() says -ENOSYS). No
 * start time of another process either (it would need libproc): a holder that ended is
 * still found by kill(pid, 0), but a reused pid hides it. Declares what it uses itself
 * (decls.h), as iosurface.c. */
#include "os/os.h"
#include "decls.h"

int32_t umi_os_tid(void)
{
	static int32_t drawn;
	static _Thread_local int32_t mine;
	if (!mine)
		mine = __atomic_add_fetch(&drawn, 1, __ATOMIC_RELAXED);
	return mine;
}

int umi_os_membarrier_register(void)
{
	return -DARWIN_ENOSYS;
}

int umi_os_membarrier(bool all_processes)
{
	(void)all_processes;
	return -DARWIN_ENOSYS;
}

int umi_os_proc_start(int pid, uint64_t *start)
{
	if (pid <= 0)
		return -DARWIN_ESRCH;
	if (kill(pid, 0) != 0 && *__error() == DARWIN_ESRCH)
		return -DARWIN_ESRCH;
	*start = 0;
	return -DARWIN_ENOSYS;
}

int umi_os_thread_parked(int pid, uint32_t start, int32_t tid)
{
	(void)pid;
	(void)start;
	(void)tid;
	return -DARWIN_ENOSYS;
}
