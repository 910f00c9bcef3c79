/* SPDX-License-Identifier: MIT */
/* GPU benchmark, one run on one card: zero-copy kernel bandwidth on a mapped Block beside
 * pinned and pageable cuMemcpy; open+map and unmap+close beside cuMemHostAlloc and
 * cuMemFreeHost. Exits 77 (skipped) where there is no GPU.
 * Usage: bench_gpu [--quick] [--experiments]
 *   --quick: fewer repetitions, no 1 GiB; --experiments: also time the parts of open+map
 *   and unmap+close and their alternatives (1 GiB), to choose the fastest path. */
#include <unimem/unimem.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cuda_driver.h"

static struct cuda_driver cu;

#define CK(call)                                                                           \
	do {                                                                               \
		CUresult r_ = (call);                                                      \
		if (r_ != CUDA_SUCCESS) {                                                  \
			fprintf(stderr, "bench_gpu:%d: %s: %s\n", __LINE__, #call,        \
				cuda_error_name(&cu, r_));                                 \
			exit(1);                                                           \
		}                                                                          \
	} while (0)
#define UK(call)                                                                           \
	do {                                                                               \
		int e_ = (call);                                                           \
		if (e_) {                                                                  \
			fprintf(stderr, "bench_gpu:%d: %s: %s\n", __LINE__, #call,        \
				unimem_strerror(e_));                                      \
			exit(1);                                                           \
		}                                                                          \
	} while (0)

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static CUfunction k_rd, k_wr;
static CUevent e0, e1;
static int sms;
static CUdeviceptr sink;

#define BW_REPS 20
#define GRIDS 5

/* Median ms of one kernel pass over n bytes at p (read or write), for `blocks` blocks. */
static double kernel_ms(bool write, void *p, size_t n, unsigned blocks, int reps)
{
	CUdeviceptr dp = (CUdeviceptr)(uintptr_t)p;
	unsigned long long n16 = n / 16;
	unsigned v = 0x3f800000u;
	void *rargs[] = { &dp, &n16, &sink };
	void *wargs[] = { &dp, &n16, &v };
	double t[BW_REPS];
	for (int i = -2; i < reps; i++) { /* two warm-up passes */
		CK(cu.cuEventRecord(e0, NULL));
		CK(cu.cuLaunchKernel(write ? k_wr : k_rd, blocks, 1, 1, 256, 1, 1, 0, NULL,
				     write ? wargs : rargs, NULL));
		CK(cu.cuEventRecord(e1, NULL));
		CK(cu.cuEventSynchronize(e1));
		float ms;
		CK(cu.cuEventElapsedTime(&ms, e0, e1));
		if (i >= 0)
			t[i] = ms;
	}
	return median(t, reps);
}

/* Best GB/s over a few grid sizes; *grid says which. */
static double kernel_gbs(bool write, void *p, size_t n, int reps, unsigned *grid)
{
	static const unsigned per_sm[GRIDS] = { 2, 4, 8, 16, 32 };
	double best = 0;
	for (int g = 0; g < GRIDS; g++) {
		double gbs = n / kernel_ms(write, p, n, (unsigned)sms * per_sm[g], reps) / 1e6;
		if (gbs > best) {
			best = gbs;
			*grid = (unsigned)sms * per_sm[g];
		}
	}
	return best;
}

static double copy_gbs(bool htod, CUdeviceptr d, void *h, size_t n, int reps)
{
	double t[BW_REPS];
	for (int i = -2; i < reps; i++) {
		CK(cu.cuEventRecord(e0, NULL));
		if (htod)
			CK(cu.cuMemcpyHtoD(d, h, n));
		else
			CK(cu.cuMemcpyDtoH(h, d, n));
		CK(cu.cuEventRecord(e1, NULL));
		CK(cu.cuEventSynchronize(e1));
		float ms;
		CK(cu.cuEventElapsedTime(&ms, e0, e1));
		if (i >= 0)
			t[i] = ms;
	}
	return n / median(t, reps) / 1e6;
}

