/* SPDX-License-Identifier: MIT */
/* Blocks over the network (issue 17), beside ucx_perftest in the same run:
 *  1. reads and writes of 64 KiB .. 64 MiB between two network namespaces joined by a
 *     veth pair made here (UCX over tcp), against ucx_perftest's ucp_get / ucp_put
 *     bandwidth tests on the same link and sizes (the best of its default and -O 16);
 *  2. exporting a Block holding 100,000 Tape allocations: one ucp_mem_map, the descriptor
 *     size and the time, beside a ucp_mem_map + rkey pack per allocation (what per-tensor
 *     registration costs);
 *  3. same host, other process: a Block passed as an fd (unimem_block_send/recv) and read
 *     with memcpy.
 * Needs root and ip(8) (exit 77 = skipped otherwise). Usage: bench_net [--gib N]
 * (the Block of part 2, default 4, unpinned: nothing is touched). */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "../src/net_ucp.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
static const size_t sizes[] = { 64 << 10, 1 << 20, 16 << 20, 64 << 20 };
#define NSIZES (sizeof sizes / sizeof sizes[0])
static char nsa[32], nsb[32], ipa[32];
static int net;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int iters_for(size_t size)
{
	size_t n = ((size_t)256 << 20) / size; /* about 256 MiB moved per measurement */
	return (int)(n < 8 ? 8 : n > 2000 ? 2000 : n);
}

static int enter_netns(const char *name)
{
	char path[128];
	snprintf(path, sizeof path, "/var/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
		return -1;
	close(fd);
	/* UCX reads /sys/class/net: a sysfs of this namespace, as `ip netns exec` mounts. */
	if (unshare(CLONE_NEWNS) != 0 || mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) != 0)
		return -1;
	umount2("/sys", MNT_DETACH);
	return mount(name, "/sys", "sysfs", 0, NULL);
}

/* ucx_perftest's overall bandwidth (MB/s, MB = 2^20 bytes) of `test` at `size`. */
static double perftest(const char *test, size_t size, const char *extra)
{
	static int port = 14000;
	port++;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "ip netns exec %s ucx_perftest -p %d >/dev/null 2>&1 &", nsa, port);
	if (sh(cmd) != 0)
		return 0;
	usleep(300000);
	snprintf(cmd, sizeof cmd, "ip netns exec %s ucx_perftest %s -p %d -t %s -s %zu -n %d -w %d %s "
		 "2>/dev/null", nsb, ipa, port, test, size, iters_for(size), iters_for(size) / 8 + 1, extra);
	FILE *f = popen(cmd, "r");
	double bw = 0;
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		double v[7];
		if (sscanf(line, "Final: %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4],
			   &v[5], &v[6]) == 7)
			bw = v[5];
	}
	if (f)
		pclose(f);
	return bw;
}

/* The exporter in namespace a: a Block of 64 MiB, exported; the descriptor goes to `out`;
 * it lives until `in` closes. */
static void exporter(int out, int in)
{
	unimem_block *b;
	unsigned char d[UNIMEM_NET_DESC_MAX];
	size_t n = 0;
	if (enter_netns(nsa) != 0 || unimem_block_open(&b, 64 * MIB, 0) != 0)
		_exit(1);
	memset(unimem_block_ptr(b), 1, 64 * MIB);
	if (unimem_net_export(b, 0, d, sizeof d, &n) != 0)
		n = 0;
	if (write(out, &n, sizeof n) < 0 || write(out, d, n) < 0)
		_exit(1);
	char c;
	while (read(in, &c, 1) > 0)
		;
	_exit(0);
}

/* The importer in namespace b: for each command (op, size index) read from `cmd`, the
 * MB/s of that transfer, written to `out`. */
