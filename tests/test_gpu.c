/* SPDX-License-Identifier: MIT */
/* GPU suite (meson -Dgpu_tests=true): a PTX kernel reads what the CPU wrote into a Block
 * and writes results the CPU checks in place, with no copy anywhere; Layout tapes, Grid
 * cells and a looked-up Block from the GPU; reference counting, chunked registration,
 * contexts. Every test skips, and says so, where there is no GPU. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cuda_driver.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static struct cuda_driver cu;
static CUdevice dev;
static CUcontext primary;
static CUfunction k_affine, k_muladd;

#define CU_OK(call)                                                                        \
	do {                                                                               \
		CUresult r_ = (call);                                                      \
		cr_assert_eq(r_, CUDA_SUCCESS, "%s: %d %s", #call, r_, cuda_error_name(&cu, r_)); \
	} while (0)

/* Skip the test, saying why, unless unimem sees a GPU. */
static void need_gpu(void)
{
	if (unimem_gpu_count() < 1)
		cr_skip_test("%s", unimem_strerror(-ENODEV));
}

/* Load the driver for the test's own use, without touching any context. */
static void load_driver(void)
{
	char why[160];
	cr_assert_eq(cuda_driver_load(&cu, why, sizeof why), 0, "%s", why);
	CU_OK(cu.cuDeviceGet(&dev, 0));
}

static void load_kernels(void)
{
	CUmodule mod;
	CU_OK(cuda_kernels_load(&cu, dev, &mod));
	CU_OK(cu.cuModuleGetFunction(&k_affine, mod, "affine"));
	CU_OK(cu.cuModuleGetFunction(&k_muladd, mod, "muladd"));
}

/* need_gpu(), then the driver, the primary context current on this thread, the kernels. */
static void gpu_setup(void)
{
	need_gpu();
	load_driver();
	CU_OK(cu.cuDevicePrimaryCtxRetain(&primary, dev));
	CU_OK(cu.cuCtxSetCurrent(primary));
	load_kernels();
}

static CUcontext current(void)
{
	CUcontext c = (CUcontext)(uintptr_t)1;
	CU_OK(cu.cuCtxGetCurrent(&c));
	return c;
}

static unsigned grid_for(unsigned n)
{
	unsigned g = (n + 255) / 256;
	return g > 1024 ? 1024 : g ? g : 1;
}

/* y[i] = a * x[i] + b on the GPU, in the current context. */
static void affine(void *x, void *y, unsigned n, float a, float b)
{
	CUdeviceptr dx = (CUdeviceptr)(uintptr_t)x, dy = (CUdeviceptr)(uintptr_t)y;
	void *args[] = { &dx, &dy, &n, &a, &b };
	CU_OK(cu.cuLaunchKernel(k_affine, grid_for(n), 1, 1, 256, 1, 1, 0, NULL, args, NULL));
	CU_OK(cu.cuCtxSynchronize());
}

/* y[i] = x[i] * w[i] + y[i] on the GPU. */
static void muladd(void *x, void *w, void *y, unsigned n)
{
	CUdeviceptr dx = (CUdeviceptr)(uintptr_t)x, dw = (CUdeviceptr)(uintptr_t)w,
		    dy = (CUdeviceptr)(uintptr_t)y;
	void *args[] = { &dx, &dw, &dy, &n };
	CU_OK(cu.cuLaunchKernel(k_muladd, grid_for(n), 1, 1, 256, 1, 1, 0, NULL, args, NULL));
	CU_OK(cu.cuCtxSynchronize());
}

/* Fresh random floats in [-100, 100): never zeros, which hide unwritten results. */
static void fill_random(float *x, size_t n, unsigned *seed)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)rand_r(seed) / (float)RAND_MAX * 200.0f - 100.0f;
}

static void poison(float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = NAN;
}

/* The GPU's fma.rn.f32 and C's fmaf are both correctly rounded: results must match bit
 * for bit. */
static void check_affine(const float *x, const float *y, size_t n, float a, float b)
{
	for (size_t i = 0; i < n; i++) {
		float want = fmaf(x[i], a, b);
		cr_assert(memcmp(&y[i], &want, sizeof want) == 0, "y[%zu] = %a, want %a (x %a)", i,
			  (double)y[i], (double)want, (double)x[i]);
	}
}

static unsigned seed_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid());
}

