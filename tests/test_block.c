/* SPDX-License-Identifier: MIT */
/* Block: sizes, alignment, zeroing, pinning, seals, flags, bad input, limits, leaks. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

Test(block, sizes_round_up_to_the_page)
{
	size_t asks[] = { 1, 100, page() - 1, page(), page() + 1, 3 * page() + 7, 1 << 20 };
	for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
		unimem_block *b = NULL;
		cr_assert_eq(unimem_block_open(&b, asks[i], 0), 0, "open %zu", asks[i]);
		size_t want = (asks[i] + page() - 1) / page() * page();
		cr_assert_eq(unimem_block_size(b), want, "size of %zu", asks[i]);
		cr_assert_eq(unimem_block_page_size(b), page());
		cr_assert_eq((uintptr_t)unimem_block_ptr(b) % page(), 0);
		unimem_block_close(b);
	}
}

Test(block, memory_is_zeroed_writable_and_stays_put)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	unsigned char *p = unimem_block_ptr(b);
	for (size_t i = 0; i < unimem_block_size(b); i++)
		cr_assert_eq(p[i], 0, "byte %zu not zero", i);
	memset(p, 0xa5, unimem_block_size(b));
	cr_assert_eq(unimem_block_ptr(b), p);
	cr_assert_eq(p[unimem_block_size(b) - 1], 0xa5);
	unimem_block_close(b);
}

Test(block, pinned_by_default_and_resident)
{
	long before = status_kb("VmLck");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4 << 20, 0), 0);
	cr_assert(unimem_block_pinned(b));
	long after = status_kb("VmLck");
	cr_assert_geq(after - before, (long)(unimem_block_size(b) / 1024), "VmLck %ld -> %ld", before,
		      after);
	size_t pages = unimem_block_size(b) / page();
	unsigned char *vec = malloc(pages);
	cr_assert_eq(mincore(unimem_block_ptr(b), unimem_block_size(b), vec), 0);
	for (size_t i = 0; i < pages; i++)
		cr_assert(vec[i] & 1, "page %zu not resident", i);
	free(vec);
	unimem_block_close(b);
	cr_assert_eq(status_kb("VmLck"), before, "lock released at close");
}

Test(block, big_pinned_block_uses_the_parallel_populate)
{
	/* Above the threshold where several threads populate: every page must still be
	 * resident and locked, and zero. */
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, (64u << 20) + 12345, 0), 0);
	size_t pages = unimem_block_size(b) / page();
	unsigned char *vec = malloc(pages);
	cr_assert_eq(mincore(unimem_block_ptr(b), unimem_block_size(b), vec), 0);
	for (size_t i = 0; i < pages; i++)
		cr_assert(vec[i] & 1, "page %zu not resident", i);
	free(vec);
	const unsigned char *p = unimem_block_ptr(b);
	for (size_t i = 0; i < unimem_block_size(b); i += 512)
		cr_assert_eq(p[i], 0);
	unimem_block_close(b);
}

Test(block, unpinned_is_lazy)
{
	long before = status_kb("VmLck");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 8 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(b));
	cr_assert_eq(status_kb("VmLck"), before);
	size_t pages = unimem_block_size(b) / page();
	unsigned char *vec = malloc(pages);
	cr_assert_eq(mincore(unimem_block_ptr(b), unimem_block_size(b), vec), 0);
	for (size_t i = 0; i < pages; i++)
		cr_assert_not(vec[i] & 1, "page %zu resident in a lazy Block", i);
	free(vec);
	/* Still zeroed and usable. */
	unsigned char *p = unimem_block_ptr(b);
	cr_assert_eq(p[12345], 0);
	p[12345] = 7;
	cr_assert_eq(p[12345], 7);
	unimem_block_close(b);
}

