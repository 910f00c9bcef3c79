/* SPDX-License-Identifier: MIT */
/* unimem_net, exporting through a helper process. UCX 1.13 can abort the process that
 * serves reads when an importer dies mid-transfer (docs/NET.md), so exports are served by
 * `unimem-net-exporter`, a process of the library's own started at the first export: it
 * receives each Block's memfd, maps it, and registers and serves that mapping (the same
 * pages), while this process keeps no UCX worker. If UCX aborts, the helper dies, not this
 * process: its exports are revoked (importers get errors), and the next unimem_net_export
 * of such a Block starts a new helper and gives a new descriptor.
 *
 * The helper is found by UNIMEM_NET_EXPORTER (a path, or "inprocess" for none), else beside
 * the library (the build tree, the Python package), else where it was installed. It is not
 * this process's child (it forks away at start, so no wait() of the application sees it)
 * and ends when this process's end of the socket closes: at exit, or a crash. */
#define _GNU_SOURCE
#include "base.h"
#include "block_pvt.h"
#include "net_internal.h"
#include "net_pvt.h"
#include "os/os.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define HELPER_NAME "unimem-net-exporter"
#define REPLY_MS 60000 /* a helper that answers nothing for this long is hung: killed */

struct hexp {
	const unimem_block *b;
	uint64_t token;
	struct hexp *next;
};

static pthread_mutex_t hlock = PTHREAD_MUTEX_INITIALIZER;
static int hfd = -1;        /* this process's end of the helper's socket */
static pid_t hpid;          /* the helper */
static pid_t hfor;          /* the process that started it (a forked child has none) */
static uint64_t next_token = 1;
static struct hexp *hexps;  /* exports the helper serves */

/* Where the helper is: 0 and its path, 1 for none (export in this process), or a
 * negative errno when UNIMEM_NET_EXPORTER names something that cannot run. */
static int helper_path(char *out, size_t cap)
{
	const char *e = secure_getenv("UNIMEM_NET_EXPORTER");
	if (e && *e) {
		if (!strcmp(e, "inprocess"))
			return 1;
		if (access(e, X_OK) != 0)
			return umi_fail(-errno, "UNIMEM_NET_EXPORTER=%s cannot be run", e);
		snprintf(out, cap, "%s", e);
		return 0;
	}
	Dl_info di;
	if (dladdr(&hlock, &di) && di.dli_fname && strchr(di.dli_fname, '/')) {
		const char *slash = strrchr(di.dli_fname, '/');
		snprintf(out, cap, "%.*s/" HELPER_NAME, (int)(slash - di.dli_fname), di.dli_fname);
		if (access(out, X_OK) == 0)
			return 0;
	}
#ifdef UNIMEM_NET_EXPORTER_PATH
	snprintf(out, cap, "%s", UNIMEM_NET_EXPORTER_PATH);
	if (access(out, X_OK) == 0)
		return 0;
#endif
	return 1;
}

/* Whether pid is a helper started by this process: its arguments hold --for=<our pid>
 * (/proc/PID/cmdline). What the helper says its pid is must not get another process killed:
 * a broken or foreign helper could name the application, or init. Without /proc (none
 * mounted) only pid > 1 and not this process are checked. */
static bool helper_is(pid_t pid)
{
	if (pid <= 1 || pid == getpid())
		return false;
	char path[48], want[40], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && access("/proc/self/cmdline", F_OK) != 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	snprintf(want, sizeof want, "--for=%d", (int)getpid());
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
		if (!strcmp(buf + i, want))
			return true;
	return false;
}

/* Under hlock: the helper is gone or given up. Its exports are revoked with it. */
static void helper_lost(bool kill_it)
{
	if (kill_it && hpid > 0 && helper_is(hpid))
		kill(hpid, SIGKILL);
	if (hfd >= 0)
		close(hfd);
	hfd = -1;
	hpid = 0;
	while (hexps) {
		struct hexp *h = hexps;
		hexps = h->next;
		free(h);
		atomic_fetch_sub(&umi_net_exported, 1);
	}
}