/* The registration of [p, p + n) is gone: the test can register the range itself. */
static void assert_unregistered(void *p, size_t n)
{
	CUresult r = cu.cuMemHostRegister(p, n, CU_MEMHOSTREGISTER_PORTABLE);
	cr_assert_eq(r, CUDA_SUCCESS, "range still registered? cuMemHostRegister: %s",
		     cuda_error_name(&cu, r));
	CU_OK(cu.cuMemHostUnregister(p));
}

/* Random floats in the first half of Block b (not mapped yet, no CUDA context on this
 * thread), map it (which makes no context current), then y = x * a + c by a kernel into
 * the second half through the device pointer, checked bit for bit. Leaves b mapped and
 * the primary context current; returns the device pointer. */
static void *map_and_run_affine(unimem_block *b, unsigned *seed, float a, float c)
{
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = unimem_block_ptr(b), *y = x + n;
	fill_random(x, n, seed);
	poison(y, n);
	void *d = NULL;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	cr_assert_not_null(d);
	load_driver();
	cr_assert_null(current(), "unimem_gpu_map left a context current");
	CU_OK(cu.cuDevicePrimaryCtxRetain(&primary, dev));
	CU_OK(cu.cuCtxSetCurrent(primary));
	load_kernels();
	affine(d, (char *)d + n * sizeof(float), (unsigned)n, a, c);
	check_affine(x, y, n, a, c);
	return d;
}

Test(gpu, kernel_reads_what_the_cpu_wrote_and_the_cpu_reads_what_it_wrote)
{
	need_gpu();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 8 << 20, 0), 0);
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = unimem_block_ptr(b), *y = x + n;
	unsigned seed = seed_now();
	void *d = map_and_run_affine(b, &seed, 2.5f, -1.0f);

	/* And again on new data, in place: the same pages, no copy. */
	fill_random(x, n, &seed);
	poison(y, n);
	affine(d, (char *)d + n * sizeof(float), (unsigned)n, -0.75f, 3.0f);
	check_affine(x, y, n, -0.75f, 3.0f);

	cr_assert_eq(unimem_gpu_unmap(b), 0);
	unimem_block_close(b);
}

/* A pinned Block of 256 MiB and more registers in pieces from several threads: the kernel
 * sees every byte through one device range, and unmap leaves no piece registered. */
Test(gpu, a_large_pinned_block_registers_in_pieces_and_works_end_to_end)
{
	need_gpu();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, (size_t)288 << 20, UNIMEM_BLOCK_HUGE), 0);
	unsigned seed = seed_now();
	map_and_run_affine(b, &seed, 1.5f, 0.25f);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	assert_unregistered(unimem_block_ptr(b), unimem_block_size(b));
	unimem_block_close(b);
}

/* A private Block (anonymous memory, huge pages where THP gives them), pinned or not: the
 * kernel sees what the CPU wrote through the map, and unmap leaves nothing registered. */
static void private_block_end_to_end(unsigned flags, float a)
{
	need_gpu();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, (size_t)64 << 20,
				       UNIMEM_BLOCK_PRIVATE | UNIMEM_BLOCK_HUGE | flags), 0);
	unsigned seed = seed_now();
	map_and_run_affine(b, &seed, a, 0.5f);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	assert_unregistered(unimem_block_ptr(b), unimem_block_size(b));
	unimem_block_close(b);
}

Test(gpu, a_private_pinned_block_maps_and_works_end_to_end)
{
	private_block_end_to_end(0, 2.0f);
}

Test(gpu, a_private_unpinned_block_maps_and_works_end_to_end)
{
	private_block_end_to_end(UNIMEM_BLOCK_UNPINNED, -3.0f);
}

Test(gpu, device_pointer_is_the_host_pointer_with_unified_addressing)
{
	gpu_setup();
	int uva = 0;
	CU_OK(cu.cuDeviceGetAttribute(&uva, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, dev));
	if (!uva)
		cr_skip_test("the device has no unified addressing");
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	void *d;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	cr_assert_eq(d, unimem_block_ptr(b));
	unimem_block_close(b);
}

