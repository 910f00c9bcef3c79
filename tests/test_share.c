/* SPDX-License-Identifier: MIT */
/* Sharing: ids and lookup, send/recv, other users, seals against a peer, crashed
 * creators, names left behind, leaks. Peers are real processes: this very binary,
 * exec'd again with UNIMEM_SHARE_PEER set, runs one peer role and exits before
 * Criterion's main (see peer_main). Nothing here writes to stdout (TAP). */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define PEER_ENV "UNIMEM_SHARE_PEER"
#define NOBODY 65534


/* Entries of /dev/shm whose name mentions unimem (the design keeps none there). */
static int unimem_names_in_dev_shm(void)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, "unimem"))
			n++;
	closedir(d);
	return n;
}

/* Open fds of this process that are memfds carrying the name of id `id`. */
static int fds_named(uint32_t id)
{
	char want[64];
	snprintf(want, sizeof want, "/memfd:unimem:%08x (deleted)", (unsigned)id);
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char link[128];
		ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
		if (len > 0) {
			link[len] = '\0';
			n += !strcmp(link, want);
		}
	}
	closedir(d);
	return n;
}

/* Whether this process may look into other users' processes (root's exception). */
static bool can_ptrace_others(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	char line[256];
	unsigned long long caps = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "CapEff:", 7)) {
			caps = strtoull(line + 7, NULL, 16);
			break;
		}
	fclose(f);
	return caps & (1ull << 19); /* CAP_SYS_PTRACE */
}

static int become_nobody(void)
{
	(void)setgroups(0, NULL);
	if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		return -1;
	return geteuid() == NOBODY ? 0 : -1;
}

/* ---- the float pattern the tests and peers agree on */

static float pattern(size_t i)
{
	return (float)i * 0.5f + 1.0f;
}

static void fill(unimem_block *b, size_t n)
{
	float *f = unimem_block_ptr(b);
	for (size_t i = 0; i < n; i++)
		f[i] = pattern(i);
}

static int check(const unimem_block *b, size_t n)
{
	const float *f = unimem_block_ptr(b);
	for (size_t i = 0; i < n; i++)
		if (f[i] != pattern(i))
			return -1;
	return 0;
}

#define NFLOATS (64u * 1024u) /* 256 KiB */
#define MARK 4242.0f          /* what a peer writes at the end to show it wrote */

/* ---- peer roles, run in an exec'd copy of this binary */

/* A Block the peer got: its size, pinning and fd must be true, its floats ours; it
 * writes MARK into the last float. Returns an exit code. */
static int peer_check(unimem_block *b)
{
	if (unimem_block_size(b) < NFLOATS * sizeof(float))
		return 11;
	if (!unimem_block_pinned(b))
		return 12;
	int fd = unimem_block_fd(b);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size != unimem_block_size(b))
		return 13;
	if (check(b, NFLOATS - 1))
		return 14;
	((float *)unimem_block_ptr(b))[NFLOATS - 1] = MARK;
	unimem_block_close(b);
	return 0;
}

static int peer_truncate(unimem_block *b)
{
	int fd = unimem_block_fd(b);
	off_t size = (off_t)unimem_block_size(b);
	if (ftruncate(fd, size / 2) == 0 || errno != EPERM)
		return 21;
	if (ftruncate(fd, 0) == 0 || errno != EPERM)
		return 22;
	if (ftruncate(fd, size * 2) == 0 || errno != EPERM)
		return 23;
	if (fallocate(fd, 0, 0, size * 2) == 0 || errno != EPERM)
		return 24;
	/* Nor can it lift the seals. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0)
		return 25;
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size != size)
		return 26;
	unimem_block_close(b);
	return 0;
}

/* A peer that got a sealed Block and tries to take or change its pages. */
static int peer_sealed(unimem_block *b)
{
	if (unimem_block_writable(b))
		return 31;
	if (!unimem_block_pinned(b) || check(b, NFLOATS))
		return 32;
	int fd = unimem_block_fd(b);
	off_t size = (off_t)unimem_block_size(b);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, size) == 0 ||
	    errno != EPERM)
		return 33;
	if (mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED)
		return 34;
	if (mprotect(unimem_block_ptr(b), (size_t)size, PROT_READ | PROT_WRITE) == 0)
		return 35;
	if (madvise(unimem_block_ptr(b), (size_t)size, MADV_REMOVE) == 0)
		return 36;
	if (pwrite(fd, "x", 1, 0) >= 0)
		return 37;
	/* A writable open of its own through /proc changes nothing: the seal is the inode's. */
	char path[40];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int w = open(path, O_RDWR | O_CLOEXEC);
	if (w >= 0) {
		bool punched = fallocate(w, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, size) == 0;
		close(w);
		if (punched)
			return 38;
	}
	unimem_block_close(b);
	return 0;
}