static void fill(void *p, size_t n)
{
	unsigned long long x = 0x9e3779b97f4a7c15ull, *q = p;
	for (size_t i = 0; i < n / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		q[i] = x;
	}
}

static void check_written(const void *p, size_t n)
{
	const unsigned *q = p;
	for (size_t i = 0; i < n / 4; i += 4099)
		if (q[i] != 0x3f800000u) {
			fprintf(stderr, "bench_gpu: zero-copy write missing at word %zu\n", i);
			exit(1);
		}
}


/* --- experiments: the parts of open+map and unmap+close, and alternatives --- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static CUcontext exp_ctx;

struct part {
	unsigned char *p;
	size_t len;
	int fd;
	size_t off;
	int what; /* 0 populate, 1 register, 2 unregister, 3 punch */
	int rc;
};

static void *do_part(void *arg)
{
	struct part *w = arg;
	CUcontext c;
	switch (w->what) {
	case 0:
		w->rc = madvise(w->p, w->len, MADV_POPULATE_WRITE);
		break;
	case 1:
		cu.cuCtxPushCurrent(exp_ctx);
		w->rc = cu.cuMemHostRegister(w->p, w->len,
					     CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP);
		cu.cuCtxPopCurrent(&c);
		break;
	case 2:
		cu.cuCtxPushCurrent(exp_ctx);
		w->rc = cu.cuMemHostUnregister(w->p);
		cu.cuCtxPopCurrent(&c);
		break;
	case 3:
		w->rc = fallocate(w->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)w->off,
				  (off_t)w->len);
		break;
	}
	return NULL;
}

/* Run `what` over [p, p + n) split into t equal parts, one thread each; ms. */
static double split(int what, unsigned char *p, int fd, size_t n, int t)
{
	struct part w[32];
	pthread_t tid[32];
	size_t per = n / (size_t)t;
	double a = now_ms();
	for (int i = 0; i < t; i++) {
		w[i] = (struct part){ p + i * per, per, fd, i * per, what, 0 };
		if (t == 1)
			do_part(&w[i]);
		else
			pthread_create(&tid[i], NULL, do_part, &w[i]);
	}
	if (t > 1)
		for (int i = 0; i < t; i++)
			pthread_join(tid[i], NULL);
	double z = now_ms();
	for (int i = 0; i < t; i++)
		if (w[i].rc) {
			fprintf(stderr, "bench_gpu: experiment %d part %d: %d\n", what, i, w[i].rc);
			exit(1);
		}
	return z - a;
}