Test(gpu, unpinned_never_touched_block_maps_and_works)
{
	gpu_setup();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 16 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_not(unimem_block_pinned(b));
	void *d;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	size_t n = unimem_block_size(b) / sizeof(float) / 4;
	float *x = unimem_block_ptr(b), *y = x + n, *z = x + 2 * n, *zy = x + 3 * n;
	/* z was never written by anyone: the GPU reads the Block's zeros. */
	affine((float *)d + 2 * n, (float *)d + 3 * n, (unsigned)n, 2.0f, -1.0f);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(zy[i], -1.0f, "zy[%zu] = %g", i, (double)zy[i]);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(z[i], 0.0f);
	/* The CPU writes after the map land in the pages the driver pinned. */
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	affine(d, (float *)d + n, (unsigned)n, 1.5f, 0.25f);
	check_affine(x, y, n, 1.5f, 0.25f);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	unimem_block_close(b);
}

Test(gpu, map_is_idempotent_and_reference_counted)
{
	gpu_setup();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	unsigned char *base = unimem_block_ptr(b);
	void *d1, *d2, *p;
	cr_assert_eq(unimem_gpu_ptr(b, base, &p), -ENXIO, "not mapped yet");
	cr_assert_null(p);
	cr_assert_eq(unimem_gpu_unmap(b), 0, "unmap of a Block never mapped");
	cr_assert_eq(unimem_gpu_map(b, &d1), 0);
	cr_assert_eq(unimem_gpu_map(b, &d2), 0);
	cr_assert_eq(d1, d2, "every map gives the same device pointer");
	cr_assert_eq(unimem_gpu_ptr(b, base + 100, &p), 0);
	cr_assert_eq(p, (char *)d1 + 100);
	cr_assert_eq(unimem_gpu_ptr(b, base + unimem_block_size(b), &p), 0, "one past the end");
	cr_assert_eq(p, (char *)d1 + unimem_block_size(b));

	/* One reference left: still mapped, the kernel still reaches it. */
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	cr_assert_eq(unimem_gpu_ptr(b, base, &p), 0);
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = (float *)base, *y = x + n;
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	affine(d1, (float *)d1 + n, (unsigned)n, 3.0f, 1.0f);
	check_affine(x, y, n, 3.0f, 1.0f);

	/* The last unmap drops the registration; more unmaps are harmless. */
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	cr_assert_eq(unimem_gpu_ptr(b, base, &p), -ENXIO);
	cr_assert(strstr(unimem_strerror(-ENXIO), "unimem_gpu_map"), "%s", unimem_strerror(-ENXIO));
	assert_unregistered(base, unimem_block_size(b));
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	cr_assert_eq(unimem_gpu_unmap(b), 0);

	/* Mapped again from scratch, and closed while mapped. */
	cr_assert_eq(unimem_gpu_map(b, &d1), 0);
	poison(y, n);
	affine(d1, (float *)d1 + n, (unsigned)n, 3.0f, 1.0f);
	check_affine(x, y, n, 3.0f, 1.0f);
	unimem_block_close(b);
}

Test(gpu, close_drops_a_registration_still_mapped)
{
	gpu_setup();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 4 << 20, 0), 0);
	void *host = unimem_block_ptr(b), *d;
	size_t size = unimem_block_size(b);
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	unimem_block_close(b);
	/* New memory at the very same address registers: nothing of the old one is left. */
	void *p = mmap(host, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	cr_assert_eq(p, host, "could not map the old address again");
	memset(p, 1, size);
	assert_unregistered(p, size);
	munmap(p, size);
}

Test(gpu, registers_in_chunks_with_one_contiguous_device_range)
{
	/* Before anything loads the driver: unimem reads it once. */
	setenv("UNIMEM_GPU_REGISTER_CHUNK", "1048576", 1);
	gpu_setup();
	unimem_block *b;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	cr_assert_eq(unimem_block_open(&b, (8 << 20) + 3 * page, 0), 0);
	unsigned char *base = unimem_block_ptr(b);
	size_t size = unimem_block_size(b);
	void *d;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	/* Nine registrations: each chunk's own device pointer continues the first. */
	for (size_t off = 0; off < size; off += 1 << 20) {
		CUdeviceptr dp = 0;
		CU_OK(cu.cuMemHostGetDevicePointer(&dp, base + off, 0));
		cr_assert_eq(dp, (CUdeviceptr)(uintptr_t)d + off, "chunk at %zu", off);
		CUresult r = cu.cuMemHostRegister(base + off, page, 0);
		cr_assert_eq(r, CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "chunk at %zu: %s", off,
			     cuda_error_name(&cu, r));
	}
	/* One kernel across every chunk boundary. */
	size_t n = size / sizeof(float) / 2;
	float *x = (float *)base, *y = x + n;
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	affine(d, (float *)d + n, (unsigned)n, -2.0f, 0.5f);
	check_affine(x, y, n, -2.0f, 0.5f);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	assert_unregistered(base, size); /* every chunk dropped */
	unimem_block_close(b);
}