static void *pause_forever(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int peer_run(char *cmd)
{
	char *role = strtok(cmd, " ");
	char *arg = strtok(NULL, " ");
	if (!role || !arg)
		return 2;
	unsigned long v = strtoul(arg, NULL, 0);
	unimem_block *b = NULL;
	int err;
	if (!strcmp(role, "lookup")) { /* lookup <id>: check the floats, write MARK */
		if ((err = unimem_block_lookup(&b, (uint32_t)v)))
			return 100 + (-err & 0x7f);
		return peer_check(b);
	}
	if (!strcmp(role, "recv")) { /* recv <socket fd>: the same, for a sent Block */
		if ((err = unimem_block_recv(&b, (int)v)))
			return 100 + (-err & 0x7f);
		return peer_check(b);
	}
	if (!strcmp(role, "truncate")) { /* truncate <id>: every size change refused */
		if ((err = unimem_block_lookup(&b, (uint32_t)v)))
			return 100 + (-err & 0x7f);
		return peer_truncate(b);
	}
	if (!strcmp(role, "truncate-recv")) { /* truncate-recv <socket fd> */
		if ((err = unimem_block_recv(&b, (int)v)))
			return 100 + (-err & 0x7f);
		return peer_truncate(b);
	}
	if (!strcmp(role, "sealed")) { /* sealed <socket fd>: a sealed Block, hostile peer */
		if ((err = unimem_block_recv(&b, (int)v)))
			return 100 + (-err & 0x7f);
		return peer_sealed(b);
	}
	if (!strcmp(role, "sealed-lookup")) { /* sealed-lookup <id> */
		if ((err = unimem_block_lookup(&b, (uint32_t)v)))
			return 100 + (-err & 0x7f);
		return peer_sealed(b);
	}
	if (!strcmp(role, "exec-id")) { /* exec-id <pipe fd>: tell an id, exec, tell one */
		if ((err = unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED)))
			return 100 + (-err & 0x7f);
		uint32_t id = unimem_block_id(b);
		if (write((int)v, &id, sizeof id) != sizeof id)
			return 3;
		char next[64];
		snprintf(next, sizeof next, "open-id %lu", v);
		setenv(PEER_ENV, next, 1);
		execl("/proc/self/exe", "test_share", (char *)NULL);
		return 4;
	}
	if (!strcmp(role, "open-id")) { /* open-id <pipe fd>: tell the id of a new Block */
		if ((err = unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED)))
			return 100 + (-err & 0x7f);
		uint32_t id = unimem_block_id(b);
		return write((int)v, &id, sizeof id) == sizeof id ? 0 : 3;
	}
	if (!strcmp(role, "create-exit")) { /* create-exit <pipe fd>: main thread exits */
		if ((err = unimem_block_open(&b, NFLOATS * sizeof(float), 0)))
			return 100 + (-err & 0x7f);
		fill(b, NFLOATS);
		pthread_t t;
		if (pthread_create(&t, NULL, pause_forever, NULL))
			return 5;
		uint32_t id = unimem_block_id(b);
		if (write((int)v, &id, sizeof id) != sizeof id)
			return 3;
		/* The main thread exits, the process lives on in t until SIGKILL. (A raw
		 * exit of this thread: pthread_exit() inside the constructor that runs
		 * the peer ends the process here.) */
		syscall(SYS_exit, 0);
		return 6;
	}
	if (!strcmp(role, "create")) { /* create <pipe fd>: fill, tell the id, wait */
		if ((err = unimem_block_open(&b, NFLOATS * sizeof(float), 0)))
			return 100 + (-err & 0x7f);
		fill(b, NFLOATS);
		uint32_t id = unimem_block_id(b);
		if (write((int)v, &id, sizeof id) != sizeof id)
			return 3;
		for (;;)
			pause(); /* until SIGKILL */
	}
	return 2;
}

/* Runs before Criterion's main: in a peer, do the role and never reach Criterion. */
__attribute__((constructor)) static void peer_main(void)
{
	char *cmd = getenv(PEER_ENV);
	if (!cmd)
		return;
	cmd = strdup(cmd);
	_exit(cmd ? peer_run(cmd) : 2);
}

/* Start a peer: this binary again, with a role. Its stdout goes to /dev/null so that
 * nothing can reach the TAP stream. fds the role names must not be close-on-exec. */
static pid_t spawn(const char *fmt, unsigned long arg)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, fmt, arg);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		setenv(PEER_ENV, cmd, 1);
		execl("/proc/self/exe", "test_share", (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(pid, 0, "fork");
	return pid;
}

/* Exit code of a peer, or 1000 + signal when it died of one. */
static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static uint32_t read_id(int fd)
{
	uint32_t id = 0;
	size_t got = 0;
	while (got < sizeof id) {
		ssize_t n = read(fd, (char *)&id + got, sizeof id - got);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return id;
}

/* ---- ids and lookup */

Test(share, lookup_by_id_in_another_process_maps_the_same_pages)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, NFLOATS * sizeof(float), 0), 0);
	fill(b, NFLOATS);
	uint32_t id = unimem_block_id(b);
	cr_assert_neq(id, 0);
	cr_assert_eq(reap(spawn("lookup %lu", id)), 0, "peer failed");
	/* The peer wrote into the very same pages. */
	cr_assert_eq(((float *)unimem_block_ptr(b))[NFLOATS - 1], MARK);
	unimem_block_close(b);
}

