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
 * Needs root, ip(8), timeout(1) and ucx_perftest (exit 77 = skipped otherwise).
 * Usage: bench_net [--gib N] [--rounds N] [--ops read|write] [--sizes LIST] [--no-transfers]:
 * N GiB for the Block of part 2 (default 4, unpinned: nothing is touched), N rounds of part 1
 * (default 3, best kept); part 1 only for reads or writes, only at the sizes of LIST (KiB,
 * comma-separated: 64,1024), so that more rounds of the rows in question fit a time limit;
 * --offset0: every transfer of ours at Block offset 0, as ucx_perftest moves one buffer.
 * Every wait is bounded (the whole run by alarm(): 180 s + 150 s a round); the namespaces
 * and what runs in them are removed however it ends, SIGKILL included (tests/lib/netns.c),
 * and left-overs of earlier runs whose process is dead are removed first. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "net_ucp.h"
#include "netns.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
static const size_t sizes[] = { 64 << 10, 1 << 20, 16 << 20, 64 << 20 };
#define NSIZES (sizeof sizes / sizeof sizes[0])
/* Every wait is bounded: a ucx_perftest run (client and server) by timeout(1), a
 * measurement of ours by poll, a child by reap(), the whole run by alarm(). */
#define WHOLE_S(rounds) (180 + 150 * (rounds))
#define PERFTEST_S 30
#define MEASURE_MS 120000
static struct netns_pair pair;
static int rounds = 3;
/* What part 1 measures (--ops, --sizes): use[op][size], op 0 reads, 1 writes. */
static bool use[2][NSIZES];
/* --offset0: every transfer at Block offset 0 (as ucx_perftest reuses one buffer), not at
 * offsets that go round the 64 MiB Block (a user's reads of different allocations). */
static bool offset0;

/* Children to kill when the run is cut short (the guardian removes the namespaces). */
static volatile pid_t kids[4];