struct thread_map {
	const unimem_block *b;
	void *d;
	int err;
	CUcontext before, after;
};

static void *map_without_context(void *arg)
{
	struct thread_map *t = arg;
	cu.cuCtxGetCurrent(&t->before);
	t->err = unimem_gpu_map(t->b, &t->d);
	cu.cuCtxGetCurrent(&t->after);
	return NULL;
}

Test(gpu, map_from_a_thread_with_no_current_context)
{
	gpu_setup();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 2 << 20, 0), 0);
	struct thread_map t = { .b = b, .before = primary, .after = primary };
	pthread_t tid;
	cr_assert_eq(pthread_create(&tid, NULL, map_without_context, &t), 0);
	pthread_join(tid, NULL);
	cr_assert_eq(t.err, 0, "%s", unimem_strerror(t.err));
	cr_assert_null(t.before);
	cr_assert_null(t.after, "unimem_gpu_map left a context current on the thread");
	cr_assert_eq(current(), primary);
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = unimem_block_ptr(b), *y = x + n;
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	affine(t.d, (float *)t.d + n, (unsigned)n, 0.5f, 2.0f);
	check_affine(x, y, n, 0.5f, 2.0f);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	unimem_block_close(b);
}

Test(gpu, map_under_a_foreign_context_leaves_it_current_and_it_can_use_the_pointer)
{
	gpu_setup();
	CUcontext foreign;
	CU_OK(cu.cuCtxCreate(&foreign, 0, dev)); /* pushed: now current, above primary */
	cr_assert_eq(current(), foreign);
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 2 << 20, 0), 0);
	void *d;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	cr_assert_eq(current(), foreign, "unimem_gpu_map changed the current context");

	/* The registration is portable: a kernel of the foreign context uses it. */
	load_kernels();
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = unimem_block_ptr(b), *y = x + n;
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	affine(d, (float *)d + n, (unsigned)n, 4.0f, -3.0f);
	check_affine(x, y, n, 4.0f, -3.0f);

	cr_assert_eq(unimem_gpu_unmap(b), 0);
	cr_assert_eq(current(), foreign, "unimem_gpu_unmap changed the current context");
	unimem_block_close(b);
	CUcontext popped;
	CU_OK(cu.cuCtxPopCurrent(&popped));
	cr_assert_eq(popped, foreign);
	cr_assert_eq(current(), primary, "the context stack below was changed");
	CU_OK(cu.cuCtxDestroy(foreign));
}

#define THREADS 16
struct race {
	const unimem_block *b;
	pthread_barrier_t *go;
	void *d;
	int map_err, unmap_err;
};

static void *map_unmap_race(void *arg)
{
	struct race *r = arg;
	pthread_barrier_wait(r->go);
	r->map_err = unimem_gpu_map(r->b, &r->d);
	pthread_barrier_wait(r->go);
	r->unmap_err = unimem_gpu_unmap(r->b);
	return NULL;
}

Test(gpu, maps_and_unmaps_from_many_threads_at_once)
{
	gpu_setup();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 8 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	for (int round = 0; round < 3; round++) {
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, THREADS);
		struct race r[THREADS];
		pthread_t tid[THREADS];
		for (int i = 0; i < THREADS; i++) {
			r[i] = (struct race){ .b = b, .go = &go };
			cr_assert_eq(pthread_create(&tid[i], NULL, map_unmap_race, &r[i]), 0);
		}
		for (int i = 0; i < THREADS; i++)
			pthread_join(tid[i], NULL);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < THREADS; i++) {
			cr_assert_eq(r[i].map_err, 0, "round %d thread %d: %s", round, i,
				     unimem_strerror(r[i].map_err));
			cr_assert_eq(r[i].unmap_err, 0, "round %d thread %d", round, i);
			cr_assert_eq(r[i].d, r[0].d, "round %d thread %d: another pointer", round, i);
		}
		void *p;
		cr_assert_eq(unimem_gpu_ptr(b, unimem_block_ptr(b), &p), -ENXIO, "round %d", round);
		assert_unregistered(unimem_block_ptr(b), unimem_block_size(b));
	}
	unimem_block_close(b);
}