Test(share, looked_up_block_reports_size_pinned_fd_truthfully)
{
	unimem_block *a, *b;
	/* An unpinned creator: the looked-up Block still pins, by the open rule. */
	cr_assert_eq(unimem_block_open(&a, 3 * 4096 + 5, UNIMEM_BLOCK_UNPINNED), 0);
	long before = status_kb("VmLck");
	cr_assert_eq(unimem_block_lookup(&b, unimem_block_id(a)), 0);
	cr_assert_eq(unimem_block_size(b), unimem_block_size(a));
	cr_assert_eq(unimem_block_page_size(b), unimem_block_page_size(a));
	cr_assert(unimem_block_pinned(b));
	cr_assert_not(unimem_block_pinned(a));
	cr_assert_geq(status_kb("VmLck") - before, (long)(unimem_block_size(b) / 1024));
	cr_assert_eq(unimem_block_id(b), unimem_block_id(a));
	int fd = unimem_block_fd(b);
	cr_assert_geq(fd, 0);
	cr_assert_neq(fd, unimem_block_fd(a));
	struct stat sa, sb;
	cr_assert_eq(fstat(unimem_block_fd(a), &sa), 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq(sa.st_ino, sb.st_ino, "the same memfd");
	cr_assert_neq(unimem_block_ptr(a), unimem_block_ptr(b), "its own mapping");
	((volatile char *)unimem_block_ptr(a))[100] = 7;
	cr_assert_eq(((volatile char *)unimem_block_ptr(b))[100], 7);
	/* Closing one holder leaves the other its pages. */
	unimem_block_close(a);
	cr_assert_eq(((volatile char *)unimem_block_ptr(b))[100], 7);
	unimem_block_close(b);
	cr_assert_eq(status_kb("VmLck"), before);
}

Test(share, ids_are_unique_among_live_blocks)
{
	enum { N = 300 };
	unimem_block *b[N];
	uint32_t ids[N];
	for (int i = 0; i < N; i++) {
		cr_assert_eq(unimem_block_open(&b[i], 4096, UNIMEM_BLOCK_UNPINNED), 0);
		ids[i] = unimem_block_id(b[i]);
		cr_assert_neq(ids[i], 0);
		for (int j = 0; j < i; j++)
			cr_assert_neq(ids[i], ids[j], "blocks %d and %d", i, j);
	}
	/* A closed Block's id is not handed out again at once. */
	uint32_t gone = ids[7];
	unimem_block_close(b[7]);
	cr_assert_eq(unimem_block_open(&b[7], 4096, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_neq(unimem_block_id(b[7]), gone);
	for (int i = 0; i < N; i++)
		unimem_block_close(b[i]);
	/* Closing gives ids back: more opens than there are ids, one at a time. */
	for (int i = 0; i < 1100; i++) {
		unimem_block *x;
		cr_assert_eq(unimem_block_open(&x, 4096, UNIMEM_BLOCK_UNPINNED), 0);
		cr_assert_neq(unimem_block_id(x), 0, "open %d got no id", i);
		unimem_block_close(x);
	}
}

enum { THREADS = 4, PER_THREAD = 200 };

struct opener {
	pthread_barrier_t *all_open, *checked;
	uint32_t ids[PER_THREAD];
	int err;
};

static void *open_many(void *arg)
{
	struct opener *o = arg;
	unimem_block *b[PER_THREAD];
	int n = 0;
	for (; n < PER_THREAD; n++) {
		o->err = unimem_block_open(&b[n], 4096, UNIMEM_BLOCK_UNPINNED);
		if (o->err)
			break;
		o->ids[n] = unimem_block_id(b[n]);
	}
	/* All Blocks of all threads are live while the main thread compares ids. */
	pthread_barrier_wait(o->all_open);
	pthread_barrier_wait(o->checked);
	while (n--)
		unimem_block_close(b[n]);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

Test(share, ids_from_concurrent_opens_never_collide)
{
	pthread_barrier_t all_open, checked;
	pthread_barrier_init(&all_open, NULL, THREADS + 1);
	pthread_barrier_init(&checked, NULL, THREADS + 1);
	pthread_t t[THREADS];
	struct opener o[THREADS];
	for (int i = 0; i < THREADS; i++) {
		o[i] = (struct opener){ .all_open = &all_open, .checked = &checked };
		cr_assert_eq(pthread_create(&t[i], NULL, open_many, &o[i]), 0);
	}
	pthread_barrier_wait(&all_open);
	static uint32_t ids[THREADS * PER_THREAD];
	int errs = 0;
	for (int i = 0; i < THREADS; i++) {
		errs |= o[i].err;
		memcpy(ids + i * PER_THREAD, o[i].ids, sizeof o[i].ids);
	}
	pthread_barrier_wait(&checked);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(errs, 0, "an open failed");
	qsort(ids, THREADS * PER_THREAD, sizeof ids[0], cmp_u32);
	for (int i = 0; i < THREADS * PER_THREAD; i++) {
		cr_assert_eq(ids[i] >> 10, (uint32_t)getpid());
		if (i)
			cr_assert_neq(ids[i], ids[i - 1], "two live Blocks share id %08x", ids[i]);
	}
}

Test(share, more_live_blocks_than_ids_get_id_zero)
{
	enum { N = 1030 };
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < N + 64) {
		rl.rlim_cur = rl.rlim_max < N + 64 ? rl.rlim_max : N + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < N + 64)
			cr_skip_test("RLIMIT_NOFILE (%llu) too small for %d Blocks",
				     (unsigned long long)rl.rlim_cur, N);
	}
	static unimem_block *b[N];
	int with_id = 0;
	for (int i = 0; i < N; i++) {
		cr_assert_eq(unimem_block_open(&b[i], 4096, UNIMEM_BLOCK_UNPINNED), 0, "open %d", i);
		with_id += unimem_block_id(b[i]) != 0;
	}
	cr_assert_eq(with_id, 1024);
	unimem_block *x = (void *)1;
	cr_assert_eq(unimem_block_lookup(&x, 0), -ENOENT);
	cr_assert_null(x);
	for (int i = 0; i < N; i++)
		unimem_block_close(b[i]);
}

Test(share, lookup_of_nothing_is_enoent)
{
	unimem_block *x = (void *)1;
	cr_assert_eq(unimem_block_lookup(NULL, 1234), -EINVAL);
	cr_assert_eq(unimem_block_lookup(&x, 0), -ENOENT);
	cr_assert_null(x);
	cr_assert_eq(unimem_block_lookup(&x, 1023), -ENOENT, "pid 0");
	/* This process, a slot it does not use. */
	cr_assert_eq(unimem_block_lookup(&x, (uint32_t)getpid() << 10 | 1023), -ENOENT);
	/* A process that is gone. */
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	cr_assert_eq(reap(dead), 0);
	cr_assert_eq(unimem_block_lookup(&x, (uint32_t)dead << 10), -ENOENT);
	/* A live process of this user without Blocks. */
	pid_t idle = fork();
	if (idle == 0) {
		for (;;)
			pause();
	}
	cr_assert_eq(unimem_block_lookup(&x, (uint32_t)idle << 10 | 5), -ENOENT);
	kill(idle, SIGKILL);
	reap(idle);
	cr_assert_null(x);
	cr_assert_str_neq(unimem_strerror(-ENOENT), "");
}

Test(share, lookup_of_a_closed_blocks_id_is_enoent)
{
	unimem_block *b, *x;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	uint32_t id = unimem_block_id(b);
	cr_assert_eq(unimem_block_lookup(&x, id), 0);
	unimem_block_close(x);
	unimem_block_close(b);
	cr_assert_eq(unimem_block_lookup(&x, id), -ENOENT);
	cr_assert_null(x);
}

/* ---- other users */

Test(share, another_users_lookup_is_eacces)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run a process as another user (nobody)");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	uint32_t id = unimem_block_id(b);
	pid_t pid = fork();
	if (pid == 0) {
		if (become_nobody())
			_exit(77);
		unimem_block *x = (void *)1;
		int err = unimem_block_lookup(&x, id);
		_exit(err == -EACCES && x == NULL ? 0 : 1);
	}
	int rc = reap(pid);
	if (rc == 77)
		cr_skip_test("could not become nobody");
	cr_assert_eq(rc, 0, "nobody looked up root's Block: not -EACCES");
	unimem_block_close(b);
}

/* A Block opened by nobody: root may look it up; another nobody process may when the
 * creator is dumpable (a process that dropped its uid is not, until it says so). */
static void nobody_creator(bool dumpable)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run processes as nobody");
	int idp[2], go[2];
	cr_assert_eq(pipe(idp), 0);
	cr_assert_eq(pipe(go), 0);
	pid_t creator = fork();
	if (creator == 0) {
		/* Only the test holds go's write end: if it dies, read() below ends. */
		close(go[1]);
		close(idp[0]);
		if (become_nobody())
			_exit(77);
		if (dumpable)
			prctl(PR_SET_DUMPABLE, 1);
		unimem_block *b;
		if (unimem_block_open(&b, 4 * 4096, UNIMEM_BLOCK_UNPINNED))
			_exit(3);
		fill(b, 4096);
		uint32_t id = unimem_block_id(b);
		if (write(idp[1], &id, sizeof id) != sizeof id)
			_exit(4);
		char c;
		(void)read(go[0], &c, 1); /* hold the Block until told */
		_exit(0);
	}
	close(go[0]);
	close(idp[1]);
	uint32_t id = read_id(idp[0]);
	if (!id) {
		int rc = reap(creator);
		if (rc == 77)
			cr_skip_test("could not become nobody");
		cr_assert_fail("creator failed: %d", rc);
	}
	/* Root is excepted from the user check: the kernel's exception is
	 * CAP_SYS_PTRACE, which containers may drop. */
	unimem_block *x = NULL;
	if (can_ptrace_others()) {
		cr_assert_eq(unimem_block_lookup(&x, id), 0);
		cr_assert_eq(check(x, 4096), 0);
		unimem_block_close(x);
	} else {
		cr_assert_eq(unimem_block_lookup(&x, id), -EACCES, "root without CAP_SYS_PTRACE");
	}
	/* Another process of the same user (nobody). */
	pid_t peer = fork();
	if (peer == 0) {
		if (become_nobody())
			_exit(77);
		unimem_block *y = NULL;
		int err = unimem_block_lookup(&y, id);
		if (dumpable)
			_exit(err == 0 && check(y, 4096) == 0 ? 0 : 10 + (-err & 0x7f));
		_exit(err == -EACCES ? 0 : 10 + (-err & 0x7f));
	}
	int rc = reap(peer);
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(reap(creator), 0);
	cr_assert_eq(rc, 0, "nobody's lookup of nobody's Block (dumpable %d): %d", dumpable, rc);
}