static void on_signal(int sig)
{
	for (int i = 0; i < 4; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	static const char m[] = "bench_net: stopped by a signal (the namespaces are removed)\n";
	if (write(2, m, sizeof m - 1) < 0)
		_exit(128 + sig);
	_exit(128 + sig);
}

static void kid_add(pid_t p)
{
	for (int i = 0; i < 4; i++)
		if (kids[i] <= 0) {
			kids[i] = p;
			return;
		}
}

/* Wait at most `ms` for child p, then kill it. Returns its wait status, or -1. */
static int reap(pid_t p, int ms)
{
	int st = -1;
	struct timespec t = { 0, 5000000 };
	for (int i = 0; i < ms / 5; i++) {
		pid_t w = waitpid(p, &st, WNOHANG);
		if (w == p || w < 0)
			goto out;
		nanosleep(&t, NULL);
	}
	kill(p, SIGKILL);
	waitpid(p, &st, 0);
	st = -1;
out:
	for (int i = 0; i < 4; i++)
		if (kids[i] == p)
			kids[i] = 0;
	return st;
}

/* read() of exactly n bytes within ms; 0 or -1. */
static int read_within(int fd, void *buf, size_t n, int ms)
{
	for (size_t got = 0; got < n;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int sh(const char *cmd)
{
	int st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int iters_for(size_t size)
{
	size_t n = ((size_t)256 << 20) / size; /* about 256 MiB moved per measurement */
	return (int)(n < 8 ? 8 : n > 2000 ? 2000 : n);
}

/* The tcp segments unimem's UCX context uses where the environment sets none
 * (src/net_ucx.c): ucx_perftest is also measured with them (variants 2 and 3), so that
 * its best is the best of UCX, not only of UCX's defaults. */
#define SEG_TX "256K"
#define SEG_RX "1M"
#define SEGMENTS "UCX_TCP_TX_SEG_SIZE=" SEG_TX " UCX_TCP_RX_SEG_SIZE=" SEG_RX

/* ucx_perftest's overall bandwidth of `test` at `size` in GB/s (it prints MB/s with
 * MB = 2^20 bytes), with unimem's tcp segments when `segments`; 0 when it failed, -1 when
 * it ran past PERFTEST_S. */
static double perftest(const char *test, size_t size, const char *extra, bool segments)
{
	static int port;
	if (!port)
		port = 20000 + (int)(getpid() % 20000);
	port++;
	char ports[16], lim[16];
	snprintf(ports, sizeof ports, "%d", port);
	snprintf(lim, sizeof lim, "%d", PERFTEST_S);
	fflush(NULL);
	pid_t srv = fork();
	if (srv < 0)
		return 0;
	if (srv == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		if (segments) {
			setenv("UCX_TCP_TX_SEG_SIZE", SEG_TX, 1);
			setenv("UCX_TCP_RX_SEG_SIZE", SEG_RX, 1);
		}
		execlp("ip", "ip", "netns", "exec", pair.a, "timeout", "-k", "2", lim, "ucx_perftest",
		       "-p", ports, (char *)NULL);
		_exit(127);
	}
	kid_add(srv);
	usleep(300000); /* the server listens (a failed client is retried once below) */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "ip netns exec %s env %s timeout -k 2 %d ucx_perftest %s -p %d "
		 "-t %s -s %zu -n %d -w %d %s 2>/dev/null; echo \"rc $?\"", pair.b,
		 segments ? SEGMENTS : "", PERFTEST_S, pair.ipa, port, test, size, iters_for(size),
		 iters_for(size) / 8 + 1, extra);
	FILE *f = popen(cmd, "r");
	double bw = 0;
	int rc = -1;
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		double v[7];
		if (sscanf(line, "Final: %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3],
			   &v[4], &v[5], &v[6]) == 7)
			bw = v[5] * (double)MIB / 1e9;
		sscanf(line, "rc %d", &rc);
	}
	if (f)
		pclose(f);
	reap(srv, 5000);
	if (rc == 124 || rc == 137)
		return -1;
	return bw;
}

/* ucx_perftest's default (variant 0) or -O 16 (16 outstanding, variant 1), and the same
 * with unimem's tcp segments (2, 3), retried once when it failed to start; *cut counts
 * the runs that ran past PERFTEST_S. */
#define VARIANTS 4
static double perftest_one(const char *test, size_t size, int variant, int *cut)
{
	const char *extra = variant & 1 ? "-O 16" : "";
	const bool segments = variant & 2;
	double x = perftest(test, size, extra, segments);
	if (x == 0)
		x = perftest(test, size, extra, segments);
	if (x < 0) {
		++*cut;
		x = 0;
	}
	return x;
}

/* The exporter in namespace a: a Block of 64 MiB, exported; the descriptor goes to `out`;
 * it lives until `in` closes (or the bench dies: PR_SET_PDEATHSIG). */
static void exporter(int out, int in)
{
	unimem_block *b;
	unsigned char d[UNIMEM_NET_DESC_MAX];
	size_t n = 0;
	if (netns_enter(&pair, pair.a) != 0 || unimem_block_open(&b, 64 * MIB, 0) != 0)
		_exit(1);
	memset(unimem_block_ptr(b), 1, 64 * MIB);
	int e = unimem_net_export(b, 0, d, sizeof d, &n);
	if (e) {
		fprintf(stderr, "bench_net: export: %s\n", unimem_strerror(e));
		n = 0;
	}
	if (write(out, &n, sizeof n) < 0 || write(out, d, n) < 0)
		_exit(1);
	char c;
	while (read(in, &c, 1) > 0)
		;
	_exit(0);
}

/* The importer in namespace b: for each command (op, size index) read from `cmd`, the
 * GB/s of that transfer, written to `out`. */
static void importer(int in, int cmd, int out)
{
	size_t n;
	unsigned char d[UNIMEM_NET_DESC_MAX];
	if (netns_enter(&pair, pair.b) != 0 || read(in, &n, sizeof n) != sizeof n || n == 0 ||
	    n > sizeof d || read(in, d, n) != (ssize_t)n)
		_exit(1);
	unimem_remote *r;
	int e = unimem_net_import(&r, d, n);
	if (e) {
		fprintf(stderr, "bench_net: import: %s\n", unimem_strerror(e));
		_exit(1);
	}
	unsigned char *buf = malloc(64 * MIB);
	if (!buf)
		_exit(1);
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
			uint64_t off = offset0 ? 0 : ((uint64_t)i * sizes[k]) % (64 * MIB);
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
		double v = (double)sizes[k] * it / (now_s() - t0) / 1e9;
		if (write(out, &v, sizeof v) != sizeof v)
			_exit(1);
	}
	unimem_remote_close(r);
	_exit(0);
}

/* Part 1; fills ours[op][size], theirs[op][size] (GB/s, the best) and the paired ratios
 * (ours / the ucx_perftest run right after it). Returns 0 or -1. */
static double ours[2][NSIZES], theirs[2][NSIZES], theirs_default[2][NSIZES];
static int theirs_how[2][NSIZES]; /* the variant of ucx_perftest's best */
#define MAX_ROUNDS 20
static double pairs[2][NSIZES][VARIANTS * MAX_ROUNDS];
static int npairs[2][NSIZES];

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of the paired ratios of (op, size); 0 when there is none. */
static double paired_median(int w, size_t k)
{
	int n = npairs[w][k];
	if (n == 0)
		return 0;
	double v[VARIANTS * MAX_ROUNDS];
	memcpy(v, pairs[w][k], (size_t)n * sizeof v[0]);
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int transfers(void)
{
	int removed = netns_sweep("umb");
	if (removed)
		fprintf(stderr, "bench_net: removed %d namespaces left by earlier runs\n", removed);
	if (netns_pair_make(&pair, "umb", 214) != 0) {
		fprintf(stderr, "bench_net: could not make the namespaces and the veth pair\n");
		return -1;
	}
	int ok = 1, cut = 0;
	int p[2], c[2];
	if (pipe(p) || pipe(c)) {
		ok = 0;
		goto out;
	}
	fflush(NULL);
	pid_t x = fork();
	if (x == 0) {
		close(p[0]);
		close(c[1]);
		exporter(p[1], c[0]);
	}
	close(p[1]);
	close(c[0]);
	kid_add(x);
	/* Made after the exporter's fork, so that it holds none of their ends. */
	int q[2], m2[2];
	if (pipe(q) || pipe(m2)) {
		ok = 0;
		goto out;
	}
	fflush(NULL);
	pid_t m = fork();
	if (m == 0) {
		close(c[1]);
		close(q[0]);
		close(m2[1]);
		importer(p[0], m2[0], q[1]);
	}
	kid_add(m);
	close(p[0]);
	close(m2[0]);
	close(q[1]);
	/* Interleaved rounds, the best of each kept: the machine is shared, its load changes.
	 * Ours is measured before each ucx_perftest variant, so that both sides get as many
	 * tries (a best of more tries is higher on a noisy machine). */
	for (int round = 0; round < rounds && ok; round++)
		for (int w = 0; w < 2 && ok; w++)
			for (size_t k = 0; k < NSIZES && ok; k++)
				for (int variant = 0; variant < VARIANTS && ok && use[w][k]; variant++) {
					int cmdv[2] = { w, (int)k };
					double v = 0;
					ok = write(m2[1], cmdv, sizeof cmdv) == sizeof cmdv &&
					     read_within(q[0], &v, sizeof v, MEASURE_MS) == 0;
					if (!ok)
						fprintf(stderr, "bench_net: the importer gave no figure "
							"for %s of %zu KiB\n", w ? "writes" : "reads",
							sizes[k] >> 10);
					ours[w][k] = v > ours[w][k] ? v : ours[w][k];
					double t = perftest_one(w ? "ucp_put_bw" : "ucp_get", sizes[k],
								variant, &cut);
					if (t > theirs[w][k]) {
						theirs[w][k] = t;
						theirs_how[w][k] = variant;
					}
					if (variant < 2 && t > theirs_default[w][k])
						theirs_default[w][k] = t;
					if (v > 0 && t > 0)
						pairs[w][k][npairs[w][k]++] = v / t;
				}
	close(m2[1]);
	close(q[0]);
	int st = reap(m, 15000);
	ok = ok && st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	close(c[1]);
	reap(x, 15000);
	if (cut)
		fprintf(stderr, "bench_net: %d ucx_perftest runs ran past %d s and were stopped "
			"(the other variant of each gives its figure)\n", cut, PERFTEST_S);
out:
	netns_pair_remove(&pair);
	if (netns_exists(pair.a) || netns_exists(pair.b))
		fprintf(stderr, "bench_net: the namespaces %s, %s could not be removed\n", pair.a,
			pair.b);
	if (!ok) {
		fprintf(stderr, "bench_net: the transfers failed\n");
		return -1;
	}
	printf("## Two network namespaces over a veth pair, UCX_TLS=tcp (GB/s, GB = 1e9 bytes)%s\n\n",
	       offset0 ? ", ours at Block offset 0 each time" : "");
	printf("| op | size | unimem, start + wait (best of %d) | ucx_perftest, default or -O 16, "
	       "UCX's segments or unimem's (best of %d) | ratio of the bests | median of %d paired "
	       "ratios | ucx_perftest with UCX's segments only (best of %d) | ucx_perftest's best "
	       "came with |\n",
	       VARIANTS * rounds, VARIANTS * rounds, VARIANTS * rounds, 2 * rounds);
	printf("|----|------|------:|------:|------:|------:|------:|----|\n");
	static const char *const how[VARIANTS] = { "UCX's segments", "UCX's segments, -O 16",
						   "unimem's segments", "unimem's segments, -O 16" };
	for (int w = 0; w < 2; w++)
		for (size_t k = 0; k < NSIZES; k++)
			if (use[w][k])
				printf("| %s | %zu KiB | %.3f | %.3f | %.2fx | %.2fx | %.3f | %s |\n",
				       w ? "write / ucp_put_bw" : "read / ucp_get", sizes[k] >> 10,
				       ours[w][k], theirs[w][k],
				       theirs[w][k] > 0 ? ours[w][k] / theirs[w][k] : 0.0,
				       paired_median(w, k), theirs_default[w][k],
				       how[theirs_how[w][k]]);
	printf("\n(A paired ratio: one measurement of ours over the ucx_perftest run right after it, "
	       "under the same load. unimem's UCX context sends over tcp in " SEG_TX " segments "
	       "into " SEG_RX " receive buffers, where UCX's defaults are 8K and 64K; "
	       SEGMENTS " gives ucx_perftest the same. ucx_perftest moves one buffer again and "
	       "again, hot in the exporter's caches; ours %s.)\n",
	       offset0 ? "did the same (--offset0)"
		       : "go round a 64 MiB Block, as reads of different allocations do: "
			 "--offset0 compares like for like");
	fflush(stdout);
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
	const char *how = getenv("UNIMEM_NET_EXPORTER");
	printf("| unimem_net_export, first (%s) | 1 | %zu | %.1f ms |\n",
	       how && !strcmp(how, "inprocess") ? "in-process: loads UCX, ucp_init, worker, thread"
						 : "loads UCX, starts the export helper, which loads UCX too",
	       n,
	       first * 1e3);
	printf("| unimem_net_export, again (best of 5) | 1 | %zu | %.2f ms |\n", n, best * 1e3);
	printf("| ucp_mem_map + ucp_rkey_pack per allocation | 100000 | %zu | %.1f ms |\n", keys, per * 1e3);
	printf("| ratio (per allocation / unimem, again) | | | %.0fx |\n", best > 0 ? per / best : 0);
	fflush(stdout);
	_exit(0);
}

/* Part 3: an fd-passed Block read with memcpy in the receiving process (GB/s). */
static double fdpass[NSIZES];

static int fd_passing(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	fflush(NULL);
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[1]);
		unimem_block *b;
		if (unimem_block_open(&b, 64 * MIB, 0))
			_exit(1);
		memset(unimem_block_ptr(b), 3, 64 * MIB);
		if (unimem_block_send(sv[0], b) != 0)
			_exit(1);
		char x;
		if (read(sv[0], &x, 1) < 0) /* until the reader is done (or gone) */
			_exit(1);
		_exit(0);
	}
	close(sv[0]);
	kid_add(c);
	unimem_block *b = NULL;
	unsigned char *dst = malloc(64 * MIB);
	int e = unimem_block_recv(&b, sv[1]); /* bounded: 2 s once a message has begun */
	if (e == 0 && dst) {
		memset(dst, 0, 64 * MIB);
		for (size_t k = 0; k < NSIZES; k++) {
			int it = iters_for(sizes[k]);
			const unsigned char *src = unimem_block_ptr(b);
			double t0 = now_s();
			for (int i = 0; i < it; i++)
				memcpy(dst, src + ((size_t)i * sizes[k]) % (64 * MIB), sizes[k]);
			fdpass[k] = (double)sizes[k] * it / (now_s() - t0) / 1e9;
		}
		unimem_block_close(b);
	}
	close(sv[1]); /* the sender's read ends */
	reap(c, 10000);
	free(dst);
	if (e) {
		fprintf(stderr, "bench_net: unimem_block_recv: %s\n", unimem_strerror(e));
		return -1;
	}
	printf("\n## Same host, other process: a Block passed as an fd (unimem_block_send/recv), "
	       "read with memcpy (GB/s)\n\n");
	printf("| size | fd passing + memcpy | unimem over veth (read, above) | note |\n|---|---:|---:|---|\n");
	for (size_t k = 0; k < NSIZES; k++) {
		char o[32] = "not measured";
		if (ours[0][k] > 0)
			snprintf(o, sizeof o, "%.3f", ours[0][k]);
		printf("| %zu KiB | %.2f | %s | the pages are mapped here: no copy is needed at all |\n",
		       sizes[k] >> 10, fdpass[k], o);
	}
	fflush(stdout);
	return 0;
}