static void experiments(size_t n, int reps)
{
	static const int threads[] = { 1, 4, 8, 16 };
	enum { NTH = 4 };
	double pop[NTH][9], reg[NTH][9], unreg[NTH][9], direct[9], unreg1[9], munmap_close[9],
		punch[NTH][9], close_after_punch[NTH][9];
	CK(cu.cuCtxGetCurrent(&exp_ctx));
	for (int r = 0; r < reps; r++) {
		unimem_block *b;
		/* The driver faults a never-touched Block itself. */
		UK(unimem_block_open(&b, n, UNIMEM_BLOCK_UNPINNED));
		unsigned char *p = unimem_block_ptr(b);
		direct[r] = split(1, p, -1, n, 1);
		unreg1[r] = split(2, p, -1, n, 1);
		unimem_block_close(b);
		for (int k = 0; k < NTH; k++) {
			UK(unimem_block_open(&b, n, UNIMEM_BLOCK_UNPINNED));
			p = unimem_block_ptr(b);
			pop[k][r] = split(0, p, -1, n, threads[k]);
			reg[k][r] = split(1, p, -1, n, threads[k]);
			unreg[k][r] = split(2, p, -1, n, threads[k]);
			punch[k][r] = split(3, p, unimem_block_fd(b), n, threads[k]);
			double a = now_ms();
			unimem_block_close(b);
			close_after_punch[k][r] = now_ms() - a;
		}
		UK(unimem_block_open(&b, n, UNIMEM_BLOCK_UNPINNED));
		split(0, unimem_block_ptr(b), -1, n, 8);
		double a = now_ms();
		unimem_block_close(b);
		munmap_close[r] = now_ms() - a;
	}
	printf("\n## experiments, %zu MiB, ms (median of %d)\n\n", n >> 20, reps);
	printf("| step | 1 thread | 4 threads | 8 threads | 16 threads |\n|---|---:|---:|---:|---:|\n");
	printf("| cuMemHostRegister of a never-touched Block (driver faults) | %.1f | | | |\n",
	       median(direct, reps));
	printf("| cuMemHostUnregister of it | %.1f | | | |\n", median(unreg1, reps));
	const char *names[] = { "MADV_POPULATE_WRITE", "cuMemHostRegister (populated), parts",
				"cuMemHostUnregister, parts", "fallocate PUNCH_HOLE, parts",
				"munmap + close after punch" };
	double (*cols[])[9] = { pop, reg, unreg, punch, close_after_punch };
	for (int i = 0; i < 5; i++) {
		printf("| %s |", names[i]);
		for (int k = 0; k < NTH; k++)
			printf(" %.1f |", median(cols[i][k], reps));
		printf("\n");
	}
	printf("| munmap + close of a populated Block (no punch) | %.1f | | | |\n",
	       median(munmap_close, reps));
}

struct row {
	const char *what;
	double gbs;
	unsigned grid;
	int dir; /* 0 read / HtoD, 1 write / DtoH */
};