Test(block, huge_flag_gives_huge_pages_or_silently_normal_ones)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 3 << 20, UNIMEM_BLOCK_HUGE), 0);
	size_t ps = unimem_block_page_size(b);
	cr_assert(ps == page() || ps >= (2u << 20), "page size %zu", ps);
	cr_assert_eq(unimem_block_size(b) % ps, 0);
	cr_assert_geq(unimem_block_size(b), 3u << 20);
	cr_assert_eq((uintptr_t)unimem_block_ptr(b) % ps, 0);
	memset(unimem_block_ptr(b), 1, unimem_block_size(b));
	unimem_block_close(b);
	cr_assert_eq(unimem_block_open(&b, 1, UNIMEM_BLOCK_HUGE | UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(b));
	unimem_block_close(b);
}

/* The shmem THP policy of this machine, e.g. "never" (empty when unknown). */
/* The selected choice ("[x]") of a sysfs policy file into out, or "" where unreadable. */
static void sysfs_choice(const char *path, char *out, size_t cap)
{
	char buf[128] = "";
	out[0] = '\0';
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
	if (l && r && (size_t)(r - l) < cap) {
		memcpy(out, l + 1, (size_t)(r - l - 1));
		out[r - l - 1] = '\0';
	}
}

static void shmem_thp(char *out, size_t cap)
{
	sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", out, cap);
}

/* The value of field `key` ("ShmemPmdMapped", "AnonHugePages", "VmFlags") of the mapping
 * that holds p in /proc/self/smaps, into out (its text after the colon); false where the
 * mapping has no such field. */
static bool smaps_field(const void *p, const char *key, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	cr_assert_not_null(f);
	char line[512];
	const size_t n = strlen(key);
	bool in = false, found = false;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');
		if (dash && sp && dash < sp && sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			if (in)
				break; /* the next mapping */
			in = lo <= (uintptr_t)p && (uintptr_t)p < hi;
		} else if (in && !strncmp(line, key, n) && line[n] == ':') {
			snprintf(out, cap, "%s", line + n + 1);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* That field in kB ("ShmemPmdMapped", "AnonHugePages"), or -1. */
static long smaps_kb(const void *p, const char *key)
{
	char v[64];
	long kb = -1;
	if (smaps_field(p, key, v, sizeof v))
		sscanf(v, "%ld", &kb);
	return kb;
}

/* Where shmem THP is allowed, a pinned UNIMEM_BLOCK_HUGE Block is populated by faults
 * (writes into the file would allocate small pages): its pages come mapped huge. */
Test(block, huge_flag_gets_transparent_huge_pages_where_shmem_allows_them)
{
	char pol[32];
	shmem_thp(pol, sizeof pol);
	if (strcmp(pol, "advise") && strcmp(pol, "always") && strcmp(pol, "within_size") &&
	    strcmp(pol, "force"))
		cr_skip("shmem transparent huge pages are [%s] here (advise or always needed)",
			pol[0] ? pol : "unknown");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 64 << 20, UNIMEM_BLOCK_HUGE), 0);
	if (unimem_block_page_size(b) > page()) {
		unimem_block_close(b);
		cr_skip("a hugetlb pool served the Block: nothing transparent to check");
	}
	const unsigned char *p = unimem_block_ptr(b);
	const long pmd = smaps_kb(p, "ShmemPmdMapped");
	cr_assert_geq(pmd, (64 << 10) / 2, "ShmemPmdMapped %ld kB of 65536", pmd);
	for (size_t i = 0; i < unimem_block_size(b); i += 4096)
		cr_assert_eq(p[i], 0);
	unimem_block_close(b);
}

/* A field of /proc/meminfo ("HugePages_Free", "Hugepagesize"), or -1. */
static long meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long v = -1;
	size_t n = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* A pinned Block from a hugetlb pool: every page is faulted in by the open (lock-on-fault
 * does not apply to hugetlb pages: the open populates, then locks), and a refusal of the
 * lock gives every page back. Runs where the machine has a pool of 40 free pages. */