Test(share, same_user_lookup_as_nobody)
{
	nobody_creator(true);
}

Test(share, creator_that_dropped_its_uid_is_eacces_unless_dumpable)
{
	nobody_creator(false);
}

/* ---- send / recv */

Test(share, send_recv_to_another_process)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, NFLOATS * sizeof(float), 0), 0);
	fill(b, NFLOATS);
	pid_t peer = spawn("recv %lu", (unsigned long)sv[1]);
	close(sv[1]);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	cr_assert_eq(reap(peer), 0, "peer failed");
	cr_assert_eq(((float *)unimem_block_ptr(b))[NFLOATS - 1], MARK);
	close(sv[0]);
	unimem_block_close(b);
}

Test(share, send_recv_over_each_socket_type)
{
	int types[] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM };
	for (size_t t = 0; t < 3; t++) {
		int sv[2];
		cr_assert_eq(socketpair(AF_UNIX, types[t] | SOCK_CLOEXEC, 0, sv), 0);
		unimem_block *a, *b;
		cr_assert_eq(unimem_block_open(&a, 5 * 4096, UNIMEM_BLOCK_UNPINNED), 0);
		cr_assert_eq(unimem_block_send(sv[0], a), 0, "type %d", types[t]);
		cr_assert_eq(unimem_block_recv(&b, sv[1]), 0, "type %d", types[t]);
		cr_assert_eq(unimem_block_size(b), unimem_block_size(a));
		cr_assert_eq(unimem_block_id(b), 0, "a received Block has no id of the sender's");
		cr_assert(unimem_block_writable(b));
		cr_assert(unimem_block_pinned(b));
		cr_assert_geq(unimem_block_fd(b), 0);
		((volatile int *)unimem_block_ptr(a))[9] = 99;
		cr_assert_eq(((volatile int *)unimem_block_ptr(b))[9], 99);
		unimem_block_close(a);
		unimem_block_close(b);
		close(sv[0]);
		close(sv[1]);
	}
}

/* Capture what unimem_block_send() writes, to replay it with other fds. */
static void capture(unimem_block *b, char *msg, size_t *len)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { msg, 256 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof cbuf };
	ssize_t n = recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC);
	cr_assert_gt(n, 0);
	*len = (size_t)n;
	int fd;
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/* Send `len` bytes of `msg` with `nfds` fds over a fresh socketpair of `type`, then
 * unimem_block_recv() it; returns what recv returned. */
static int replay(int type, const char *msg, size_t len, const int *fds, int nfds)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = { (void *)msg, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(h), fds, nfds * sizeof(int));
	}
	if (len || nfds)
		cr_assert_eq(sendmsg(sv[0], &m, 0), (ssize_t)len);
	close(sv[0]);
	unimem_block *x = (void *)1;
	int err = unimem_block_recv(&x, sv[1]);
	if (err)
		cr_assert_null(x);
	else
		unimem_block_close(x);
	close(sv[1]);
	return err;
}

