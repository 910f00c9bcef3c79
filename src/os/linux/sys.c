/* SPDX-License-Identifier: MIT */
/* Linux: what the system says about itself (page size, idle CPUs, resident pages,
 * memory). */
#define _GNU_SOURCE
#include "linux.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

size_t umi_os_page_size(void)
{
	static size_t page;
	size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
	if (!p) {
		long v = sysconf(_SC_PAGESIZE);
		p = v > 0 ? (size_t)v : 4096;
		__atomic_store_n(&page, p, __ATOMIC_RELAXED);
	}
	return p;
}

/* Helper threads worth starting now: CPUs this thread may run on that no runnable task
 * holds at this instant (the 4th field of /proc/loadavg counts the runnable tasks, this
 * one included). A helper that gets no CPU only makes the calling thread wait for it. */
long umi_os_idle_cpus(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < cpus)
		cpus = CPU_COUNT(&set);
	if (cpus < 2)
		return 0;
	char buf[128];
	int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return cpus - 1; /* no /proc: assume the others are free */
	buf[n] = 0;
	const char *q = buf;
	for (int i = 0; i < 3 && q; i++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	long running = q ? strtol(q, NULL, 10) : 1;
	if (running < 1)
		running = 1;
	return running >= cpus ? 0 : cpus - running;
}

int umi_os_resident(const void *p, size_t len, unsigned char *vec)
{
	return mincore((void *)p, len, vec) == 0 ? 0 : -1;
}

/* Bytes of memory the system could hand out now (MemAvailable), or SIZE_MAX if unknown. */
static size_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return SIZE_MAX;
	char line[128];
	size_t kib = SIZE_MAX;
	while (fgets(line, sizeof line, f)) {
		unsigned long long v;
		if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
			kib = (size_t)v;
			break;
		}
	}
	fclose(f);
	return kib == SIZE_MAX || kib > SIZE_MAX / 1024 ? SIZE_MAX : kib * 1024;
}

bool umi_linux_shmem_thp(void)
{
	static int known; /* 0 not read yet, 1 no, 2 yes */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (!k) {
		char buf[128] = "";
		int fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
			      O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof buf - 1);
			buf[n > 0 ? n : 0] = '\0';
			close(fd);
		}
		k = strstr(buf, "[advise]") || strstr(buf, "[always]") ||
				    strstr(buf, "[within_size]") || strstr(buf, "[force]")
			    ? 2
			    : 1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 2;
}

/* Cheap for sizes far below the RAM size: /proc is read only for large ones. */
bool umi_linux_can_back(size_t size, bool pinned)
{
	struct sysinfo si;
	if (sysinfo(&si) != 0)
		return true;
	unsigned long long unit = si.mem_unit ? si.mem_unit : 1;
	unsigned long long ram = (unsigned long long)si.totalram * unit;
	unsigned long long swap = (unsigned long long)si.totalswap * unit;
	if (!pinned)
		return size <= ram + swap;
	if (size > ram)
		return false;
	if (size < ram / 4)
		return true;
	return size <= mem_available();
}