static void importer(int in, int cmd, int out)
{
	size_t n;
	unsigned char d[UNIMEM_NET_DESC_MAX];
	if (enter_netns(nsb) != 0 || read(in, &n, sizeof n) != sizeof n || n == 0 ||
	    read(in, d, n) != (ssize_t)n)
		_exit(1);
	unimem_remote *r;
	int e = unimem_net_import(&r, d, n);
	if (e) {
		fprintf(stderr, "bench_net: import: %s\n", unimem_strerror(e));
		_exit(1);
	}
	unsigned char *buf = malloc(64 * MIB);
	memset(buf, 2, 64 * MIB);
	int c[2];
	while (read(cmd, c, sizeof c) == sizeof c) {
		int w = c[0];
		size_t k = (size_t)c[1];
		int it = iters_for(sizes[k]), warm = it / 8 + 1;
		double t0 = 0;
		for (int i = -warm; i < it; i++) {
			if (i == 0)
				t0 = now_s();
			uint64_t off = ((uint64_t)i * sizes[k]) % (64 * MIB);
			/* Pipelined, as ucx_perftest's bandwidth tests are: started transfers,
			 * waited for (and writes flushed) at the end. */
			if (i == -1 || i == it - 1)
				e = unimem_remote_wait(r);
			else
				e = w ? unimem_remote_write_start(r, off, buf, sizes[k])
				      : unimem_remote_read_start(r, off, buf, sizes[k]);
			if (e) {
				fprintf(stderr, "bench_net: %s\n", unimem_strerror(e));
				_exit(1);
			}
		}
		double v = (double)sizes[k] * it / (now_s() - t0) / (double)MIB;
		if (write(out, &v, sizeof v) != sizeof v)
			_exit(1);
	}
	unimem_remote_close(r);
	_exit(0);
}

static int transfers(void)
{
	char cmd[1024];
	snprintf(nsa, sizeof nsa, "umb%d-a", (int)getpid());
	snprintf(nsb, sizeof nsb, "umb%d-b", (int)getpid());
	net = (int)(getpid() % 250) + 1;
	snprintf(ipa, sizeof ipa, "10.214.%d.1", net);
	snprintf(cmd, sizeof cmd,
		 "set -e; ip netns add %s; ip netns add %s;"
		 "ip link add uba%d netns %s type veth peer name ubb%d netns %s;"
		 "ip -n %s addr add 10.214.%d.1/30 dev uba%d; ip -n %s addr add 10.214.%d.2/30 dev ubb%d;"
		 "ip -n %s link set uba%d up; ip -n %s link set ubb%d up;"
		 "ip -n %s link set lo up; ip -n %s link set lo up;"
		 "for i in $(seq 100); do ip -n %s link show uba%d | grep -q LOWER_UP &&"
		 " ip -n %s link show ubb%d | grep -q LOWER_UP && exit 0; sleep 0.05; done; exit 1",
		 nsa, nsb, net, nsa, net, nsb, nsa, net, net, nsb, net, net, nsa, net, nsb, net, nsa, nsb,
		 nsa, net, nsb, net);
	int ok = sh(cmd) == 0;
	double res[2][NSIZES] = { { 0 } }, pt[2][NSIZES] = { { 0 } };
	if (ok) {
		int p[2], q[2], c[2], m2[2];
		if (pipe(p) || pipe(q) || pipe(c) || pipe(m2))
			return 1;
		fflush(NULL);
		pid_t x = fork();
		if (x == 0) {
			close(c[1]);
			exporter(p[1], c[0]);
		}
		close(c[0]);
		pid_t m = fork();
		if (m == 0) {
			close(m2[1]);
			importer(p[0], m2[0], q[1]);
		}
		close(m2[0]);
		close(q[1]);
		/* Interleaved, two rounds: the machine is shared, and its load changes. */
		for (int round = 0; round < 2 && ok; round++)
			for (int w = 0; w < 2 && ok; w++)
				for (size_t k = 0; k < NSIZES && ok; k++) {
					int cmdv[2] = { w, (int)k };
					double v = 0;
					ok = write(m2[1], cmdv, sizeof cmdv) == sizeof cmdv &&
					     read(q[0], &v, sizeof v) == sizeof v;
					res[w][k] = v > res[w][k] ? v : res[w][k];
					const char *t = w ? "ucp_put_bw" : "ucp_get";
					double a = perftest(t, sizes[k], ""), b = perftest(t, sizes[k], "-O 16");
					a = a > b ? a : b;
					pt[w][k] = a > pt[w][k] ? a : pt[w][k];
				}
		close(m2[1]);
		int st;
		waitpid(m, &st, 0);
		ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		close(c[1]);
		waitpid(x, NULL, 0);
	}
	snprintf(cmd, sizeof cmd, "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", nsa, nsb);
	sh(cmd);
	if (!ok) {
		fprintf(stderr, "bench_net: the namespaces or the transfers failed\n");
		return 1;
	}
	printf("## Two network namespaces over a veth pair, UCX_TLS=tcp (MB/s, MB = 2^20 bytes)\n\n");
	printf("| op | size | unimem_remote_*_start + wait (best of 2) | ucx_perftest (best of default and -O 16, 2 rounds) | ratio |\n");
	printf("|----|------|-----------------|----------------------------------------|-------|\n");
	for (int w = 0; w < 2; w++)
		for (size_t k = 0; k < NSIZES; k++)
			printf("| %s | %zu KiB | %.0f | %.0f | %.2fx |\n", w ? "write / ucp_put" : "read / ucp_get",
			       sizes[k] >> 10, res[w][k], pt[w][k],
			       pt[w][k] > 0 ? res[w][k] / pt[w][k] : 0.0);
	return 0;
}