static int sealed_memfd(size_t size, unsigned seals)
{
	int fd = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (seals)
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

Test(share, recv_rejects_garbage_and_leaks_nothing)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 2 * 4096, 0), 0);
	char msg[256];
	size_t len;
	capture(b, msg, &len);
	int good = unimem_block_fd(b);
	int fds0 = count_fds(), maps0 = count_maps();

	/* Sanity: the captured message with the real fd is a Block. */
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &good, 1), 0);

	char zeros[256] = { 0 };
	cr_assert_eq(replay(SOCK_STREAM, zeros, len, &good, 1), -EBADMSG, "bad header");
	cr_assert_eq(replay(SOCK_STREAM, msg, len, NULL, 0), -EBADMSG, "no fd");
	int two[2] = { good, good };
	cr_assert_eq(replay(SOCK_STREAM, msg, len, two, 2), -EBADMSG, "two fds");
	cr_assert_eq(replay(SOCK_STREAM, msg, len / 2, &good, 1), -EBADMSG, "half a message");
	cr_assert_eq(replay(SOCK_STREAM, msg, 0, NULL, 0), -ECONNRESET, "nothing, then EOF");
	cr_assert_eq(replay(SOCK_SEQPACKET, msg, 0, NULL, 0), -ECONNRESET, "seqpacket EOF");
	cr_assert_eq(replay(SOCK_SEQPACKET, msg, len - 1, &good, 1), -EBADMSG, "short packet");
	cr_assert_eq(replay(SOCK_DGRAM, msg, len + 8, &good, 1), -EBADMSG, "long datagram");

	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &null, 1), -EBADMSG, "not a memfd");
	close(null);
	int fd = sealed_memfd(2 * 4096, 0);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), -EBADMSG, "no seals");
	close(fd);
	fd = sealed_memfd(2 * 4096, F_SEAL_SHRINK);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), -EBADMSG, "shrink seal only");
	close(fd);
	fd = sealed_memfd(3 * 4096, F_SEAL_SHRINK | F_SEAL_GROW);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), -EBADMSG, "size mismatch");
	close(fd);
	fd = sealed_memfd(2 * 4096, F_SEAL_SHRINK | F_SEAL_GROW);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), 0, "a foreign but proper memfd");
	close(fd);
	fd = sealed_memfd(2 * 4096, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), -EBADMSG, "write-sealed");
	close(fd);
	/* Sealed read-only (F_SEAL_FUTURE_WRITE): a read-only Block; but never more access
	 * than was sent (a write-only fd is not reopened for reading). */
	fd = sealed_memfd(2 * 4096, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), 0, "sealed read-only");
	char path[40];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int wo = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(wo, 0);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &wo, 1), -EBADMSG, "write-only fd");
	close(wo);
	close(fd);
	snprintf(path, sizeof path, "/proc/self/fd/%d", good);
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &ro, 1), -EBADMSG, "read-only fd");
	close(ro);

	cr_assert_eq(count_fds(), fds0, "fds leaked");
	cr_assert_eq(count_maps(), maps0, "mappings leaked");

	/* Not a socket; not an fd. */
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	unimem_block *x = (void *)1;
	cr_assert_eq(unimem_block_recv(&x, p[0]), -ENOTSOCK);
	cr_assert_null(x);
	cr_assert_eq(unimem_block_recv(&x, -1), -EBADF);
	cr_assert_eq(unimem_block_recv(NULL, p[0]), -EINVAL);
	cr_assert_str_neq(unimem_strerror(-EBADMSG), "");
	close(p[0]);
	close(p[1]);
	unimem_block_close(b);
}

/* unimem_strerror() of a refused recv says which check failed (the detail recorded at the
 * failure), for that code only, and the next failure's detail replaces it. */
static void assert_said(const char *what, const char *part)
{
	const char *m = unimem_strerror(-EBADMSG);
	cr_assert(strstr(m, "bad message") && strstr(m, part), "%s: %s", what, m);
	cr_assert_str_eq(unimem_strerror(EBADMSG), m, "%s: either sign", what);
}

Test(share, recv_says_which_check_failed)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 2 * 4096, 0), 0);
	char msg[256];
	size_t len;
	capture(b, msg, &len);
	int good = unimem_block_fd(b);

	char zeros[256] = { 0 };
	cr_assert_eq(replay(SOCK_STREAM, zeros, len, &good, 1), -EBADMSG);
	assert_said("bad header", "magic number");
	/* Another code says its own causes, not this detail. */
	cr_assert_null(strstr(unimem_strerror(-ENOMEM), "magic"), "%s", unimem_strerror(-ENOMEM));
	cr_assert_eq(replay(SOCK_STREAM, msg, len, NULL, 0), -EBADMSG);
	assert_said("no fd", "without an fd");
	int two[2] = { good, good };
	cr_assert_eq(replay(SOCK_STREAM, msg, len, two, 2), -EBADMSG);
	assert_said("two fds", "more than one fd");
	cr_assert_eq(replay(SOCK_STREAM, msg, len / 2, &good, 1), -EBADMSG);
	assert_said("half a message", "halfway");
	cr_assert_eq(replay(SOCK_DGRAM, msg, len + 8, &good, 1), -EBADMSG);
	assert_said("long datagram", "record of");
	int fd = sealed_memfd(2 * 4096, 0);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), -EBADMSG);
	assert_said("no seals", "sealed against shrink and grow");
	close(fd);
	fd = sealed_memfd(3 * 4096, F_SEAL_SHRINK | F_SEAL_GROW);
	cr_assert_eq(replay(SOCK_STREAM, msg, len, &fd, 1), -EBADMSG);
	assert_said("size mismatch", "12288 bytes");
	close(fd);
	unimem_block_close(b);
}

Test(share, recv_without_a_free_fd_is_emfile)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	/* No fd number left: the kernel drops the passed fd. */
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	int highest = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			highest = fd;
	int fds0 = count_fds();
	struct rlimit tight = { (rlim_t)highest + 1, rl.rlim_max };
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
	int fill[4096], nfill = 0; /* the holes below the limit */
	while (nfill < 4096 && (fill[nfill] = fcntl(sv[0], F_DUPFD_CLOEXEC, 0)) >= 0)
		nfill++;
	unimem_block *x = (void *)1;
	int err = unimem_block_recv(&x, sv[1]);
	while (nfill)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &rl);
	cr_assert_eq(err, -EMFILE, "err %d", err);
	cr_assert_null(x);
	cr_assert_eq(count_fds(), fds0);
	close(sv[0]);
	close(sv[1]);
	unimem_block_close(b);
}

Test(share, send_bad_input)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(unimem_block_send(sv[0], NULL), -EINVAL);
	cr_assert_eq(unimem_block_send(-1, b), -EBADF);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(unimem_block_send(p[1], b), -ENOTSOCK);
	/* A closed peer: an error, not SIGPIPE (which would kill this test). */
	close(sv[1]);
	cr_assert_eq(unimem_block_send(sv[0], b), -EPIPE);
	close(sv[0]);
	close(p[0]);
	close(p[1]);
	unimem_block_close(b);
}

