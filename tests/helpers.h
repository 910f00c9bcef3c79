/* SPDX-License-Identifier: MIT */
/* Helpers shared by the Criterion tests: resource counts, privilege drop. */
#ifndef UNIMEM_TEST_HELPERS_H
#define UNIMEM_TEST_HELPERS_H

#include <dirent.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Open file descriptors of this process. */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Mappings of this process. */
static inline int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		if (c == '\n')
			n++;
	fclose(f);
	return n;
}

/* A field of /proc/self/status in kB (e.g. "VmLck"), or -1. */
static inline long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			sscanf(line + n + 1, "%ld", &v);
			break;
		}
	fclose(f);
	return v;
}

/* Become an unprivileged user when root, so that RLIMIT_MEMLOCK applies (root's
 * CAP_IPC_LOCK ignores it). Criterion runs each test in its own process, so this
 * stays inside the test. Returns 0, or -1 when it could not. */
static inline int drop_privileges(void)
{
	if (geteuid() != 0)
		return 0;
	(void)setgroups(0, NULL);
	if (setgid(65534) != 0 || setuid(65534) != 0)
		return -1;
	return geteuid() == 0 ? -1 : 0;
}

#endif