/* Part 2, in a child (UCX state stays out of the parent). */
static void registration(size_t gib)
{
	setenv("UNIMEM_NET_ADDR", "127.0.0.1", 1);
	unimem_tape *t;
	size_t bytes = gib << 30;
	if (unimem_tape_start_flags(&t, bytes, UNIMEM_BLOCK_UNPINNED) != 0)
		_exit(1);
	const unimem_block *b = unimem_tape_block(t);
	size_t each = (bytes - (1 << 20)) / 100000 & ~(size_t)63;
	static void *allocs[100000];
	for (int i = 0; i < 100000; i++)
		if (!(allocs[i] = unimem_tape_take(t, each, 64)))
			_exit(2);
	unsigned char d[UNIMEM_NET_DESC_MAX];
	size_t n;
	double t0 = now_s();
	int e = unimem_net_export(b, 0, d, sizeof d, &n); /* the first also loads and starts UCX */
	double first = now_s() - t0;
	if (e) {
		fprintf(stderr, "bench_net: export: %s\n", unimem_strerror(e));
		_exit(3);
	}
	unimem_net_unexport(b);
	double best = 1e9;
	for (int i = 0; i < 5; i++) {
		t0 = now_s();
		e = unimem_net_export(b, 0, d, sizeof d, &n);
		double dt = now_s() - t0;
		best = dt < best ? dt : best;
		unimem_net_unexport(b);
	}
	/* The rival: one registration and one packed rkey per allocation. */
	struct umi_ucp u;
	void *h = dlopen("libucp.so.0", RTLD_NOW);
	double per = 0;
	size_t keys = 0;
	if (h) {
		*(void **)&u.init_version = dlsym(h, "ucp_init_version");
		*(void **)&u.mem_map = dlsym(h, "ucp_mem_map");
		*(void **)&u.mem_unmap = dlsym(h, "ucp_mem_unmap");
		*(void **)&u.rkey_pack = dlsym(h, "ucp_rkey_pack");
		*(void **)&u.rkey_buffer_release = dlsym(h, "ucp_rkey_buffer_release");
		umi_ucp_params_t p = { .field_mask = UMI_UCP_PARAM_FIELD_FEATURES,
				       .features = UMI_UCP_FEATURE_RMA };
		umi_ucp_context_h ctx;
		static umi_ucp_mem_h mh[100000];
		if (u.init_version(1, 13, &p, NULL, &ctx) == UMI_UCS_OK) {
			t0 = now_s();
			for (int i = 0; i < 100000; i++) {
				umi_ucp_mem_map_params_t mp = {
					.field_mask = UMI_UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
						      UMI_UCP_MEM_MAP_PARAM_FIELD_LENGTH,
					.address = allocs[i], .length = each };
				void *kb;
				size_t kl;
				if (u.mem_map(ctx, &mp, &mh[i]) != UMI_UCS_OK ||
				    u.rkey_pack(ctx, mh[i], &kb, &kl) != UMI_UCS_OK)
					_exit(4);
				keys += kl;
				u.rkey_buffer_release(kb);
			}
			per = now_s() - t0;
			for (int i = 0; i < 100000; i++)
				u.mem_unmap(ctx, mh[i]);
		}
	}
	printf("\n## Registering a %zu GiB Block (unpinned) holding 100,000 Tape allocations, UCX_TLS=tcp\n\n", gib);
	printf("| what | registrations | descriptor / rkey bytes | time |\n|---|---|---|---|\n");
	printf("| unimem_net_export, first (loads UCX, ucp_init, worker, thread) | 1 | %zu | %.1f ms |\n", n,
	       first * 1e3);
	printf("| unimem_net_export, again (best of 5) | 1 | %zu | %.2f ms |\n", n, best * 1e3);
	printf("| ucp_mem_map + ucp_rkey_pack per allocation | 100000 | %zu | %.1f ms |\n", keys, per * 1e3);
	printf("| ratio (per allocation / unimem, again) | | | %.0fx |\n", best > 0 ? per / best : 0);
	fflush(stdout);
	_exit(0);
}