Test(share, recv_pins_by_the_open_rule_and_says_eperm)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	if (pid == 0) {
		/* Root's CAP_IPC_LOCK ignores RLIMIT_MEMLOCK: become nobody first. */
		if (geteuid() == 0 && become_nobody())
			_exit(77);
		struct rlimit rl = { 4096, 4096 };
		if (setrlimit(RLIMIT_MEMLOCK, &rl))
			_exit(78);
		unimem_block *x = (void *)1;
		/* The first refusal settles first-use allocations; the second is counted. */
		if (unimem_block_recv(&x, sv[1]) != -EPERM || x)
			_exit(9);
		int fds0 = count_fds(), maps0 = count_maps();
		int err = unimem_block_recv(&x, sv[1]);
		if (err != -EPERM || x)
			_exit(10);
		if (!strstr(unimem_strerror(err), "RLIMIT_MEMLOCK") ||
		    !strstr(unimem_strerror(err), "UNIMEM_BLOCK_UNPINNED"))
			_exit(11);
		if (count_fds() != fds0 || count_maps() != maps0)
			_exit(12);
		_exit(0);
	}
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	int rc = reap(pid);
	if (rc == 77)
		cr_skip_test("could not become nobody");
	cr_assert_eq(rc, 0, "child: %d", rc);
	close(sv[0]);
	close(sv[1]);
	unimem_block_close(b);
}

/* ---- seals against a peer */

static void no_sigbus_anywhere(unimem_block *b)
{
	/* Every page is still there for this holder (a SIGBUS would end the test). */
	volatile const char *p = unimem_block_ptr(b);
	for (size_t off = 0; off < unimem_block_size(b); off += 4096)
		(void)p[off];
	struct stat st;
	cr_assert_eq(fstat(unimem_block_fd(b), &st), 0);
	cr_assert_eq((size_t)st.st_size, unimem_block_size(b));
	cr_assert_eq(check(b, NFLOATS), 0);
}

Test(share, peer_that_looked_up_cannot_truncate_or_grow)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, NFLOATS * sizeof(float), 0), 0);
	fill(b, NFLOATS);
	cr_assert_eq(reap(spawn("truncate %lu", unimem_block_id(b))), 0, "a size change passed");
	no_sigbus_anywhere(b);
	unimem_block_close(b);
}

Test(share, peer_that_received_cannot_truncate_or_grow)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, NFLOATS * sizeof(float), UNIMEM_BLOCK_UNPINNED), 0);
	fill(b, NFLOATS);
	pid_t peer = spawn("truncate-recv %lu", (unsigned long)sv[1]);
	close(sv[1]);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	cr_assert_eq(reap(peer), 0, "a size change passed");
	no_sigbus_anywhere(b);
	close(sv[0]);
	unimem_block_close(b);
}

/* ---- crashed creators */

struct reader {
	unimem_block *b;
	int stop;
	long passes;
	int bad;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (check(r->b, NFLOATS - 1))
			r->bad = 1;
		__atomic_fetch_add(&r->passes, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

Test(share, reader_keeps_reading_after_creator_is_killed)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fcntl(p[0], F_SETFD, FD_CLOEXEC);
	pid_t creator = spawn("create %lu", (unsigned long)p[1]);
	close(p[1]);
	uint32_t id = read_id(p[0]);
	cr_assert_neq(id, 0, "creator sent no id");
	cr_assert_eq(id >> 10, (uint32_t)creator);

	struct reader r = { 0 };
	cr_assert_eq(unimem_block_lookup(&r.b, id), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, read_loop, &r), 0);
	while (__atomic_load_n(&r.passes, __ATOMIC_ACQUIRE) < 2)
		sched_yield();
	kill(creator, SIGKILL);
	cr_assert_eq(reap(creator), 1000 + SIGKILL);
	long at_kill = __atomic_load_n(&r.passes, __ATOMIC_ACQUIRE);
	while (__atomic_load_n(&r.passes, __ATOMIC_ACQUIRE) < at_kill + 3)
		sched_yield();
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	cr_assert_eq(r.bad, 0, "the reader saw other data");
	/* Still writable, still the same size; the id is gone with its creator. */
	((float *)unimem_block_ptr(r.b))[0] = 3.0f;
	cr_assert_eq(((float *)unimem_block_ptr(r.b))[0], 3.0f);
	unimem_block *x;
	cr_assert_eq(unimem_block_lookup(&x, id), -ENOENT);
	unimem_block_close(r.b);
	close(p[0]);
}

Test(share, no_names_left_after_twenty_crashed_creators)
{
	enum { N = 20 };
	pid_t pids[N];
	uint32_t ids[N];
	int shm0 = unimem_names_in_dev_shm();
	for (int i = 0; i < N; i++) {
		int p[2];
		cr_assert_eq(pipe(p), 0);
		fcntl(p[0], F_SETFD, FD_CLOEXEC);
		pids[i] = spawn("create %lu", (unsigned long)p[1]);
		close(p[1]);
		ids[i] = read_id(p[0]);
		close(p[0]);
		cr_assert_neq(ids[i], 0, "creator %d sent no id", i);
	}
	/* While they live, their ids work. */
	unimem_block *x;
	cr_assert_eq(unimem_block_lookup(&x, ids[N / 2]), 0);
	unimem_block_close(x);
	for (int i = 0; i < N; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < N; i++)
		cr_assert_eq(reap(pids[i]), 1000 + SIGKILL);
	/* The next open of this user (this one) finds no name of theirs: the kernel
	 * dropped each name with the killed process's fds. */
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, 0), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(unimem_block_lookup(&x, ids[i]), -ENOENT, "id of creator %d", i);
	cr_assert_eq(unimem_names_in_dev_shm(), shm0, "names in /dev/shm");
	unimem_block_close(b);
}

Test(share, no_names_left_after_normal_use)
{
	int shm0 = unimem_names_in_dev_shm();
	unimem_block *b, *x;
	cr_assert_eq(unimem_block_open(&b, NFLOATS * sizeof(float), 0), 0);
	fill(b, NFLOATS);
	uint32_t id = unimem_block_id(b);
	cr_assert_eq(fds_named(id), 1, "the name is on the memfd");
	cr_assert_eq(reap(spawn("lookup %lu", id)), 0);
	cr_assert_eq(unimem_block_lookup(&x, id), 0);
	unimem_block_close(x);
	unimem_block_close(b);
	cr_assert_eq(fds_named(id), 0, "the name went with the fd");
	cr_assert_eq(unimem_block_lookup(&x, id), -ENOENT);
	cr_assert_eq(unimem_names_in_dev_shm(), shm0, "names in /dev/shm");
}

/* ---- leaks */