Test(block, a_pinned_hugetlb_block_is_faulted_in_and_a_refused_one_gives_its_pages_back)
{
	const long free0 = meminfo("HugePages_Free"), hkb = meminfo("Hugepagesize");
	if (free0 < 40 || hkb <= 0)
		cr_skip("no hugetlb pool of 40 free pages here (vm.nr_hugepages; HugePages_Free %ld)",
			free0);
	const size_t hp = (size_t)hkb << 10, size = 32 * hp;
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, size, UNIMEM_BLOCK_HUGE), 0);
	if (unimem_block_page_size(b) != hp) {
		unimem_block_close(b);
		cr_assert_fail("the pool had pages, yet the Block got pages of %zu bytes", unimem_block_page_size(b));
	}
	cr_assert(unimem_block_pinned(b));
	cr_assert_leq(meminfo("HugePages_Free"), free0 - 32, "pages not faulted in by the open");
	const volatile unsigned char *p = unimem_block_ptr(b);
	for (size_t i = 0; i < size; i += 4096)
		cr_assert_eq(p[i], 0);
	unimem_block_close(b);
	cr_assert_eq(meminfo("HugePages_Free"), free0);

	cr_assert_eq(drop_privileges(), 0, "cannot drop root to test RLIMIT_MEMLOCK");
	struct rlimit rl = { 64 << 10, 64 << 10 };
	cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	int fds = count_fds(), maps = count_maps();
	b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, size, UNIMEM_BLOCK_HUGE), -EPERM);
	cr_assert_null(b);
	cr_assert_eq(count_fds(), fds, "fd leaked");
	cr_assert_eq(count_maps(), maps, "mapping leaked");
	cr_assert_eq(meminfo("HugePages_Free"), free0, "huge pages kept after the refusal");
	cr_assert(strstr(unimem_strerror(-EPERM), "RLIMIT_MEMLOCK"));
}

Test(block, sealed_against_shrink_and_grow)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 16, 0), 0);
	int fd = unimem_block_fd(b);
	cr_assert_geq(fd, 0);
	int seals = fcntl(fd, F_GET_SEALS);
	cr_assert(seals & F_SEAL_SHRINK);
	cr_assert(seals & F_SEAL_GROW);
	cr_assert_neq(ftruncate(fd, 0), 0);
	cr_assert_eq(errno, EPERM);
	cr_assert_neq(ftruncate(fd, (off_t)unimem_block_size(b) * 2), 0);
	cr_assert_eq(errno, EPERM);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* The memory is intact. */
	((volatile unsigned char *)unimem_block_ptr(b))[unimem_block_size(b) - 1] = 1;
	unimem_block_close(b);
}

Test(block, bad_sizes_and_flags)
{
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, 0, 0), -EINVAL);
	cr_assert_null(b);
	b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, SIZE_MAX, 0), -EINVAL);
	cr_assert_null(b);
	cr_assert_eq(unimem_block_open(&b, SIZE_MAX - page() + 2, 0), -EINVAL);
	cr_assert_eq(unimem_block_open(&b, SIZE_MAX, UNIMEM_BLOCK_HUGE), -EINVAL);
	cr_assert_eq(unimem_block_open(&b, 4096, 1u << 7), -EINVAL);
	cr_assert_null(b);
	cr_assert_eq(unimem_block_open(NULL, 4096, 0), -EINVAL);
}