Test(gpu, layout_tapes_from_the_gpu_through_the_pointer_helper)
{
	gpu_setup();
	unimem_layout *l;
	cr_assert_eq(unimem_layout_open(&l, 1 << 20, 1 << 20, 1 << 20), 0);
	const unimem_block *b = unimem_layout_block(l);
	unimem_tape *wt = unimem_layout_weights(l), *st = unimem_layout_scratch(l),
		    *ht = unimem_layout_history(l);
	const unsigned n = 100000;
	float *w = unimem_tape_take(wt, n * sizeof(float), 64);
	float *x = unimem_tape_take(st, n * sizeof(float), 64);
	float *y = unimem_tape_take(ht, n * sizeof(float), 64);
	cr_assert(w && x && y);
	unsigned seed = seed_now();
	fill_random(w, n, &seed);
	fill_random(x, n, &seed);
	fill_random(y, n, &seed);
	float *y0 = malloc(n * sizeof(float));
	memcpy(y0, y, n * sizeof(float));

	void *d, *dw, *dx, *dy;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	cr_assert_eq(unimem_gpu_ptr(b, w, &dw), 0);
	cr_assert_eq(unimem_gpu_ptr(b, x, &dx), 0);
	cr_assert_eq(unimem_gpu_ptr(b, y, &dy), 0);
	unsigned char *base = unimem_block_ptr(b);
	cr_assert_eq(dw, (char *)d + ((unsigned char *)w - base));
	cr_assert_eq(dx, (char *)d + ((unsigned char *)x - base));
	cr_assert_eq(dy, (char *)d + ((unsigned char *)y - base));

	/* A "pass": history += scratch * weights. */
	muladd(dx, dw, dy, n);
	for (unsigned i = 0; i < n; i++) {
		float want = fmaf(x[i], w[i], y0[i]);
		cr_assert(memcmp(&y[i], &want, 4) == 0, "pass 1, y[%u] = %a, want %a", i,
			  (double)y[i], (double)want);
	}
	/* The next pass: scratch cleared and taken again (same place), new data. */
	memcpy(y0, y, n * sizeof(float));
	unimem_layout_clear_pass(l);
	float *x2 = unimem_tape_take(st, n * sizeof(float), 64);
	cr_assert_eq(x2, x);
	fill_random(x2, n, &seed);
	void *dx2;
	cr_assert_eq(unimem_gpu_ptr(b, x2, &dx2), 0);
	muladd(dx2, dw, dy, n);
	for (unsigned i = 0; i < n; i++) {
		float want = fmaf(x2[i], w[i], y0[i]);
		cr_assert(memcmp(&y[i], &want, 4) == 0, "pass 2, y[%u]", i);
	}
	free(y0);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	unimem_layout_close(l);
}

Test(gpu, grid_cells_from_the_gpu_through_the_pointer_helper)
{
	gpu_setup();
	const size_t cell = 4096, cells = 64, per = cell / sizeof(float);
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open(&g, cell, cells), 0);
	const unimem_block *b = unimem_grid_block(g);
	void *d;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	float *c[8];
	unsigned seed = seed_now();
	for (int i = 0; i < 8; i++) {
		c[i] = unimem_grid_take(g);
		cr_assert_not_null(c[i]);
		fill_random(c[i], per / 2, &seed);
		poison(c[i] + per / 2, per / 2);
	}
	for (int i = 0; i < 8; i++) {
		void *dc;
		cr_assert_eq(unimem_gpu_ptr(b, c[i], &dc), 0);
		affine(dc, (float *)dc + per / 2, (unsigned)(per / 2), 1.25f, (float)i);
	}
	for (int i = 0; i < 8; i++) {
		check_affine(c[i], c[i] + per / 2, per / 2, 1.25f, (float)i);
		cr_assert_eq(unimem_grid_give(g, c[i]), 0);
	}
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	unimem_grid_close(g);
}

/* Exit codes of the child in the test below. */
enum { CHILD_OK = 0, CHILD_NO_GPU = 77, CHILD_NO_LOOKUP = 78 };