int main(int argc, char **argv)
{
	bool quick = false, exps = false;
	for (int i = 1; i < argc; i++) {
		quick |= !strcmp(argv[i], "--quick");
		exps |= !strcmp(argv[i], "--experiments");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (unimem_gpu_count() < 1) {
		printf("bench_gpu: skipped: %s\n", unimem_strerror(-ENODEV));
		return 77;
	}
	char why[160];
	if (cuda_driver_load(&cu, why, sizeof why)) {
		printf("bench_gpu: skipped: %s\n", why);
		return 77;
	}
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	char name[128] = "?";
	int drv = 0, major = 0, minor = 0;
	CK(cu.cuDeviceGet(&dev, 0));
	cu.cuDeviceGetName(name, sizeof name, dev);
	cu.cuDriverGetVersion(&drv);
	cu.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
	cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
	cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
	CK(cu.cuDevicePrimaryCtxRetain(&ctx, dev));
	CK(cu.cuCtxSetCurrent(ctx));
	CK(cuda_kernels_load(&cu, dev, &mod));
	CK(cu.cuModuleGetFunction(&k_rd, mod, "rd"));
	CK(cu.cuModuleGetFunction(&k_wr, mod, "wr"));
	CK(cu.cuEventCreate(&e0, CU_EVENT_DEFAULT));
	CK(cu.cuEventCreate(&e1, CU_EVENT_DEFAULT));
	CK(cu.cuMemAlloc(&sink, 64));

	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
	printf("# unimem %s GPU benchmark: %s (sm_%d%d, %d SMs), CUDA driver %d.%d, %s\n",
	       unimem_version(), name, major, minor, sms, drv / 1000, drv % 1000 / 10, date);

	/* --- bandwidth --- */
	const size_t bw = (size_t)256 << 20;
	const int reps = quick ? 5 : BW_REPS;
	struct row rows[16];
	int nr = 0;
	unimem_block *b, *bu;
	void *d, *du, *ha, *pg;
	CUdeviceptr dbuf;
	UK(unimem_block_open(&b, bw, 0));
	UK(unimem_gpu_map(b, &d));
	UK(unimem_block_open(&bu, bw, UNIMEM_BLOCK_UNPINNED));
	UK(unimem_gpu_map(bu, &du));
	CK(cu.cuMemHostAlloc(&ha, bw, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP));
	CK(cu.cuMemAlloc(&dbuf, bw));
	pg = malloc(bw);
	fill(unimem_block_ptr(b), bw);
	fill(unimem_block_ptr(bu), bw);
	fill(ha, bw);
	fill(pg, bw);

	unsigned g;
	double v;
	v = kernel_gbs(false, d, bw, reps, &g);
	rows[nr++] = (struct row){ "zero-copy kernel read, mapped Block", v, g, 0 };
	v = kernel_gbs(false, du, bw, reps, &g);
	rows[nr++] = (struct row){ "zero-copy kernel read, mapped UNPINNED Block", v, g, 0 };
	v = kernel_gbs(false, ha, bw, reps, &g);
	rows[nr++] = (struct row){ "zero-copy kernel read, cuMemHostAlloc", v, g, 0 };
	v = copy_gbs(true, dbuf, ha, bw, reps);
	rows[nr++] = (struct row){ "cuMemcpyHtoD from pinned (cuMemHostAlloc)", v, 0, 0 };
	v = copy_gbs(true, dbuf, unimem_block_ptr(b), bw, reps);
	rows[nr++] = (struct row){ "cuMemcpyHtoD from a mapped Block", v, 0, 0 };
	v = copy_gbs(true, dbuf, pg, bw, reps);
	rows[nr++] = (struct row){ "cuMemcpyHtoD from pageable (malloc)", v, 0, 0 };
	v = kernel_gbs(true, d, bw, reps, &g);
	check_written(unimem_block_ptr(b), bw);
	rows[nr++] = (struct row){ "zero-copy kernel write, mapped Block", v, g, 1 };
	v = kernel_gbs(true, ha, bw, reps, &g);
	check_written(ha, bw);
	rows[nr++] = (struct row){ "zero-copy kernel write, cuMemHostAlloc", v, g, 1 };
	v = copy_gbs(false, dbuf, ha, bw, reps);
	rows[nr++] = (struct row){ "cuMemcpyDtoH to pinned (cuMemHostAlloc)", v, 0, 1 };
	v = copy_gbs(false, dbuf, unimem_block_ptr(b), bw, reps);
	rows[nr++] = (struct row){ "cuMemcpyDtoH to a mapped Block", v, 0, 1 };
	v = copy_gbs(false, dbuf, pg, bw, reps);
	rows[nr++] = (struct row){ "cuMemcpyDtoH to pageable (malloc)", v, 0, 1 };
	double pinned_htod = rows[3].gbs, pinned_dtoh = rows[8].gbs;

	UK(unimem_gpu_unmap(b));
	unimem_block_close(b);
	UK(unimem_gpu_unmap(bu));
	unimem_block_close(bu);
	CK(cu.cuMemFreeHost(ha));
	CK(cu.cuMemFree(dbuf));
	free(pg);

	/* --- allocation: each variant gets fresh pages from the kernel every time --- */
	static const size_t sizes[] = { (size_t)16 << 20, (size_t)256 << 20, (size_t)1 << 30 };
	static const int size_reps[] = { 21, 9, 7 };
	const int nsizes = quick ? 2 : 3;
	enum { HA, FH, U_OPEN, U_MAP, U_UNMAP, U_CLOSE, P_OPEN, P_MAP, P_UNMAP, P_CLOSE, NT };
	double res[3][NT];
	for (int s = 0; s < nsizes; s++) {
		int r = quick ? 3 : size_reps[s];
		double t[NT][21];
		for (int i = -1; i < r; i++) { /* one warm-up round */
			double a, z;
			void *p;
			a = now_ms();
			CK(cu.cuMemHostAlloc(&p, sizes[s], CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP));
			z = now_ms();
			if (i >= 0)
				t[HA][i] = z - a;
			a = now_ms();
			CK(cu.cuMemFreeHost(p));
			z = now_ms();
			if (i >= 0)
				t[FH][i] = z - a;

			for (int pinned = 0; pinned < 2; pinned++) {
				int o = pinned ? P_OPEN : U_OPEN;
				double t0 = now_ms();
				UK(unimem_block_open(&b, sizes[s], pinned ? 0 : UNIMEM_BLOCK_UNPINNED));
				double t1 = now_ms();
				UK(unimem_gpu_map(b, &d));
				double t2 = now_ms();
				UK(unimem_gpu_unmap(b));
				double t3 = now_ms();
				unimem_block_close(b);
				double t4 = now_ms();
				if (i >= 0) {
					t[o][i] = t1 - t0;
					t[o + 1][i] = t2 - t1;
					t[o + 2][i] = t3 - t2;
					t[o + 3][i] = t4 - t3;
				}
			}
		}
		for (int k = 0; k < NT; k++)
			res[s][k] = median(t[k], r);
	}

	if (exps)
		experiments(quick ? (size_t)256 << 20 : (size_t)1 << 30, quick ? 3 : 5);

	/* --- the table, last --- */
	printf("\n## bandwidth, %zu MiB, median of %d (kernels: best of %d grid sizes x 256 threads)\n\n",
	       bw >> 20, reps, GRIDS);
	printf("| path | GB/s | vs pinned cuMemcpy, same direction | grid |\n|---|---:|---:|---:|\n");
	for (int i = 0; i < nr; i++) {
		double ref = rows[i].dir ? pinned_dtoh : pinned_htod;
		char grid[16] = "";
		if (rows[i].grid)
			snprintf(grid, sizeof grid, "%u", rows[i].grid);
		printf("| %s | %.1f | %.2fx | %s |\n", rows[i].what, rows[i].gbs, rows[i].gbs / ref, grid);
	}
	printf("\n## allocation, ms (median; fresh pages every time)\n\n");
	printf("| size | cuMemHostAlloc | open UNPINNED + map | ratio | open pinned + map | ratio "
	       "| cuMemFreeHost | unmap + close (UNPINNED) | ratio | unmap + close (pinned) | ratio |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int s = 0; s < nsizes; s++) {
		double *x = res[s];
		double uo = x[U_OPEN] + x[U_MAP], po = x[P_OPEN] + x[P_MAP];
		double uc = x[U_UNMAP] + x[U_CLOSE], pc = x[P_UNMAP] + x[P_CLOSE];
		printf("| %zu MiB | %.1f | %.1f (%.2f + %.1f) | %.2fx | %.1f (%.1f + %.1f) | %.2fx | %.1f "
		       "| %.1f (%.1f + %.1f) | %.2fx | %.1f (%.1f + %.1f) | %.2fx |\n",
		       sizes[s] >> 20, x[HA], uo, x[U_OPEN], x[U_MAP], uo / x[HA], po, x[P_OPEN],
		       x[P_MAP], po / x[HA], x[FH], uc, x[U_UNMAP], x[U_CLOSE], uc / x[FH], pc,
		       x[P_UNMAP], x[P_CLOSE], pc / x[FH]);
	}
	int big = nsizes - 1;
	double *x = res[big];
	double zc = rows[0].gbs / pinned_htod;
	double om = (x[U_OPEN] + x[U_MAP]) / x[HA], uc = (x[U_UNMAP] + x[U_CLOSE]) / x[FH];
	printf("\n## targets\n\n");
	printf("| target | measured | met |\n|---|---:|---|\n");
	printf("| zero-copy read >= 0.95x pinned cuMemcpyHtoD | %.2fx | %s |\n", zc,
	       zc >= 0.95 ? "yes" : "NO");
	printf("| open+map of %zu MiB <= 0.8x cuMemHostAlloc (UNPINNED path) | %.2fx | %s |\n",
	       sizes[big] >> 20, om, om <= 0.8 ? "yes" : "NO");
	printf("| unmap+close of %zu MiB <= cuMemFreeHost (UNPINNED path) | %.2fx | %s |\n",
	       sizes[big] >> 20, uc, uc <= 1.0 ? "yes" : "NO");
	return 0;
}