Test(share, open_lookup_send_recv_in_a_loop_leak_nothing)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int fds0 = 0, maps0 = 0;
	for (int i = 0; i < 201; i++) {
		if (i == 1) { /* after one round, so that first-use allocations settle */
			fds0 = count_fds();
			maps0 = count_maps();
		}
		unimem_block *a, *b, *c;
		cr_assert_eq(unimem_block_open(&a, 16 * 4096, 0), 0);
		cr_assert_eq(unimem_block_lookup(&b, unimem_block_id(a)), 0);
		cr_assert_eq(unimem_block_send(sv[0], b), 0);
		cr_assert_eq(unimem_block_recv(&c, sv[1]), 0);
		unimem_block_close(a);
		unimem_block_close(c);
		unimem_block_close(b);
	}
	cr_assert_eq(count_fds(), fds0, "fds leaked");
	cr_assert_eq(count_maps(), maps0, "mappings leaked");
	close(sv[0]);
	close(sv[1]);
}

/* ---- issue 13: forged and stale ids, limits of what a peer can make us pin, sealed
 * (read-only) sharing, stalled peers */

/* Make a memfd that looks like the Block of id `id` in every way a peer can fake:
 * name, seals, size, and the file position lookup trusts. */
static int forged_memfd(uint32_t id, size_t size)
{
	char name[32];
	snprintf(name, sizeof name, "unimem:%08x", (unsigned)id);
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	cr_assert_geq(lseek(fd, (off_t)(0x554d000000000000ull | id), SEEK_SET), 0);
	memset(mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), 0x66, size);
	return fd;
}

/* Send fd with the header `msg` (captured from a real send, size patched). */
static void send_forged(int sock, const char *msg, size_t len, int fd, uint64_t size)
{
	char m2[256];
	memcpy(m2, msg, len);
	memcpy(m2 + 8, &size, sizeof size); /* struct wire: magic, id, size, page */
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = { m2, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof cbuf };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof fd);
	cr_assert_eq(sendmsg(sock, &m, 0), (ssize_t)len);
}

Test(share, a_received_memfd_named_like_our_id_never_resolves)
{
	/* The id our next Block would get back: one of ours, closed. */
	unimem_block *a;
	cr_assert_eq(unimem_block_open(&a, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	uint32_t id = unimem_block_id(a);
	char msg[256];
	size_t len;
	capture(a, msg, &len);
	unimem_block_close(a);

	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int fd = forged_memfd(id, 4096);
	send_forged(sv[0], msg, len, fd, 4096);
	close(fd); /* only the receiver holds the forged memfd now */
	unimem_block *r;
	cr_assert_eq(unimem_block_recv(&r, sv[1]), 0);
	cr_assert_eq(unimem_block_id(r), 0, "the id came from the peer's name");
	unimem_block *x = (void *)1;
	cr_assert_eq(unimem_block_lookup(&x, id), -ENOENT, "the id maps the peer's pages");
	cr_assert_null(x);
	unimem_block_close(r);
	close(sv[0]);
	close(sv[1]);
}

Test(share, a_dup_of_a_closed_blocks_fd_does_not_resolve)
{
	for (int round = 0; round < 2; round++) {
		unimem_block *b;
		cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
		uint32_t id = unimem_block_id(b);
		int d = dup(unimem_block_fd(b));
		cr_assert_geq(d, 0);
		unimem_block *x;
		cr_assert_eq(unimem_block_lookup(&x, id), 0, "live Block found");
		unimem_block_close(x);
		unimem_block_close(b);
		x = (void *)1;
		cr_assert_eq(unimem_block_lookup(&x, id), -ENOENT, "closed Block found via dup");
		cr_assert_null(x);
		close(d);
	}
}

Test(share, a_stale_id_does_not_name_a_new_block_after_exec)
{
	int same = 0;
	for (int round = 0; round < 6; round++) {
		int p[2];
		cr_assert_eq(pipe(p), 0);
		pid_t pid = spawn("exec-id %lu", (unsigned long)p[1]);
		close(p[1]);
		uint32_t before = read_id(p[0]), after = read_id(p[0]);
		close(p[0]);
		cr_assert_eq(reap(pid), 0);
		cr_assert_neq(before, 0);
		cr_assert_neq(after, 0);
		same += before == after;
	}
	/* Random first slot per image: equal with chance 1/1024 a round. */
	cr_assert_leq(same, 1, "%d of 6 exec'd images reused the stale id", same);
}

Test(share, a_creator_whose_main_thread_exited_is_found)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = spawn("create-exit %lu", (unsigned long)p[1]);
	close(p[1]);
	uint32_t id = read_id(p[0]);
	close(p[0]);
	cr_assert_neq(id, 0);
	unimem_block *b = NULL;
	int err = -1;
	/* The main thread exits after telling the id: look up until it has. */
	for (int i = 0; i < 200; i++) {
		char path[64], st[256] = "";
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "re");
		if (f) {
			if (!fgets(st, sizeof st, f))
				st[0] = 0;
			fclose(f);
		}
		const char *c = strrchr(st, ')');
		if (c && c[2] == 'Z') /* the leader is a zombie: the case in point */
			break;
		usleep(5000);
	}
	err = unimem_block_lookup(&b, id);
	kill(pid, SIGKILL);
	reap(pid);
	cr_assert_eq(err, 0, "lookup: %s", unimem_strerror(err));
	cr_assert_eq(check(b, NFLOATS), 0);
	unimem_block_close(b);
}

static long long sparse_blocks(int fd)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	return (long long)st.st_blocks;
}

