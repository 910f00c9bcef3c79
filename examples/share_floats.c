/* SPDX-License-Identifier: MIT */
/* Sharing a Block of floats between processes, both ways unimem offers:
 *
 *   share_floats                  writer: fills a Block, then starts two readers
 *   share_floats --lookup <id>    reader: finds the Block by its id
 *   share_floats --recv <fd>      reader: receives the Block over a Unix socket
 *
 * The writer fills the floats once; each reader maps the very same pages (no copy),
 * checks and sums them, and writes its answer into the Block for the writer to see. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define COUNT (1u << 20) /* floats: 4 MiB */

/* The reader's answer goes into the last float; the data are the ones before. */
static double sum_of(const float *f, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += f[i];
	return s;
}

static int reader(unimem_block *b, const char *how)
{
	float *f = unimem_block_ptr(b);
	size_t n = unimem_block_size(b) / sizeof(float);
	if (n < COUNT) {
		fprintf(stderr, "reader: Block of %zu floats, want %u\n", n, COUNT);
		return 1;
	}
	for (size_t i = 0; i < COUNT - 1; i++)
		if (f[i] != (float)(i % 1000) * 0.25f) {
			fprintf(stderr, "reader: float %zu is %g\n", i, f[i]);
			return 1;
		}
	double s = sum_of(f, COUNT - 1);
	printf("reader (%s, pid %d): %u floats, pinned %s, sum %.1f\n", how, (int)getpid(),
	       COUNT - 1, unimem_block_pinned(b) ? "yes" : "no", s);
	f[COUNT - 1] = (float)s; /* the writer sees this: same pages */
	unimem_block_close(b);
	return 0;
}

/* Start this program again as a reader. */
static pid_t start_reader(const char *mode, long arg)
{
	char a[32];
	snprintf(a, sizeof a, "%ld", arg);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "share_floats", mode, a, (char *)NULL);
		perror("exec");
		_exit(127);
	}
	return pid;
}

static int wait_for(pid_t pid)
{
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
	int err;
	unimem_block *b;
	if (argc == 3 && !strcmp(argv[1], "--lookup")) {
		if ((err = unimem_block_lookup(&b, (uint32_t)strtoul(argv[2], NULL, 0)))) {
			fprintf(stderr, "lookup: %s\n", unimem_strerror(err));
			return 1;
		}
		return reader(b, "lookup");
	}
	if (argc == 3 && !strcmp(argv[1], "--recv")) {
		if ((err = unimem_block_recv(&b, atoi(argv[2])))) {
			fprintf(stderr, "recv: %s\n", unimem_strerror(err));
			return 1;
		}
		return reader(b, "recv");
	}

	/* The writer. */
	if ((err = unimem_block_open(&b, COUNT * sizeof(float), 0))) {
		fprintf(stderr, "open: %s\n", unimem_strerror(err));
		return 1;
	}
	float *f = unimem_block_ptr(b); /* page aligned; unimem_block_as_f32_mut() where generated */
	for (size_t i = 0; i < COUNT - 1; i++)
		f[i] = (float)(i % 1000) * 0.25f;
	double want = sum_of(f, COUNT - 1);
	printf("writer (pid %d): %u floats in Block %#x, sum %.1f\n", (int)getpid(), COUNT - 1,
	       unimem_block_id(b), want);

	/* 1. By id: any process of the same user can look the Block up while we hold it. */
	f[COUNT - 1] = 0;
	int rc = wait_for(start_reader("--lookup", (long)unimem_block_id(b)));
	if (rc != 0 || f[COUNT - 1] != (float)want) {
		fprintf(stderr, "writer: lookup reader failed (%d)\n", rc);
		return 1;
	}
	printf("writer: the lookup reader wrote back %.1f\n", f[COUNT - 1]);

	/* 2. Over a Unix socket: the fd travels (SCM_RIGHTS), no id needed. */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		perror("socketpair");
		return 1;
	}
	f[COUNT - 1] = 0;
	pid_t pid = start_reader("--recv", sv[1]);
	close(sv[1]);
	if ((err = unimem_block_send(sv[0], b)))
		fprintf(stderr, "send: %s\n", unimem_strerror(err));
	rc = wait_for(pid);
	close(sv[0]);
	if (err || rc != 0 || f[COUNT - 1] != (float)want) {
		fprintf(stderr, "writer: recv reader failed (%d)\n", rc);
		return 1;
	}
	printf("writer: the recv reader wrote back %.1f\n", f[COUNT - 1]);
	unimem_block_close(b);
	return 0;
}
