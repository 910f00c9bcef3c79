/* SPDX-License-Identifier: MIT */
/* GPU benchmark, one run on one card: zero-copy kernel bandwidth on a mapped Block beside
 * pinned and pageable cuMemcpy; open+map and unmap+close beside cuMemHostAlloc and
 * cuMemFreeHost. Exits 77 (skipped) where there is no GPU.
 * Usage: bench_gpu [--quick]
 *   --quick: fewer repetitions, no 1 GiB. (The experiments that chose the open+map path,
 *   once --experiments, are in docs/BENCHMARKS.md, and in bench/bench_gpu.c at 22a2180.) */
#include <unimem/unimem.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_driver.h"
#include "harness.h"

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
	return umb_median(t, reps);
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
	return n / umb_median(t, reps) / 1e6;
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


/* Read-kernel variants, each its own module (an older card may refuse a qualifier):
 * the load instruction and whether four independent loads are in flight per thread. */
static const char rd1_ptx[] =
	"%s\n.address_size 64\n"
	".visible .entry %s(.param .u64 p_p, .param .u64 n_p, .param .u64 out_p)\n{\n"
	"  .reg .pred %%p;\n  .reg .b32 %%r<12>;\n  .reg .b64 %%rd<12>;\n"
	"  ld.param.u64 %%rd1, [p_p];\n  ld.param.u64 %%rd2, [n_p];\n  ld.param.u64 %%rd3, [out_p];\n"
	"  cvta.to.global.u64 %%rd1, %%rd1;\n  cvta.to.global.u64 %%rd3, %%rd3;\n"
	"  mov.u32 %%r1, %%ctaid.x;\n  mov.u32 %%r2, %%ntid.x;\n  mov.u32 %%r3, %%tid.x;\n"
	"  mov.u32 %%r4, %%nctaid.x;\n  mul.wide.u32 %%rd4, %%r1, %%r2;\n  cvt.u64.u32 %%rd5, %%r3;\n"
	"  add.u64 %%rd4, %%rd4, %%rd5;\n  mul.wide.u32 %%rd6, %%r4, %%r2;\n  mov.u32 %%r5, 0;\n"
	"L1:\n  setp.ge.u64 %%p, %%rd4, %%rd2;\n  @%%p bra L2;\n"
	"  shl.b64 %%rd7, %%rd4, 4;\n  add.u64 %%rd8, %%rd1, %%rd7;\n"
	"  %s {%%r6, %%r7, %%r8, %%r9}, [%%rd8];\n"
	"  xor.b32 %%r5, %%r5, %%r6;\n  xor.b32 %%r5, %%r5, %%r7;\n  xor.b32 %%r5, %%r5, %%r8;\n"
	"  xor.b32 %%r5, %%r5, %%r9;\n  add.u64 %%rd4, %%rd4, %%rd6;\n  bra L1;\n"
	"L2:\n  setp.ne.u32 %%p, %%r5, 1592654592;\n  @%%p bra L3;\n  st.global.u32 [%%rd3], %%r5;\n"
	"L3:\n  ret;\n}\n";