Test(share, recv_and_lookup_refuse_what_the_caller_limit_or_the_machine_cannot_take)
{
	unimem_block *a;
	cr_assert_eq(unimem_block_open(&a, 2 * 4096, 0), 0);
	char msg[256];
	size_t len;
	capture(a, msg, &len);
	long lck0 = status_kb("VmLck");
	int fds0 = count_fds(), maps0 = count_maps();

	/* A sparse 512 MiB memfd: the peer pays nothing for it. */
	size_t big = (size_t)512 << 20;
	int fd = memfd_create("sparse", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)big), 0);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_forged(sv[0], msg, len, fd, big);
	unimem_block *x = (void *)1;
	cr_assert_eq(unimem_block_recv_max(&x, sv[1], (uint64_t)1 << 20), -EFBIG);
	cr_assert_null(x);
	cr_assert_eq(sparse_blocks(fd), 0, "pages allocated in the peer's file");
	cr_assert_eq(status_kb("VmLck"), lck0, "pages locked");
	cr_assert_str_neq(unimem_strerror(-EFBIG), "");

	/* Larger than the machine: refused like an open, nothing touched. */
	close(fd);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	size_t huge = (size_t)pages * (size_t)psize * 2;
	fd = memfd_create("sparse", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)huge), 0);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	send_forged(sv[0], msg, len, fd, huge);
	cr_assert_eq(unimem_block_recv(&x, sv[1]), -ENOMEM);
	cr_assert_eq(sparse_blocks(fd), 0);
	cr_assert_eq(status_kb("VmLck"), lck0);
	close(fd);

	/* lookup: the same limits. */
	cr_assert_eq(unimem_block_lookup_max(&x, unimem_block_id(a), 4096), -EFBIG);
	cr_assert_null(x);
	cr_assert_eq(unimem_block_lookup_max(&x, unimem_block_id(a), 2 * 4096), 0);
	unimem_block_close(x);
	cr_assert_eq(unimem_block_lookup_max(NULL, 1, 0), -EINVAL);
	cr_assert_eq(unimem_block_recv_max(NULL, sv[1], 0), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(count_fds(), fds0);
	cr_assert_eq(count_maps(), maps0);
	unimem_block_close(a);
}

/* Resident pages of b (mincore). */
static size_t resident(const unimem_block *b)
{
	size_t n = unimem_block_size(b) / 4096, r = 0;
	unsigned char *v = calloc(n, 1);
	cr_assert_eq(mincore(unimem_block_ptr(b), unimem_block_size(b), v), 0);
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	free(v);
	return r;
}

Test(share, a_sealed_block_is_read_only_for_every_holder_and_keeps_its_pages)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, NFLOATS * sizeof(float), 0), 0);
	fill(b, NFLOATS);
	cr_assert_eq(unimem_block_seal(b), 0);
	cr_assert_eq(unimem_block_seal(b), 0, "idempotent");
	cr_assert(unimem_block_writable(b), "the creator's mapping stays writable");
	/* Even the creator cannot punch holes now. */
	cr_assert_neq(fallocate(unimem_block_fd(b), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				4096), 0);
	cr_assert_eq(errno, EPERM);

	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	pid_t pid = spawn("sealed %lu", (unsigned long)sv[1]);
	close(sv[1]);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	cr_assert_eq(reap(pid), 0, "the receiving peer changed what it must not");
	close(sv[0]);
	pid = spawn("sealed-lookup %lu", (unsigned long)unimem_block_id(b));
	cr_assert_eq(reap(pid), 0, "the looking-up peer changed what it must not");

	cr_assert_eq(check(b, NFLOATS), 0);
	cr_assert_eq(resident(b), unimem_block_size(b) / 4096, "pages taken away");
	cr_assert_geq(status_kb("VmLck"), (long)(unimem_block_size(b) / 1024));
	cr_assert(unimem_block_pinned(b));
	cr_assert_eq(unimem_block_seal(NULL), -EINVAL);
	cr_assert_not(unimem_block_writable(NULL));
	unimem_block_close(b);
}

Test(share, an_unsealed_blocks_writable_holder_can_punch_holes)
{
	/* What docs/SHARING.md says a writable holder can do: documented, not prevented. */
	unimem_block *b, *r;
	cr_assert_eq(unimem_block_open(&b, 16 * 4096, 0), 0);
	cr_assert_eq(unimem_block_lookup(&r, unimem_block_id(b)), 0);
	cr_assert(unimem_block_writable(r));
	memset(unimem_block_ptr(b), 7, 16 * 4096);
	cr_assert_eq(fallocate(unimem_block_fd(r), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			       16 * 4096), 0);
	cr_assert_eq(((volatile unsigned char *)unimem_block_ptr(b))[0], 0);
	cr_assert(unimem_block_pinned(b), "pinned speaks of this holder's lock only");
	unimem_block_close(r);
	unimem_block_close(b);
}

/* Send the first byte of a Block message (with its fd), then stall. */
static void send_one_byte(int sock, unimem_block *b)
{
	char msg[256];
	size_t len;
	capture(b, msg, &len);
	int fd = unimem_block_fd(b);
	send_forged(sock, msg, 1, fd, unimem_block_size(b));
}

Test(share, recv_from_a_stalled_peer_never_hangs)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	int fds0 = count_fds();
	int sv[2];
	/* Non-blocking: -EAGAIN at once. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	send_one_byte(sv[0], b);
	unimem_block *x = (void *)1;
	cr_assert_eq(unimem_block_recv(&x, sv[1]), -EAGAIN);
	cr_assert_null(x);
	close(sv[0]);
	close(sv[1]);
	/* Blocking: a bounded wait, then -ETIMEDOUT. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_one_byte(sv[0], b);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(unimem_block_recv(&x, sv[1]), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_null(x);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 10);
	cr_assert_str_neq(unimem_strerror(-ETIMEDOUT), "");
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(count_fds(), fds0, "received fds leaked");
	unimem_block_close(b);
}

Test(share, seal_after_a_holder_sealed_the_seals_is_ebusy)
{
	unimem_block *b, *r;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_eq(unimem_block_lookup(&r, unimem_block_id(b)), 0);
	/* A writable holder can seal the seals (docs/SHARING.md): then nobody can seal. */
	cr_assert_eq(fcntl(unimem_block_fd(r), F_ADD_SEALS, F_SEAL_SEAL), 0);
	cr_assert_eq(unimem_block_seal(b), -EBUSY);
	cr_assert_str_neq(unimem_strerror(-EBUSY), "");
	unimem_block_close(r);
	unimem_block_close(b);
}

Test(share, a_forked_child_closing_an_inherited_block_keeps_the_creators_id)
{
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	pid_t pid = fork();
	if (pid == 0) {
		unimem_block_close(b); /* shares the creator's open file */
		_exit(0);
	}
	cr_assert_eq(reap(pid), 0);
	unimem_block *r;
	cr_assert_eq(unimem_block_lookup(&r, unimem_block_id(b)), 0);
	unimem_block_close(r);
	unimem_block_close(b);
}