Test(block, sizes_the_system_cannot_back_give_enomem)
{
	int fds = count_fds(), maps = count_maps();
	unimem_block *b = (unimem_block *)0x1;
	size_t huge = (size_t)1 << 46; /* 64 TiB */
	cr_assert_eq(unimem_block_open(&b, huge, 0), -ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(unimem_block_open(&b, huge, UNIMEM_BLOCK_UNPINNED), -ENOMEM);
	cr_assert_eq(unimem_block_open(&b, SIZE_MAX - 2 * page(), 0), -ENOMEM);
	cr_assert_eq(count_fds(), fds);
	cr_assert_eq(count_maps(), maps);
}

Test(block, memlock_limit_refusal_is_eperm_with_a_clear_message)
{
	cr_assert_eq(drop_privileges(), 0, "cannot drop root to test RLIMIT_MEMLOCK");
	struct rlimit rl = { 64 << 10, 64 << 10 };
	cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	int fds = count_fds(), maps = count_maps();
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, 16 << 20, 0), -EPERM);
	cr_assert_null(b);
	cr_assert_eq(count_fds(), fds, "fd leaked");
	cr_assert_eq(count_maps(), maps, "mapping leaked");
	const char *msg = unimem_strerror(-EPERM);
	cr_assert(strstr(msg, "RLIMIT_MEMLOCK"), "%s", msg);
	cr_assert(strstr(msg, "UNIMEM_BLOCK_UNPINNED"), "%s", msg);
	cr_assert(strstr(msg, "65536"), "the limit's value: %s", msg);
	/* Unpinned still works, and so does a Block under the limit. */
	cr_assert_eq(unimem_block_open(&b, 16 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	unimem_block_close(b);
	cr_assert_eq(unimem_block_open(&b, 16 << 10, 0), 0);
	cr_assert(unimem_block_pinned(b));
	unimem_block_close(b);
	cr_assert_eq(count_fds(), fds);
	cr_assert_eq(count_maps(), maps);
}

Test(block, address_space_limit_gives_enomem_and_leaks_nothing)
{
	if (UNIMEM_TEST_ASAN)
		cr_skip("AddressSanitizer reserves terabytes of shadow address space: RLIMIT_AS "
			"cannot be tested under it (the plain, TSan and valgrind runs test it)");
	unimem_block *warm;
	cr_assert_eq(unimem_block_open(&warm, 4096, 0), 0); /* load lazily bound code first */
	unimem_block_close(warm);
	int fds = count_fds(), maps = count_maps();
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_AS, &rl), 0);
	/* Room for what the process has now plus 256 MiB: a 1 GiB Block cannot fit. */
	rl.rlim_cur = (rlim_t)status_kb("VmSize") * 1024 + (256ull << 20);
	cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
	unimem_block *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, 1ull << 30, 0), -ENOMEM);
	cr_assert_null(b);
	cr_assert_eq(unimem_block_open(&b, 1ull << 30, UNIMEM_BLOCK_UNPINNED), -ENOMEM);
	cr_assert_eq(count_fds(), fds);
	cr_assert_eq(count_maps(), maps);
}

Test(block, open_close_in_a_loop_leaks_nothing)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	unimem_block_close(b);
	int fds = count_fds(), maps = count_maps();
	for (int i = 0; i < 300; i++) {
		cr_assert_eq(unimem_block_open(&b, (size_t)(i + 1) * 4096, i & 1 ? UNIMEM_BLOCK_UNPINNED : 0),
			     0);
		unimem_block_close(b);
	}
	cr_assert_eq(count_fds(), fds);
	cr_assert_eq(count_maps(), maps);
}

Test(block, accessors_on_null_and_close_null)
{
	unimem_block_close(NULL);
	cr_assert_null(unimem_block_ptr(NULL));
	cr_assert_eq(unimem_block_size(NULL), 0);
	cr_assert_eq(unimem_block_fd(NULL), -1);
	cr_assert_not(unimem_block_pinned(NULL));
	cr_assert_null(unimem_block_handle(NULL));
	cr_assert_eq(unimem_block_id(NULL), 0);
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	cr_assert_null(unimem_block_handle(b), "no IOSurface on Linux");
	unimem_block_close(b);
}