static const char rd4_ptx[] =
	"%s\n.address_size 64\n"
	".visible .entry %s(.param .u64 p_p, .param .u64 n_p, .param .u64 out_p)\n{\n"
	"  .reg .pred %%p;\n  .reg .b32 %%r<24>;\n  .reg .b64 %%rd<16>;\n"
	"  ld.param.u64 %%rd1, [p_p];\n  ld.param.u64 %%rd2, [n_p];\n  ld.param.u64 %%rd3, [out_p];\n"
	"  cvta.to.global.u64 %%rd1, %%rd1;\n  cvta.to.global.u64 %%rd3, %%rd3;\n"
	"  mov.u32 %%r1, %%ctaid.x;\n  mov.u32 %%r2, %%ntid.x;\n  mov.u32 %%r3, %%tid.x;\n"
	"  mov.u32 %%r4, %%nctaid.x;\n  mul.wide.u32 %%rd4, %%r1, %%r2;\n  cvt.u64.u32 %%rd5, %%r3;\n"
	"  add.u64 %%rd4, %%rd4, %%rd5;\n  mul.wide.u32 %%rd6, %%r4, %%r2;\n  mov.u32 %%r5, 0;\n"
	"  shl.b64 %%rd9, %%rd6, 2;\n  shl.b64 %%rd10, %%rd6, 4;\n"
	"L1:\n  add.u64 %%rd11, %%rd4, %%rd6;\n  add.u64 %%rd11, %%rd11, %%rd6;\n"
	"  add.u64 %%rd11, %%rd11, %%rd6;\n  setp.ge.u64 %%p, %%rd11, %%rd2;\n  @%%p bra T1;\n"
	"  shl.b64 %%rd7, %%rd4, 4;\n  add.u64 %%rd8, %%rd1, %%rd7;\n"
	"  add.u64 %%rd12, %%rd8, %%rd10;\n  add.u64 %%rd13, %%rd12, %%rd10;\n  add.u64 %%rd14, %%rd13, %%rd10;\n"
	"  %s {%%r6, %%r7, %%r8, %%r9}, [%%rd8];\n"
	"  %s {%%r10, %%r11, %%r12, %%r13}, [%%rd12];\n"
	"  %s {%%r14, %%r15, %%r16, %%r17}, [%%rd13];\n"
	"  %s {%%r18, %%r19, %%r20, %%r21}, [%%rd14];\n"
	"  xor.b32 %%r6, %%r6, %%r10;\n  xor.b32 %%r7, %%r7, %%r11;\n  xor.b32 %%r8, %%r8, %%r12;\n"
	"  xor.b32 %%r9, %%r9, %%r13;\n  xor.b32 %%r6, %%r6, %%r14;\n  xor.b32 %%r7, %%r7, %%r15;\n"
	"  xor.b32 %%r8, %%r8, %%r16;\n  xor.b32 %%r9, %%r9, %%r17;\n  xor.b32 %%r6, %%r6, %%r18;\n"
	"  xor.b32 %%r7, %%r7, %%r19;\n  xor.b32 %%r8, %%r8, %%r20;\n  xor.b32 %%r9, %%r9, %%r21;\n"
	"  xor.b32 %%r5, %%r5, %%r6;\n  xor.b32 %%r5, %%r5, %%r7;\n  xor.b32 %%r5, %%r5, %%r8;\n"
	"  xor.b32 %%r5, %%r5, %%r9;\n  add.u64 %%rd4, %%rd4, %%rd9;\n  bra L1;\n"
	"T1:\n  setp.ge.u64 %%p, %%rd4, %%rd2;\n  @%%p bra L2;\n"
	"  shl.b64 %%rd7, %%rd4, 4;\n  add.u64 %%rd8, %%rd1, %%rd7;\n"
	"  %s {%%r6, %%r7, %%r8, %%r9}, [%%rd8];\n"
	"  xor.b32 %%r5, %%r5, %%r6;\n  xor.b32 %%r5, %%r5, %%r7;\n  xor.b32 %%r5, %%r5, %%r8;\n"
	"  xor.b32 %%r5, %%r5, %%r9;\n  add.u64 %%rd4, %%rd4, %%rd6;\n  bra T1;\n"
	"L2:\n  setp.ne.u32 %%p, %%r5, 1592654592;\n  @%%p bra L3;\n  st.global.u32 [%%rd3], %%r5;\n"
	"L3:\n  ret;\n}\n";

struct variant {
	const char *name, *ld;
	bool four;
	CUfunction f;
};

static struct variant variants[] = {
	{ "ld.global.v4", "ld.global.v4.u32", false, NULL },
	{ "ld.global.nc.v4", "ld.global.nc.v4.u32", false, NULL },
	{ "ld.global.L2::256B.v4", "ld.global.L2::256B.v4.u32", false, NULL },
	{ "ld.global.nc.L2::256B.v4", "ld.global.nc.L2::256B.v4.u32", false, NULL },
	{ "ld.global.v4 x4 in flight", "ld.global.v4.u32", true, NULL },
	{ "ld.global.nc.L2::256B.v4 x4 in flight", "ld.global.nc.L2::256B.v4.u32", true, NULL },
};
#define NVARIANTS (int)(sizeof variants / sizeof variants[0])