static int child_runs_the_kernel(uint32_t id)
{
	/* A fresh process: nothing of CUDA was touched before the fork. */
	if (unimem_gpu_count() < 1)
		return CHILD_NO_GPU;
	unimem_block *c;
	int err = unimem_block_lookup(&c, id);
	if (err == -ENOSYS || id == 0)
		return CHILD_NO_LOOKUP;
	if (err)
		return 10;
	void *d;
	if (unimem_gpu_map(c, &d))
		return 11;
	char why[160];
	CUmodule mod;
	CUfunction f;
	if (cuda_driver_load(&cu, why, sizeof why) || cu.cuDeviceGet(&dev, 0) ||
	    cu.cuDevicePrimaryCtxRetain(&primary, dev) || cu.cuCtxSetCurrent(primary) ||
	    cuda_kernels_load(&cu, dev, &mod) || cu.cuModuleGetFunction(&f, mod, "affine"))
		return 12;
	unsigned n = (unsigned)(unimem_block_size(c) / sizeof(float) / 2);
	CUdeviceptr dx = (CUdeviceptr)(uintptr_t)d, dy = dx + n * sizeof(float);
	float a = 0.5f, b = 7.0f;
	void *args[] = { &dx, &dy, &n, &a, &b };
	if (cu.cuLaunchKernel(f, grid_for(n), 1, 1, 256, 1, 1, 0, NULL, args, NULL) ||
	    cu.cuCtxSynchronize())
		return 13;
	if (unimem_gpu_unmap(c))
		return 14;
	unimem_block_close(c);
	return CHILD_OK;
}

Test(gpu, a_looked_up_block_from_another_process)
{
	/* The parent never touches CUDA (a CUDA process cannot fork a CUDA child): the child
	 * decides whether there is a GPU. */
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = unimem_block_ptr(b), *y = x + n;
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(child_runs_the_kernel(unimem_block_id(b)));
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the child died");
	if (WEXITSTATUS(status) == CHILD_NO_GPU)
		cr_skip_test("%s", unimem_strerror(-ENODEV));
	if (WEXITSTATUS(status) == CHILD_NO_LOOKUP)
		cr_skip_test("unimem_block_lookup() is not implemented yet (the sharing issue)");
	cr_assert_eq(WEXITSTATUS(status), CHILD_OK, "child failed at step %d", WEXITSTATUS(status));
	check_affine(x, y, n, 0.5f, 7.0f);
	unimem_block_close(b);
}

Test(gpu, pointer_helper_refuses_what_is_not_in_the_block)
{
	gpu_setup();
	unimem_block *b, *other;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	cr_assert_eq(unimem_block_open(&other, 1 << 20, 0), 0);
	void *d, *p = (void *)1;
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	unsigned char *base = unimem_block_ptr(b);
	cr_assert_eq(unimem_gpu_ptr(b, base - 1, &p), -EINVAL);
	cr_assert_null(p);
	cr_assert_eq(unimem_gpu_ptr(b, base + unimem_block_size(b) + 1, &p), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(b, unimem_block_ptr(other), &p), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(other, unimem_block_ptr(other), &p), -ENXIO);
	cr_assert_eq(unimem_gpu_ptr(NULL, base, &p), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(b, NULL, &p), -EINVAL);
	cr_assert_eq(unimem_gpu_ptr(b, base, NULL), -EINVAL);
	cr_assert_eq(unimem_gpu_map(NULL, &p), -EINVAL);
	cr_assert_eq(unimem_gpu_map(b, NULL), -EINVAL);
	cr_assert_eq(unimem_gpu_unmap(NULL), -EINVAL);
	unimem_block_close(other);
	unimem_block_close(b);
}

Test(gpu, a_driver_error_is_an_errno_with_the_drivers_message)
{
	gpu_setup();
	unimem_block *b;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, 0), 0);
	/* Someone else registered the memory already: the driver refuses. */
	CU_OK(cu.cuMemHostRegister(unimem_block_ptr(b), unimem_block_size(b), 0));
	void *d = (void *)1;
	int err = unimem_gpu_map(b, &d);
	cr_assert_eq(err, -EBUSY, "%d %s", err, unimem_strerror(err));
	cr_assert_null(d);
	const char *m = unimem_strerror(err);
	cr_assert(strstr(m, "cuMemHostRegister") && strstr(m, "ALREADY_REGISTERED"), "%s", m);
	cr_assert_str_eq(unimem_strerror(-err), m);
	CU_OK(cu.cuMemHostUnregister(unimem_block_ptr(b)));
	/* Nothing half-made was left: the map now works, and the message is gone. */
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	cr_assert_null(strstr(unimem_strerror(-EBUSY), "CUDA"));
	unimem_block_close(b);
}

