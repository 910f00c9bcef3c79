/* SPDX-License-Identifier: MIT */
/* unimem-net-exporter: the helper process that serves a process's network exports
 * (net_helper.c starts it, net_serve.c is its loop). Not for running by hand:
 *   unimem-net-exporter --fd=N --for=PID
 * N is its end of a unix socket from the starting process PID (--for only names it in
 * ps). It forks the server and exits, so that the server is no child of the application
 * (no wait() of the application sees it end), then serves until the other end closes. */
#define _GNU_SOURCE
#include "net_internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int fd = -1;
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--fd=", 5))
			fd = atoi(argv[i] + 5);
	if (fd < 3) {
		fprintf(stderr, "unimem-net-exporter: started by libunimem only (--fd=N)\n");
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		_exit(0);
	/* Away from the terminal's signals (the application's own exit or crash ends this
	 * one, by the socket), with no fd of the application but the socket. */
	setsid();
	signal(SIGPIPE, SIG_IGN);
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			return 1;
		close(fd);
	}
	/* Closed on exec: a process this one starts (AddressSanitizer's symbolizer when it
	 * crashes, say) must not keep the socket open, or the exporter would take it for
	 * alive after it died (its re-export got -EALREADY: test_net). */
	if (fcntl(3, F_SETFD, FD_CLOEXEC) != 0)
		return 1;
	/* stdio stays (UCX's messages); everything else goes */
	if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
		for (long k = 4, max = sysconf(_SC_OPEN_MAX); k < max && k < 65536; k++)
			close((int)k);
	return umi_net_serve(3);
}
