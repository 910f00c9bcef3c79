/* SPDX-License-Identifier: MIT */
/* Helpers shared by the Criterion tests: resource counts, privilege drop. */
#ifndef UNIMEM_TEST_HELPERS_H
#define UNIMEM_TEST_HELPERS_H

#include <dirent.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Whether the test runs under AddressSanitizer, which reserves terabytes of shadow
 * address space at start: an RLIMIT_AS test cannot work there. */
#if defined(__SANITIZE_ADDRESS__)
#define UNIMEM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNIMEM_TEST_ASAN 1
#endif
#endif
#ifndef UNIMEM_TEST_ASAN
#define UNIMEM_TEST_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define UNIMEM_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNIMEM_TEST_TSAN 1
#endif
#endif
#ifndef UNIMEM_TEST_TSAN
#define UNIMEM_TEST_TSAN 0
#endif

static inline int under_valgrind(void);

/* Mappings of this process. Under a sanitizer or valgrind, whose runtimes map, unmap and
 * remap memory of their own at any time (AddressSanitizer's allocator regions, TSan's
 * shadow of unmapped memory; neighbouring mappings then merge or split), only the memfd
 * mappings count: every Block's. The plain build counts them all. */
static inline int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	int n = 0, memfd_only = UNIMEM_TEST_ASAN || UNIMEM_TEST_TSAN || under_valgrind();
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		unsigned long long start;
		if (sscanf(line, "%llx", &start) != 1)
			continue;
		if (!memfd_only || strstr(line, "/memfd:"))
			n++;
		while (!strchr(line, '\n') && fgets(line, sizeof line, f))
			; /* the rest of a long line */
	}
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


/* Whether the test runs under valgrind (its own mappings come and go, and it keeps
 * address space for itself: resource-limit tests cannot count on the process alone).
 * The 'valgrind' test setup sets UNIMEM_UNDER_VALGRIND. */
static inline int under_valgrind(void)
{
	const char *v = getenv("UNIMEM_UNDER_VALGRIND");
	return v && *v && *v != '0';
}

#endif