static void load_variants(CUdevice dev)
{
	int major = 0, minor = 0;
	cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
	cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
	char head[64], ptx[8192];
	snprintf(head, sizeof head, ".version 7.8\n.target sm_%d%d", major, minor);
	for (int i = 0; i < NVARIANTS; i++) {
		struct variant *v = &variants[i];
		if (v->four)
			snprintf(ptx, sizeof ptx, rd4_ptx, head, "k", v->ld, v->ld, v->ld, v->ld, v->ld);
		else
			snprintf(ptx, sizeof ptx, rd1_ptx, head, "k", v->ld);
		CUmodule m;
		if (cu.cuModuleLoadData(&m, ptx) == CUDA_SUCCESS)
			cu.cuModuleGetFunction(&v->f, m, "k");
	}
}

/* Best GB/s of a read-kernel variant over a few grid sizes. */
static double variant_gbs(CUfunction f, void *p, size_t n, int reps, unsigned *grid)
{
	CUfunction keep = k_rd;
	k_rd = f;
	double v = kernel_gbs(false, p, n, reps, grid);
	k_rd = keep;
	return v;
}

struct row {
	char what[96];
	double gbs;
	unsigned grid;
	int dir; /* 0 read / HtoD, 1 write / DtoH */
};

/* ShmemHugePages of /proc/meminfo, kB. */
static long shmem_huge_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "ShmemHugePages: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

enum path { HOSTALLOC, UNPINNED, PINNED, UNPINNED_HUGE, NPATHS };
static const char *path_names[NPATHS] = { "cuMemHostAlloc / cuMemFreeHost",
					  "open UNPINNED + map / unmap + close",
					  "open (pinned) + map / unmap + close",
					  "open UNPINNED+HUGE + map / unmap + close" };
static const unsigned path_flags[NPATHS] = { 0, UNIMEM_BLOCK_UNPINNED, 0,
					     UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE };

int main(int argc, char **argv)
{
	bool quick = false;
	for (int i = 1; i < argc; i++) {
		quick |= !strcmp(argv[i], "--quick");
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
	load_variants(dev);

	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
	printf("# unimem %s GPU benchmark: %s (sm_%d%d, %d SMs), CUDA driver %d.%d, %s\n",
	       unimem_version(), name, major, minor, sms, drv / 1000, drv % 1000 / 10, date);

	/* --- bandwidth --- */
	const size_t bw = (size_t)256 << 20;
	const int reps = quick ? 5 : BW_REPS;
	struct row rows[32];
	int nr = 0;
	unimem_block *b, *bu, *bh;
	void *d, *du, *dh, *ha, *pg;
	CUdeviceptr dbuf;
	UK(unimem_block_open(&b, bw, 0));
	UK(unimem_gpu_map(b, &d));
	UK(unimem_block_open(&bu, bw, UNIMEM_BLOCK_UNPINNED));
	UK(unimem_gpu_map(bu, &du));
	long huge0 = shmem_huge_kb();
	UK(unimem_block_open(&bh, bw, UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE));
	UK(unimem_gpu_map(bh, &dh));
	long huge_kb = shmem_huge_kb() - huge0;
	CK(cu.cuMemHostAlloc(&ha, bw, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP));
	CK(cu.cuMemAlloc(&dbuf, bw));
	pg = malloc(bw);
	fill(unimem_block_ptr(b), bw);
	fill(unimem_block_ptr(bu), bw);
	fill(unimem_block_ptr(bh), bw);
	fill(ha, bw);
	fill(pg, bw);

#define ROW(dir_, gbs_, grid_, ...)                                                        \
	do {                                                                               \
		snprintf(rows[nr].what, sizeof rows[nr].what, __VA_ARGS__);                \
		rows[nr].gbs = (gbs_);                                                     \
		rows[nr].grid = (grid_);                                                   \
		rows[nr++].dir = (dir_);                                                   \
	} while (0)
	unsigned g;
	double v, best_read = 0, plain_read = 0;
	const char *best_name = "";
	v = copy_gbs(true, dbuf, ha, bw, reps);
	double pinned_htod = v;
	ROW(0, v, 0, "cuMemcpyHtoD from pinned (cuMemHostAlloc)");
	v = copy_gbs(true, dbuf, unimem_block_ptr(b), bw, reps);
	ROW(0, v, 0, "cuMemcpyHtoD from a mapped Block");
	v = copy_gbs(true, dbuf, pg, bw, reps);
	ROW(0, v, 0, "cuMemcpyHtoD from pageable (malloc)");
	for (int i = 0; i < NVARIANTS; i++) {
		if (!variants[i].f) {
			ROW(0, 0, 0, "zero-copy read, mapped Block, %s: did not load", variants[i].name);
			continue;
		}
		v = variant_gbs(variants[i].f, d, bw, reps, &g);
		ROW(0, v, g, "zero-copy read, mapped Block, %s", variants[i].name);
		if (i == 0)
			plain_read = v;
		if (v > best_read) {
			best_read = v;
			best_name = variants[i].name;
		}
	}
	/* The copy again, after the kernels: the reference is the better of the two. */
	v = copy_gbs(true, dbuf, ha, bw, reps);
	ROW(0, v, 0, "cuMemcpyHtoD from pinned (cuMemHostAlloc), again");
	if (v > pinned_htod)
		pinned_htod = v;
	v = kernel_gbs(false, du, bw, reps, &g);
	ROW(0, v, g, "zero-copy read, mapped UNPINNED Block, ld.global.v4");
	v = kernel_gbs(false, dh, bw, reps, &g);
	ROW(0, v, g, "zero-copy read, mapped UNPINNED+HUGE Block (%ld MiB in THP), ld.global.v4",
	    huge_kb / 1024);
	v = kernel_gbs(false, ha, bw, reps, &g);
	ROW(0, v, g, "zero-copy read, cuMemHostAlloc, ld.global.v4");
	v = copy_gbs(false, dbuf, ha, bw, reps);
	double pinned_dtoh = v;
	ROW(1, v, 0, "cuMemcpyDtoH to pinned (cuMemHostAlloc)");
	v = copy_gbs(false, dbuf, unimem_block_ptr(b), bw, reps);
	ROW(1, v, 0, "cuMemcpyDtoH to a mapped Block");
	v = copy_gbs(false, dbuf, pg, bw, reps);
	ROW(1, v, 0, "cuMemcpyDtoH to pageable (malloc)");
	v = kernel_gbs(true, d, bw, reps, &g);
	check_written(unimem_block_ptr(b), bw);
	ROW(1, v, g, "zero-copy write, mapped Block, st.global.v4");
	double zc_write = v;
	v = kernel_gbs(true, ha, bw, reps, &g);
	check_written(ha, bw);
	ROW(1, v, g, "zero-copy write, cuMemHostAlloc, st.global.v4");

	UK(unimem_gpu_unmap(b));
	unimem_block_close(b);
	UK(unimem_gpu_unmap(bu));
	unimem_block_close(bu);
	UK(unimem_gpu_unmap(bh));
	unimem_block_close(bh);
	CK(cu.cuMemFreeHost(ha));
	CK(cu.cuMemFree(dbuf));
	free(pg);

	/* --- allocation: every path gets fresh pages from the kernel every time; the paths
	 * take turns within each round --- */
	static const size_t sizes[] = { (size_t)16 << 20, (size_t)256 << 20, (size_t)1 << 30 };
	static const int size_reps[] = { 21, 9, 7 };
	const int nsizes = quick ? 2 : 3;
	enum { OPEN, MAP, UNMAP, CLOSE, NT };
	double res[3][NPATHS][NT];
	for (int s = 0; s < nsizes; s++) {
		int r = quick ? 3 : size_reps[s];
		double t[NPATHS][NT][21];
		for (int i = -1; i < r; i++) { /* one warm-up round */
			for (int pth = 0; pth < NPATHS; pth++) {
				double t0, t1, t2, t3, t4;
				if (pth == HOSTALLOC) {
					void *p;
					t0 = umb_now_ms();
					CK(cu.cuMemHostAlloc(&p, sizes[s], CU_MEMHOSTALLOC_PORTABLE |
										  CU_MEMHOSTALLOC_DEVICEMAP));
					t1 = t2 = t3 = umb_now_ms();
					CK(cu.cuMemFreeHost(p));
					t4 = umb_now_ms();
				} else {
					t0 = umb_now_ms();
					UK(unimem_block_open(&b, sizes[s], path_flags[pth]));
					t1 = umb_now_ms();
					UK(unimem_gpu_map(b, &d));
					t2 = umb_now_ms();
					UK(unimem_gpu_unmap(b));
					t3 = umb_now_ms();
					unimem_block_close(b);
					t4 = umb_now_ms();
				}
				if (i >= 0) {
					t[pth][OPEN][i] = t1 - t0;
					t[pth][MAP][i] = t2 - t1;
					t[pth][UNMAP][i] = t3 - t2;
					t[pth][CLOSE][i] = t4 - t3;
				}
			}
		}
		for (int pth = 0; pth < NPATHS; pth++)
			for (int k = 0; k < NT; k++)
				res[s][pth][k] = umb_median(t[pth][k], r);
	}

	/* --- the tables, last --- */
	printf("\n## bandwidth, %zu MiB, median of %d; kernels: best of %d grid sizes x 256 threads\n\n",
	       bw >> 20, reps, GRIDS);
	printf("| path | GB/s | vs pinned cuMemcpy, same direction | grid |\n|---|---:|---:|---:|\n");
	for (int i = 0; i < nr; i++) {
		double ref = rows[i].dir ? pinned_dtoh : pinned_htod;
		char grid[16] = "";
		if (rows[i].grid)
			snprintf(grid, sizeof grid, "%u", rows[i].grid);
		printf("| %s | %.1f | %.2fx | %s |\n", rows[i].what, rows[i].gbs, rows[i].gbs / ref, grid);
	}
	printf("\n## allocation, ms, median; fresh pages every time\n\n");
	printf("| size | path | open | map | open + map | vs cuMemHostAlloc | unmap | close "
	       "| unmap + close | vs cuMemFreeHost |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int s = 0; s < nsizes; s++) {
		double ha_ms = res[s][HOSTALLOC][OPEN], fh_ms = res[s][HOSTALLOC][CLOSE];
		for (int pth = 0; pth < NPATHS; pth++) {
			double *x = res[s][pth];
			double om = x[OPEN] + x[MAP], uc = x[UNMAP] + x[CLOSE];
			printf("| %zu MiB | %s | %.2f | %.1f | %.1f | %.2fx | %.1f | %.1f | %.1f | %.2fx |\n",
			       sizes[s] >> 20, path_names[pth], x[OPEN], x[MAP], om, om / ha_ms,
			       x[UNMAP], x[CLOSE], uc, uc / fh_ms);
		}
	}
	int big = nsizes - 1;
	double *x = res[big][UNPINNED], *h = res[big][HOSTALLOC];
	double zc = best_read / pinned_htod, zw = zc_write / pinned_dtoh;
	printf("\n(the reference cuMemcpyHtoD is the better of its two measurements: %.1f GB/s)\n",
	       pinned_htod);
	double om = (x[OPEN] + x[MAP]) / h[OPEN], uc = (x[UNMAP] + x[CLOSE]) / h[CLOSE];
	printf("\n## targets\n\n");
	printf("| target | measured | met |\n|---|---:|---|\n");
	printf("| zero-copy read >= 0.95x pinned cuMemcpyHtoD (best kernel: %s) | %.2fx | %s |\n",
	       best_name, zc, zc >= 0.95 ? "yes" : "NO");
	printf("| the same with the plain kernel (ld.global.v4) | %.2fx | %s |\n",
	       plain_read / pinned_htod, plain_read / pinned_htod >= 0.95 ? "yes" : "NO");
	printf("| (zero-copy write vs pinned cuMemcpyDtoH, no target) | %.2fx | |\n", zw);
	printf("| open+map of %zu MiB <= 0.8x cuMemHostAlloc (UNPINNED path) | %.2fx | %s |\n",
	       sizes[big] >> 20, om, om <= 0.8 ? "yes" : "NO");
	printf("| unmap+close of %zu MiB <= cuMemFreeHost (UNPINNED path) | %.2fx | %s |\n",
	       sizes[big] >> 20, uc, uc <= 1.0 ? "yes" : "NO");
	return 0;
}
