/* SPDX-License-Identifier: MIT */
/* Two network namespaces joined by a veth pair, removed by a guardian process (netns.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sh(const char *cmd)
{
	int st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool netns_can_make(void)
{
	return geteuid() == 0 && sh("command -v ip >/dev/null 2>&1") == 0;
}

bool netns_exists(const char *name)
{
	char path[128];
	snprintf(path, sizeof path, "/var/run/netns/%s", name);
	return access(path, F_OK) == 0;
}

/* Kill what runs in namespace `name` (twice: a process may fork while it dies), then
 * delete it; its end of a veth pair goes with it. Never fails loudly. */
static void remove_ns(const char *name)
{
	if (!netns_exists(name))
		return;
	char cmd[256];
	snprintf(cmd, sizeof cmd,
		 "for i in 1 2; do ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null;"
		 " done; ip netns del %s >/dev/null 2>&1", name, name);
	sh(cmd);
}

int netns_sweep(const char *prefix)
{
	DIR *d = opendir("/var/run/netns");
	if (!d)
		return 0;
	size_t pl = strlen(prefix);
	char names[64][256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 64) {
		if (strncmp(e->d_name, prefix, pl) != 0)
			continue;
		char *end;
		long pid = strtol(e->d_name + pl, &end, 10);
		if (end == e->d_name + pl || pid <= 0 || end[0] != '-' ||
		    (end[1] != 'a' && end[1] != 'b') || end[2] != '\0')
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its maker lives (or a process of that pid does) */
		snprintf(names[n++], sizeof names[0], "%s", e->d_name);
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		remove_ns(names[i]);
	return n;
}

/* The guardian: waits until every copy of the pipe's write end is closed, then removes
 * the pair. In a session of its own and deaf to the usual signals, so that a ^C or a
 * kill of the maker's process group does not take it along. */
static void guardian(int rfd, const char *a, const char *b)
{
	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) { /* never write into the maker's stdout (a TAP stream) */
		dup2(null, 0);
		dup2(null, 1);
	}
	for (int fd = 3; fd < 1024; fd++)
		if (fd != rfd)
			close(fd);
	for (;;) {
		char c;
		ssize_t r = read(rfd, &c, 1);
		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	remove_ns(a);
	remove_ns(b);
	_exit(0);
}

int netns_pair_make(struct netns_pair *p, const char *prefix, int net)
{
	memset(p, 0, sizeof *p);
	p->guard_fd = -1;
	netns_sweep(prefix);
	int me = (int)getpid(), k = me % 250 + 1;
	snprintf(p->a, sizeof p->a, "%s%d-a", prefix, me);
	snprintf(p->b, sizeof p->b, "%s%d-b", prefix, me);
	snprintf(p->ipa, sizeof p->ipa, "10.%d.%d.1", net, k);
	snprintf(p->ipb, sizeof p->ipb, "10.%d.%d.2", net, k);
	int g[2];
	if (pipe2(g, O_CLOEXEC) != 0)
		return -1;
	fflush(NULL);
	p->guard = fork();
	if (p->guard < 0) {
		p->guard = 0;
		close(g[0]);
		close(g[1]);
		return -1;
	}
	if (p->guard == 0)
		guardian(g[0], p->a, p->b);
	close(g[0]);
	p->guard_fd = g[1];
	/* The veth ends: <prefix><pid>a / b (IFNAMSIZ holds them). */
	char va[24], vb[24], cmd[1536];
	snprintf(va, sizeof va, "%s%da", prefix, me);
	snprintf(vb, sizeof vb, "%s%db", prefix, me);
	snprintf(cmd, sizeof cmd,
		 "set -e; ip netns add %s; ip netns add %s;"
		 "ip link add %s netns %s type veth peer name %s netns %s;"
		 "ip -n %s addr add %s/30 dev %s; ip -n %s addr add %s/30 dev %s;"
		 "ip -n %s link set %s up; ip -n %s link set %s up;"
		 "ip -n %s link set lo up; ip -n %s link set lo up;"
		 "for i in $(seq 100); do ip -n %s link show %s | grep -q LOWER_UP &&"
		 " ip -n %s link show %s | grep -q LOWER_UP && exit 0; sleep 0.05; done; exit 1",
		 p->a, p->b, va, p->a, vb, p->b, p->a, p->ipa, va, p->b, p->ipb, vb, p->a, va, p->b,
		 vb, p->a, p->b, p->a, va, p->b, vb);
	if (sh(cmd) != 0) {
		netns_pair_remove(p);
		return -1;
	}
	return 0;
}

int netns_enter(const struct netns_pair *p, const char *name)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (p->guard_fd >= 0)
		close(p->guard_fd);
	char path[128];
	snprintf(path, sizeof path, "/var/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = setns(fd, CLONE_NEWNET);
	close(fd);
	if (r != 0)
		return -1;
	/* /sys/class/net shows the namespace of whoever mounted /sys: mount a sysfs of this
	 * one, in a mount namespace of this process only. */
	if (unshare(CLONE_NEWNS) != 0 || mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) != 0)
		return -1;
	umount2("/sys", MNT_DETACH);
	return mount(name, "/sys", "sysfs", 0, NULL);
}

void netns_pair_remove(struct netns_pair *p)
{
	if (p->guard_fd >= 0) {
		close(p->guard_fd); /* the guardian wakes (once children's copies are gone too) */
		p->guard_fd = -1;
	}
	if (p->guard > 0) {
		struct timespec ten_ms = { 0, 10000000 };
		int i;
		for (i = 0; i < 1000 && waitpid(p->guard, NULL, WNOHANG) == 0; i++)
			nanosleep(&ten_ms, NULL);
		if (i == 1000) { /* someone still holds the pipe: do it here */
			kill(p->guard, SIGKILL);
			waitpid(p->guard, NULL, 0);
		}
		p->guard = 0;
	}
	if (p->a[0]) {
		remove_ns(p->a);
		remove_ns(p->b);
	}
}