/* Under hlock: whether the helper's end is still there (no wait). */
static bool helper_alive(void)
{
	if (hfd < 0)
		return false;
	struct pollfd pf = { .fd = hfd, .events = POLLIN };
	if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR | POLLIN)))
		return false; /* hung up (it sends nothing unasked) */
	/* Dying: its main thread has exited (a zombie) while other threads of it, on their way
	 * out, still hold the socket open (a re-export right after its crash got -EALREADY). */
	uint64_t start;
	if (hpid > 0 && umi_os_proc_start(hpid, &start) == -ESRCH)
		return false;
	return true;
}

/* One reply (of op and token) within REPLY_MS: 0, -EPIPE when the helper is gone (closed
 * its end, or sent what no helper sends), -ETIMEDOUT when it is hung. */
static int get_reply(uint32_t op, uint64_t token, struct umi_neth_rep *r)
{
	struct pollfd pf = { .fd = hfd, .events = POLLIN };
	int n;
	while ((n = poll(&pf, 1, REPLY_MS)) < 0 && errno == EINTR)
		;
	if (n == 0)
		return -ETIMEDOUT;
	ssize_t got;
	while ((got = recv(hfd, r, sizeof *r, 0)) < 0 && errno == EINTR)
		;
	if (got != (ssize_t)sizeof *r || r->magic != UMI_NETH_MAGIC || r->op != op ||
	    r->token != token)
		return -EPIPE;
	r->msg[sizeof r->msg - 1] = '\0';
	return 0;
}

static void watch_forks(void);

