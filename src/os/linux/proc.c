/* SPDX-License-Identifier: MIT */
/* Linux: threads and processes for the Grid's holders (thread ids, membarrier, process
 * start times from /proc/PID/stat). */
#define _GNU_SOURCE
#include "linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int32_t umi_os_tid(void)
{
	return (int32_t)syscall(SYS_gettid);
}

int umi_os_membarrier_register(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		return 0;
	return errno ? -errno : -EINVAL;
}

int umi_os_membarrier(bool all_processes)
{
	const int cmd = all_processes ? MEMBARRIER_CMD_GLOBAL : MEMBARRIER_CMD_PRIVATE_EXPEDITED;
	if (syscall(__NR_membarrier, cmd, 0, 0) == 0)
		return 0;
	return errno ? -errno : -EINVAL;
}

/* State (field 3) and start time (field 22) of /proc/PID/stat; false when unreadable. */
static bool proc_stat(int pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* The command name (field 2) is in parentheses and may hold anything: after the
	 * last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	p += 2;
	*state = *p;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	unsigned long long v = 0;
	if (sscanf(p, "%llu", &v) != 1)
		return false;
	*start = v;
	return true;
}

/* The start time is in clock ticks since boot: a pid reused later starts later. */
int umi_os_proc_start(int pid, uint64_t *start)
{
	if (pid <= 0)
		return -ESRCH;
	if (pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH)
		return -ESRCH;
	char st;
	if (!proc_stat(pid, &st, start))
		return -EACCES; /* there but unreadable (hidepid) */
	if (st == 'Z' || st == 'X')
		return -ESRCH;
	return 0;
}