Test(block, two_blocks_are_distinct)
{
	unimem_block *a, *b;
	cr_assert_eq(unimem_block_open(&a, 8192, 0), 0);
	cr_assert_eq(unimem_block_open(&b, 8192, 0), 0);
	cr_assert_neq(unimem_block_ptr(a), unimem_block_ptr(b));
	cr_assert_neq(unimem_block_fd(a), unimem_block_fd(b));
	memset(unimem_block_ptr(a), 1, 8192);
	cr_assert_eq(((unsigned char *)unimem_block_ptr(b))[0], 0);
	unimem_block_close(a);
	unimem_block_close(b);
}

/* Whether [p, p + len) is mapped in this process (mincore fails with ENOMEM where not). */
static bool mapped(const void *p, size_t len)
{
	unsigned char vec[8];
	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(page() - 1)), len < 8 * page() ? len : 8 * page(),
		       vec) == 0;
}

/* Whether the mapping that holds p has VmFlags `flag` ("hg", "dc", "lo") in
 * /proc/self/smaps. */
static bool vm_flag(const void *p, const char *flag)
{
	char v[512];
	bool found = false;
	if (smaps_field(p, "VmFlags", v, sizeof v))
		for (char *t = strtok(v, " \n"); t; t = strtok(NULL, " \n"))
			found |= !strcmp(t, flag);
	return found;
}

/* UNIMEM_BLOCK_PRIVATE: pinned, zeroed, resident like any Block, but no fd and no id, so
 * nothing can look it up, receive or seal it; closed, its range is gone. */
Test(block, a_private_block_is_pinned_zeroed_and_this_process_s_alone)
{
	long before = status_kb("VmLck");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, (4 << 20) + 1, UNIMEM_BLOCK_PRIVATE), 0);
	cr_assert_eq(unimem_block_size(b), (4 << 20) + page());
	cr_assert_eq(unimem_block_page_size(b), page());
	cr_assert(unimem_block_pinned(b));
	cr_assert(unimem_block_writable(b));
	cr_assert_eq(unimem_block_fd(b), -1);
	cr_assert_eq(unimem_block_id(b), 0);
	cr_assert_geq(status_kb("VmLck") - before, (long)(unimem_block_size(b) / 1024));
	unsigned char *p = unimem_block_ptr(b);
	size_t pages = unimem_block_size(b) / page();
	unsigned char *vec = malloc(pages);
	cr_assert_eq(mincore(p, unimem_block_size(b), vec), 0);
	for (size_t i = 0; i < pages; i++)
		cr_assert(vec[i] & 1, "page %zu not resident", i);
	free(vec);
	for (size_t i = 0; i < unimem_block_size(b); i += 512)
		cr_assert_eq(p[i], 0);
	memset(p, 0x5a, unimem_block_size(b));
	cr_assert(vm_flag(p, "dc"), "MADV_DONTFORK (VmFlags dc) is not set");
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(unimem_block_send(sv[0], b), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(unimem_block_seal(b), -EINVAL);
	cr_assert_eq(unimem_block_offset(b, p + 100), 100);
	void *ptr = p;
	size_t size = unimem_block_size(b);
	unimem_block_close(b);
	cr_assert_not(mapped(ptr, size), "the range is still mapped after close");
	cr_assert_eq(status_kb("VmLck"), before, "lock released at close");
	/* Unpinned: lazy, like any Block. */
	cr_assert_eq(unimem_block_open(&b, 4 << 20, UNIMEM_BLOCK_PRIVATE | UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(b));
	cr_assert_eq(status_kb("VmLck"), before);
	cr_assert_eq(((unsigned char *)unimem_block_ptr(b))[12345], 0);
	unimem_block_close(b);
}

/* A child of fork() has no mapping where its parent's private Block is (no page of it
 * shared copy-on-write), and the parent's writes after the fork stay in its own pages. */
Test(block, a_fork_child_does_not_inherit_a_private_block)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, UNIMEM_BLOCK_PRIVATE), 0);
	unsigned char *p = unimem_block_ptr(b);
	p[0] = 1;
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t kid = fork();
	cr_assert_geq(kid, 0);
	if (kid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		_exit(mapped(p, 1 << 20) ? 1 : 0);
	}
	p[0] = 2; /* no copy-on-write break: the pages are not the child's too */
	cr_assert_eq(write(go[1], "x", 1), 1);
	int st;
	cr_assert_eq(waitpid(kid, &st, 0), kid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child has the Block mapped (status %d)",
		  st);
	cr_assert_eq(p[0], 2);
	close(go[0]);
	close(go[1]);
	unimem_block_close(b);
}