Test(gpu, a_failed_map_of_an_unpinned_block_leaves_nothing_registered)
{
	gpu_setup();
	unimem_block *b;
	/* Unpinned and large enough to be registered in several pieces, from several
	 * threads; one page in the middle is already registered by someone else. */
	cr_assert_eq(unimem_block_open(&b, 64 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	unsigned char *base = unimem_block_ptr(b), *mid = base + (40 << 20);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	memset(mid, 1, page);
	CU_OK(cu.cuMemHostRegister(mid, page, 0));
	void *d = (void *)1;
	int err = unimem_gpu_map(b, &d);
	cr_assert_eq(err, -EBUSY, "%d %s", err, unimem_strerror(err));
	cr_assert_null(d);
	cr_assert(strstr(unimem_strerror(err), "cuMemHostRegister"), "%s", unimem_strerror(err));
	CU_OK(cu.cuMemHostUnregister(mid));
	/* Every piece that did register was dropped again. */
	assert_unregistered(base, unimem_block_size(b));
	void *p;
	cr_assert_eq(unimem_gpu_ptr(b, base, &p), -ENXIO);
	cr_assert_eq(unimem_gpu_map(b, &d), 0);
	size_t n = unimem_block_size(b) / sizeof(float) / 2;
	float *x = (float *)base, *y = x + n;
	unsigned seed = seed_now();
	fill_random(x, n, &seed);
	poison(y, n);
	affine(d, (float *)d + n, (unsigned)n, 1.0f, -0.5f);
	check_affine(x, y, n, 1.0f, -0.5f);
	cr_assert_eq(unimem_gpu_unmap(b), 0);
	unimem_block_close(b);
}

/* Streaming weights (issue 16): checkpoints streamed through the staging ring into device
 * memory, read back with cuMemcpyDtoH and compared byte for byte. */
#include "weights_files.h"

static const struct wf_tensor wmodel[] = {
	{ "embed.weight", "BF16", 2, 2, { 333, 257 } },
	{ "norm.bias", "U8", 1, 1, { 7 } },
	{ "scalar", "F32", 4, 0, { 0 } },
	{ "empty", "F16", 2, 2, { 0, 5 } },
	{ "big", "F32", 4, 2, { 1301, 1031 } },
	{ "tail", "I64", 8, 1, { 3 } },
};
#define WN (sizeof wmodel / sizeof wmodel[0])

static void check_on_device(unimem_weights *w, unsigned seed)
{
	for (size_t i = 0; i < WN; i++) {
		long k = unimem_weights_find(w, wmodel[i].name);
		cr_assert_eq(k, (long)i);
		size_t n = unimem_weights_nbytes(w, i);
		void *d = unimem_weights_ptr(w, i);
		cr_assert_not_null(d);
		cr_assert_eq((uintptr_t)d % UNIMEM_WEIGHTS_ALIGN, 0);
		if (!n)
			continue;
		unsigned char *h = malloc(n);
		CU_OK(cu.cuMemcpyDtoH(h, (CUdeviceptr)(uintptr_t)d, n));
		cr_assert_eq(wf_check(h, wmodel, i, seed), 0, "%s differs on the GPU", wmodel[i].name);
		free(h);
	}
}

Test(gpu, weights_stream_into_device_memory_bit_exact)
{
	need_gpu();
	load_driver();
	char path[] = "/tmp/unimem-gpu-weights-XXXXXX.safetensors";
	int fd = mkstemps(path, 12);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_gt(wf_write(path, wmodel, WN, "{\"format\":\"pt\"}", 9), 0);
	setenv("UNIMEM_WEIGHTS_CHUNK", "65536", 1);
	setenv("UNIMEM_WEIGHTS_THREADS", "4", 1);
	for (unsigned flags = 0; flags <= UNIMEM_READ_DIRECT; flags++) {
		CUcontext before = current();
		unimem_weights *w = NULL;
		int err = unimem_weights_load(&w, path, 0, NULL, 0, flags);
		if (err == -EOPNOTSUPP && flags == UNIMEM_READ_DIRECT)
			continue;
		cr_assert_eq(err, 0, "%s", unimem_strerror(err));
		cr_assert_eq(current(), before); /* the caller's context is left as it was */
		cr_assert_eq(unimem_weights_device(w), 0);
		CU_OK(cu.cuDevicePrimaryCtxRetain(&primary, dev));
		CU_OK(cu.cuCtxPushCurrent(primary));
		check_on_device(w, 9);
		CUcontext popped;
		CU_OK(cu.cuCtxPopCurrent(&popped));
		unimem_weights_close(w);
		CU_OK(cu.cuDevicePrimaryCtxRelease(dev));
	}
	/* Into the caller's device buffer; and what is refused there. */
	CU_OK(cu.cuDevicePrimaryCtxRetain(&primary, dev));
	CU_OK(cu.cuCtxPushCurrent(primary));
	unimem_weights *w = NULL;
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	size_t bytes = unimem_weights_bytes(w);
	CUdeviceptr buf, small;
	CU_OK(cu.cuMemAlloc(&buf, bytes));
	CU_OK(cu.cuMemAlloc(&small, bytes / 2));
	static unsigned char host[64] __attribute__((aligned(64)));
	cr_assert_eq(unimem_weights_upload(w, 0, host, bytes), -EINVAL);   /* not device memory */
	cr_assert_eq(unimem_weights_upload(w, 0, (void *)(uintptr_t)small, bytes), -EINVAL);
	cr_assert_eq(unimem_weights_upload(w, 999, (void *)(uintptr_t)buf, bytes), -ENODEV);
	cr_assert_eq(unimem_weights_upload(w, 0, (void *)(uintptr_t)buf, bytes), 0);
	cr_assert_eq((CUdeviceptr)(uintptr_t)unimem_weights_ptr(w, 0), buf);
	check_on_device(w, 9);
	unimem_weights_close(w);
	/* Still the caller's: readable after the close. */
	unsigned char b;
	CU_OK(cu.cuMemcpyDtoH(&b, buf, 1));
	CU_OK(cu.cuMemFree(buf));
	CU_OK(cu.cuMemFree(small));
	CUcontext popped;
	CU_OK(cu.cuCtxPopCurrent(&popped));
	CU_OK(cu.cuDevicePrimaryCtxRelease(dev));
	unsetenv("UNIMEM_WEIGHTS_CHUNK");
	unsetenv("UNIMEM_WEIGHTS_THREADS");
	unlink(path);
}

Test(gpu, weights_larger_than_the_device_give_enomem_and_leave_nothing)
{
	need_gpu();
	load_driver();
	CU_OK(cu.cuDevicePrimaryCtxRetain(&primary, dev));
	CU_OK(cu.cuCtxPushCurrent(primary));
	size_t free0, total;
	CU_OK(cu.cuMemGetInfo(&free0, &total));
	/* A sparse file: one U8 tensor bigger than the device's memory. */
	char path[] = "/tmp/unimem-gpu-huge-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	char hdr[256];
	unsigned long long n = (unsigned long long)total + (1ull << 30);
	int h = snprintf(hdr, sizeof hdr, "{\"huge\":{\"dtype\":\"U8\",\"shape\":[%llu],"
			 "\"data_offsets\":[0,%llu]}}", n, n);
	while (h % 8)
		hdr[h++] = ' ';
	unsigned char len[8] = { (unsigned char)h };
	cr_assert_eq(write(fd, len, 8), 8);
	cr_assert_eq(write(fd, hdr, (size_t)h), h);
	cr_assert_eq(ftruncate(fd, (off_t)(8 + h + n)), 0);
	close(fd);
	unimem_weights *w = (unimem_weights *)1;
	int err = unimem_weights_load(&w, path, 0, NULL, 0, 0);
	unlink(path);
	cr_assert_eq(err, -ENOMEM, "%d %s", err, unimem_strerror(err));
	cr_assert_null(w);
	cr_assert_not_null(strstr(unimem_strerror(err), "cuMemAlloc"), "%s", unimem_strerror(err));
	/* Nothing kept on the device. The free figure is the device's: a test running beside
	 * this one (--jobs) may hold memory for a moment, so a leak is what stays for 5 s. */
	size_t free1 = 0;
	for (int k = 0; k < 50; k++) {
		CU_OK(cu.cuMemGetInfo(&free1, &total));
		if (free1 + (64u << 20) >= free0)
			break;
		usleep(100 * 1000);
	}
	cr_assert_geq(free1 + (64u << 20), free0, "%zu bytes fewer free on the device", free0 - free1);
	CUcontext popped;
	CU_OK(cu.cuCtxPopCurrent(&popped));
	CU_OK(cu.cuDevicePrimaryCtxRelease(dev));
}