/* Under hlock: start a helper (hfd, hpid), or a negative errno. */
static int helper_start(const char *path)
{
	static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
	pthread_once(&fork_once, watch_forks);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return umi_fail(-errno, "socketpair for the export helper failed");
	/* The helper's end becomes its fd 3 (a dup2 onto itself would keep close-on-exec). */
	if (sv[1] == 3) {
		int d = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
		close(sv[1]);
		sv[1] = d;
		if (d < 0) {
			close(sv[0]);
			return umi_fail(-errno, "no file descriptor for the export helper");
		}
	}
	char forarg[32];
	snprintf(forarg, sizeof forarg, "--for=%d", (int)getpid());
	char *argv[] = { (char *)HELPER_NAME, (char *)"--fd=3", forarg, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t mid;
	int err = posix_spawn(&mid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return umi_fail(-err, "the export helper %s could not be started", path);
	}
	/* It forks the server and exits at once (ECHILD: the application reaps children). */
	int st = 0;
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	hfd = sv[0];
	struct umi_neth_rep r;
	err = get_reply(UMI_NETH_HELLO, 0, &r);
	const char *why = err ? "no answer" : NULL;
	if (!err && r.version != UMI_NETH_VERSION)
		why = "another version of unimem";
	else if (!err && (r.pid > INT32_MAX || !helper_is((pid_t)r.pid)))
		why = "not the export helper it says it is: its pid";
	if (why) {
		close(hfd);
		hfd = -1;
		return umi_fail(err ? -ECHILD : -EPROTO, "the export helper %s did not start (%s)",
				path, why);
	}
	hpid = (pid_t)r.pid;
	return 0;
}

/* Forget a helper started by the parent of a fork (its socket is shared with the parent:
 * this process must not talk on it, nor keep it open: the helper ends when the exporter's
 * end closes, and a child that lives on, a prefork worker say, would keep it serving).
 * Run in the child of every fork once a helper was started (no other thread there, so
 * without the lock, which another thread of the parent may have held: it starts anew), and
 * by check_fork for a child made otherwise. */
static void forget_parents_helper(void)
{
	if (hfd >= 0)
		close(hfd);
	hfd = -1;
	hpid = 0;
	hexps = NULL; /* the parent's; not freed here */
	hfor = getpid();
}

static void on_fork_child(void)
{
	const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	hlock = fresh;
	forget_parents_helper();
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/* Under hlock: as on_fork_child, where it did not run (a child of a raw clone). */
static void check_fork(void)
{
	if (hfor != getpid())
		forget_parents_helper();
}

static struct hexp **hfind(const unimem_block *b)
{
	struct hexp **ph = &hexps;
	while (*ph && (*ph)->b != b)
		ph = &(*ph)->next;
	return ph;
}

int umi_net_helper_export(const unimem_block *b, unsigned flags, void *desc, size_t cap,
			  size_t *len)
{
	char path[4096];
	umi_fail_clear();
	int err = helper_path(path, sizeof path);
	if (err)
		return err;
	pthread_mutex_lock(&hlock);
	check_fork();
	struct hexp *h = *hfind(b);
	if (h) {
		if (helper_alive()) {
			pthread_mutex_unlock(&hlock);
			return umi_fail(-EALREADY, "this Block is already exported");
		}
		helper_lost(false); /* it died: export anew */
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		pthread_mutex_unlock(&hlock);
		return -ENOMEM;
	}
	struct umi_neth_req q = {
		.magic = UMI_NETH_MAGIC,
		.op = UMI_NETH_EXPORT,
		.flags = flags,
		.version = UMI_NETH_VERSION,
		.token = next_token++,
		.size = b->size,
		.cap = cap,
	};
	umi_net_where_here(&q.where);
	struct umi_neth_rep r;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!helper_alive()) {
			helper_lost(false);
			if ((err = helper_start(path)) != 0)
				break;
		}
		char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = &q, .iov_len = sizeof q };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				    .msg_controllen = sizeof ctl };
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &b->fd, sizeof(int));
		ssize_t sent;
		while ((sent = sendmsg(hfd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
			;
		err = sent == (ssize_t)sizeof q ? get_reply(UMI_NETH_EXPORT, q.token, &r) : -EPIPE;
		if (!err)
			break;
		/* Gone (it died since the last call) or hung: once more with a new one. */
		helper_lost(err == -ETIMEDOUT);
		if (err == -ETIMEDOUT)
			break;
	}
	if (err == -EPIPE)
		err = umi_fail(-EPIPE, "the export helper died while exporting");
	else if (err == -ETIMEDOUT)
		err = umi_fail(-ETIMEDOUT, "the export helper did not answer within %d s (killed)",
			       REPLY_MS / 1000);
	else if (!err && r.rc) {
		/* A negative errno, or -EIO for what is none. */
		const int rc = r.rc < 0 && r.rc >= -4095 ? r.rc : -EIO;
		err = r.msg[0] ? umi_fail(rc, "%s", r.msg) : rc;
	}
	if (!err && (r.len > cap || r.len > sizeof r.desc)) {
		/* More than it was told fits: not a helper of this library. */
		helper_lost(true);
		err = umi_fail(-EPROTO, "the export helper answered with a descriptor too long");
	}
	if (err == -ENOSPC || !err)
		*len = r.len;
	if (!err) {
		memcpy(desc, r.desc, r.len);
		h->b = b;
		h->token = q.token;
		h->next = hexps;
		hexps = h;
		atomic_fetch_add(&umi_net_exported, 1);
		h = NULL;
	}
	free(h);
	pthread_mutex_unlock(&hlock);
	return err;
}

int umi_net_helper_unexport(const unimem_block *b)
{
	pthread_mutex_lock(&hlock);
	check_fork();
	struct hexp **ph = hfind(b), *h = *ph;
	if (!h) {
		pthread_mutex_unlock(&hlock);
		return 1;
	}
	*ph = h->next;
	atomic_fetch_sub(&umi_net_exported, 1);
	struct umi_neth_req q = { .magic = UMI_NETH_MAGIC,
				  .op = UMI_NETH_UNEXPORT,
				  .version = UMI_NETH_VERSION,
				  .token = h->token };
	free(h);
	struct umi_neth_rep r;
	int err = send(hfd, &q, sizeof q, MSG_NOSIGNAL) == (ssize_t)sizeof q
			  ? get_reply(UMI_NETH_UNEXPORT, q.token, &r)
			  : -EPIPE;
	/* A helper that is gone or hung serves nothing: the export is revoked either way. */
	if (err)
		helper_lost(err == -ETIMEDOUT);
	pthread_mutex_unlock(&hlock);
	return 0;
}