/* What /sys/kernel/mm/transparent_hugepage/enabled selects ("always", "madvise",
 * "never"), or "" where it cannot be read. */
static void anon_thp(char *out, size_t cap)
{
	sysfs_choice("/sys/kernel/mm/transparent_hugepage/enabled", out, cap);
}

/* PRIVATE | HUGE: on a 2 MiB boundary, marked MADV_HUGEPAGE, and where anonymous THP is
 * allowed (always, madvise: the usual defaults, which leave shmem THP `never`) its pinned
 * pages come huge. */
Test(block, a_private_huge_block_gets_transparent_huge_pages_where_anonymous_memory_may)
{
	unimem_block *b;
	const size_t len = (size_t)32 << 20;
	cr_assert_eq(unimem_block_open(&b, len + 4096, UNIMEM_BLOCK_PRIVATE | UNIMEM_BLOCK_HUGE), 0);
	const unsigned char *p = unimem_block_ptr(b);
	cr_assert_eq((uintptr_t)p % (2u << 20), 0, "%p is not on a 2 MiB boundary", (void *)p);
	cr_assert_eq(unimem_block_size(b), len + 4096);
	const long ahp = smaps_kb(p, "AnonHugePages");
	const bool hg = vm_flag(p, "hg");
	cr_assert(vm_flag(p, "lo"), "not locked (VmFlags lo)");
	for (size_t i = 0; i < unimem_block_size(b); i += 4096)
		cr_assert_eq(p[i], 0);
	char pol[32];
	anon_thp(pol, sizeof pol);
	if (strcmp(pol, "always") && strcmp(pol, "madvise")) {
		unimem_block_close(b);
		cr_skip("anonymous transparent huge pages are [%s] here", pol[0] ? pol : "unknown");
	}
	cr_assert(hg, "MADV_HUGEPAGE (VmFlags hg) is not set");
	cr_assert_geq(ahp, (long)(len >> 10) / 2, "AnonHugePages %ld kB of %zu", ahp, len >> 10);
	unimem_block_close(b);
}

/* A refused pin of a private Block: -EPERM with the message, and nothing left mapped. */
Test(block, a_private_block_whose_pin_is_refused_leaves_nothing)
{
	cr_assert_eq(drop_privileges(), 0, "cannot drop root to test RLIMIT_MEMLOCK");
	struct rlimit rl = { 64 << 10, 64 << 10 };
	cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	for (int huge = 0; huge < 2; huge++) {
		int maps = count_maps();
		long vm = status_kb("VmSize");
		unimem_block *b = (unimem_block *)0x1;
		cr_assert_eq(unimem_block_open(&b, 16 << 20,
					       UNIMEM_BLOCK_PRIVATE | (huge ? UNIMEM_BLOCK_HUGE : 0)),
			     -EPERM);
		cr_assert_null(b);
		cr_assert(strstr(unimem_strerror(-EPERM), "RLIMIT_MEMLOCK"));
		cr_assert_eq(count_maps(), maps, "mapping leaked");
		cr_assert_lt(status_kb("VmSize") - vm, 8 << 10, "VmSize %ld -> %ld kB", vm,
			     status_kb("VmSize"));
	}
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 16 << 10, UNIMEM_BLOCK_PRIVATE), 0);
	unimem_block_close(b);
}