/* Part 3: an fd-passed Block read with memcpy in the receiving process. */
static void fd_passing(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return;
	fflush(NULL);
	pid_t c = fork();
	if (c == 0) {
		unimem_block *b;
		if (unimem_block_open(&b, 64 * MIB, 0))
			_exit(1);
		memset(unimem_block_ptr(b), 3, 64 * MIB);
		unimem_block_send(sv[0], b);
		char x;
		if (read(sv[0], &x, 1) < 0)
			_exit(1);
		_exit(0);
	}
	unimem_block *b;
	if (unimem_block_recv(&b, sv[1]) != 0)
		return;
	unsigned char *dst = malloc(64 * MIB);
	memset(dst, 0, 64 * MIB);
	printf("\n## Same host, other process: a Block passed as an fd, read with memcpy (MB/s)\n\n");
	printf("| size | fd passing + memcpy | note |\n|---|---|---|\n");
	for (size_t k = 0; k < NSIZES; k++) {
		int it = iters_for(sizes[k]);
		double t0 = now_s();
		for (int i = 0; i < it; i++)
			memcpy(dst, (unsigned char *)unimem_block_ptr(b) + ((size_t)i * sizes[k]) % (64 * MIB),
			       sizes[k]);
		printf("| %zu KiB | %.0f | zero copy is possible: the pages are mapped here |\n",
		       sizes[k] >> 10, (double)sizes[k] * it / (now_s() - t0) / (double)MIB);
	}
	unimem_block_close(b);
	if (write(sv[1], "x", 1) < 0)
		return;
	waitpid(c, NULL, 0);
	free(dst);
}

int main(int argc, char **argv)
{
	size_t gib = 4;
	if (argc == 3 && strcmp(argv[1], "--gib") == 0)
		gib = strtoul(argv[2], NULL, 10);
	if (geteuid() != 0 || sh("command -v ip >/dev/null && command -v ucx_perftest >/dev/null")) {
		fprintf(stderr, "bench_net: skipped: needs root, ip(8) and ucx_perftest\n");
		return 77;
	}
	setenv("UCX_TLS", "tcp", 1);
	setenv("UCX_LOG_LEVEL", "fatal", 1);
	if (transfers())
		return 1;
	fflush(NULL);
	pid_t c = fork();
	if (c == 0)
		registration(gib);
	int st;
	waitpid(c, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fprintf(stderr, "bench_net: the registration part failed (%d)\n", st);
	fd_passing();
	return 0;
}
