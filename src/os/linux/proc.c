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

/* State (field 3) and start time (field 22) from a stat file open as fd (closed here);
 * false when unreadable. */
static bool parse_stat(int fd, char *state, uint64_t *start)
{
	char buf[1024];
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

static bool proc_stat(int pid, char *state, uint64_t *start)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	return parse_stat(open(path, O_RDONLY | O_CLOEXEC), state, start);
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

/* The kernel's /proc/PID/task/TID/syscall says "running" unless the thread sleeps and is
 * off its CPU: it waits (wait_task_inactive) until the thread has switched out, under the
 * scheduler's locks, and checks that it did not switch again meanwhile. The process is
 * opened first and its start time checked through that open directory, so that a pid
 * reused since cannot answer for it. */
int umi_os_thread_parked(int pid, uint32_t start, int32_t tid)
{
	char path[64], buf[16];
	if (pid <= 0 || tid <= 0)
		return -ESRCH;
	snprintf(path, sizeof path, "/proc/%d", pid);
	const int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	int r = -ESRCH;
	char st;
	uint64_t began;
	if (parse_stat(openat(dir, "stat", O_RDONLY | O_CLOEXEC), &st, &began) &&
	    (uint32_t)began == start && st != 'Z' && st != 'X') {
		snprintf(path, sizeof path, "task/%d/syscall", (int)tid);
		const int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
		} else {
			const ssize_t n = read(fd, buf, sizeof buf);
			r = n > 0 ? (n < 7 || memcmp(buf, "running", 7) != 0) : n == 0 ? -EIO : -errno;
			close(fd);
		}
	}
	close(dir);
	return r;
}