/* --sizes: a comma-separated list of sizes of `sizes` in KiB, into at[]; false when one is
 * not among them. */
static bool parse_sizes(const char *list, bool *at)
{
	for (size_t k = 0; k < NSIZES; k++)
		at[k] = false;
	for (const char *p = list; *p;) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		size_t k = 0;
		while (k < NSIZES && sizes[k] >> 10 != v)
			k++;
		if (end == p || k == NSIZES || (*end != ',' && *end != 0))
			return false;
		at[k] = true;
		p = *end ? end + 1 : end;
	}
	return true;
}

int main(int argc, char **argv)
{
	size_t gib = 4;
	int only_reg = 0;
	bool ops[2] = { true, true }, at[NSIZES];
	for (size_t k = 0; k < NSIZES; k++)
		at[k] = true;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--gib") == 0 && i + 1 < argc)
			gib = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0 &&
			 atoi(argv[i + 1]) <= MAX_ROUNDS)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--no-transfers") == 0)
			only_reg = 1;
		else if (strcmp(argv[i], "--offset0") == 0)
			offset0 = true;
		else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc &&
			 (strcmp(argv[i + 1], "read") == 0 || strcmp(argv[i + 1], "write") == 0)) {
			ops[0] = strcmp(argv[++i], "read") == 0;
			ops[1] = !ops[0];
		} else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc && parse_sizes(argv[++i], at))
			;
		else {
			fprintf(stderr, "usage: bench_net [--gib N] [--rounds N] [--ops read|write] "
				"[--sizes KIB,...] [--offset0] [--no-transfers]\n(sizes: 64, 1024, 16384, 65536)\n");
			return 2;
		}
	}
	for (int w = 0; w < 2; w++)
		for (size_t k = 0; k < NSIZES; k++)
			use[w][k] = ops[w] && at[k];
	if (!only_reg && (!netns_can_make() ||
			  sh("command -v ucx_perftest >/dev/null && command -v timeout >/dev/null"))) {
		fprintf(stderr, "bench_net: skipped: needs root, ip(8), timeout(1) and ucx_perftest\n");
		return 77;
	}
	setenv("UCX_TLS", "tcp", 1);
	setenv("UCX_LOG_LEVEL", "fatal", 1);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	alarm(WHOLE_S(rounds));
	int bad = 0;
	if (!only_reg && transfers() != 0)
		bad = 1;
	fflush(NULL);
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		registration(gib);
	}
	kid_add(c);
	int st = reap(c, 300000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench_net: the registration part failed (%d)\n", st);
		bad = 1;
	}
	if (fd_passing() != 0)
		bad = 1;
	return bad;
}
