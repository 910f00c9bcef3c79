/* SPDX-License-Identifier: MIT */
/* A hostile stand-in for unimem-net-exporter (tests/test_net.c names it in
 * UNIMEM_NET_EXPORTER): it starts as the real one does (forks the server away, greets),
 * then answers the way FAKE_NETEXP says, each a way a broken or mismatched helper could:
 *   version   greets with another protocol version
 *   pid-app   greets with the pid of the process it serves (whom a kill would hit)
 *   pid-one   greets with pid 1
 *   short     answers an export with half a reply
 *   token     answers with another export's token
 *   rc-min    answers rc = INT32_MIN (no errno)
 *   rc-pos    answers rc = 5 (positive)
 *   long      answers success with a descriptor longer than the caller's buffer
 *   fds       answers -EINVAL with 16 file descriptors attached
 *   nonul     answers -EINVAL with a message that fills its field, no NUL
 * It keeps no Block: every export fails somewhere. */
#define _GNU_SOURCE
#include "net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void answer(int sock, struct umi_neth_rep *r, size_t len, int nfds)
{
	char ctl[CMSG_SPACE(16 * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = r, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		int fds[16];
		for (int k = 0; k < nfds; k++)
			fds[k] = open("/dev/null", O_RDONLY);
		m.msg_control = ctl;
		m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	(void)sendmsg(sock, &m, MSG_NOSIGNAL);
}

int main(int argc, char **argv)
{
	int fd = -1, app = 0;
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--fd=", 5))
			fd = atoi(argv[i] + 5);
		if (!strncmp(argv[i], "--for=", 6))
			app = atoi(argv[i] + 6);
	}
	const char *mode = getenv("FAKE_NETEXP");
	if (fd < 0 || !mode)
		return 2;
	pid_t pid = fork();
	if (pid != 0)
		_exit(pid < 0);
	setsid();
	signal(SIGPIPE, SIG_IGN);
	struct umi_neth_rep r = { .magic = UMI_NETH_MAGIC, .op = UMI_NETH_HELLO,
				  .version = UMI_NETH_VERSION, .pid = getpid() };
	if (!strcmp(mode, "version"))
		r.version++;
	if (!strcmp(mode, "pid-app"))
		r.pid = app;
	if (!strcmp(mode, "pid-one"))
		r.pid = 1;
	answer(fd, &r, sizeof r, 0);
	for (;;) {
		struct umi_neth_req q;
		char ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = &q, .iov_len = sizeof q };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				    .msg_controllen = sizeof ctl };
		ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			return 0;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		if (c && c->cmsg_type == SCM_RIGHTS) {
			int got;
			memcpy(&got, CMSG_DATA(c), sizeof got);
			close(got);
		}
		memset(&r, 0, sizeof r);
		r.magic = UMI_NETH_MAGIC;
		r.op = q.op;
		r.token = q.token;
		r.version = UMI_NETH_VERSION;
		r.rc = -EINVAL;
		size_t len = sizeof r;
		int nfds = 0;
		if (!strcmp(mode, "short"))
			len = sizeof r / 2;
		else if (!strcmp(mode, "token"))
			r.token++;
		else if (!strcmp(mode, "rc-min"))
			r.rc = INT_MIN;
		else if (!strcmp(mode, "rc-pos"))
			r.rc = 5;
		else if (!strcmp(mode, "long") || !strcmp(mode, "pid-app") || !strcmp(mode, "pid-one")) {
			r.rc = 0;
			r.len = (uint32_t)q.cap + 1;
		} else if (!strcmp(mode, "fds"))
			nfds = 16;
		else if (!strcmp(mode, "nonul"))
			memset(r.msg, 'x', sizeof r.msg);
		answer(fd, &r, len, nfds);
	}
}
