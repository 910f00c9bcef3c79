/* SPDX-License-Identifier: MIT */
/* GPU, Linux: zero-copy mapping of Blocks into CUDA through the driver API, which is
 * loaded at run time with dlopen("libcuda.so.1"). Building needs no CUDA header or
 * library; without a driver or a device everything answers "no GPU", silently. */
#define _GNU_SOURCE
#include "gpu_pvt.h"
#include "os/os.h"
#include "cuda_decls.h"
#include "weights_pvt.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* One registration covers at most this much: drivers are reported to refuse single
 * registrations of 512 GiB and more. UNIMEM_GPU_REGISTER_CHUNK (bytes) overrides it. */
#define DEFAULT_CHUNK ((size_t)64 << 30)

static struct umi_cuda cu;

/* Threads that fault an unpinned Block in for a map (see register_pieces()): 0, the
 * machine's idle CPUs, at most PIECE_THREADS_AUTO; UNIMEM_GPU_MAP_THREADS (1..16, read
 * once) sets it. UNIMEM_GPU_MAP_PREFAULT=0: the driver faults the pages in. */
#define PIECE_THREADS_MAX 16
#define PIECE_THREADS_AUTO 8
static size_t piece_threads;
static bool prefault = true;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int gpus;              /* devices, set once by load(); 0: no GPU */
static size_t chunk_max;      /* bytes per registration */
static char no_gpu_why[192];  /* why gpus is 0, for unimem_strerror(-ENODEV) */
static atomic_bool loaded;    /* load() has run: the three above are final */


struct umi_gpu_state {
	pthread_mutex_t lock;      /* serialises register and unregister */
	_Atomic size_t refs;       /* successful maps not yet unmapped */
	_Atomic uintptr_t dev;     /* device address of the Block's first byte while mapped */
	CUdevice device;
	CUcontext ctx;             /* primary context, retained while registered */
	size_t chunk;              /* bytes per registration (the last may be shorter) */
};

static const char *driver_text(CUresult r)
{
	const char *name = NULL, *text = NULL;
	if (cu.error_name)
		cu.error_name(r, &name);
	if (cu.error_string)
		cu.error_string(r, &text);
	static _Thread_local char buf[160];
	snprintf(buf, sizeof buf, "%s%s%s", name ? name : "CUDA error",
		 text ? ": " : "", text ? text : "");
	return buf;
}

/* Record a driver failure of `call` for this thread (unimem_strerror() says it) and
 * return its negative errno. */
int umi_cuda_fail(CUresult r, const char *call)
{
	return umi_fail(-umi_cuda_errno(r), "CUDA driver, %s: %s", call, driver_text(r));
}

/* -ENODEV, with why there is no GPU where that is known. */
static int no_gpu(void)
{
	return no_gpu_why[0] ? umi_fail(-ENODEV, "%s", no_gpu_why) : -ENODEV;
}

static void *sym(void *h, const char *name, const char *fallback)
{
	void *p = dlsym(h, name);
	if (!p && fallback)
		p = dlsym(h, fallback);
	return p;
}

static void load(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(no_gpu_why, sizeof no_gpu_why, "libcuda.so.1 could not be loaded");
		return;
	}
	static const struct {
		const char *name, *fallback;
		size_t at;
	} need[] = {
#define E(f, n, fb) { n, fb, offsetof(struct umi_cuda, f) }
		E(init, "cuInit", NULL),
		E(device_get_count, "cuDeviceGetCount", NULL),
		E(device_get, "cuDeviceGet", NULL),
		E(primary_retain, "cuDevicePrimaryCtxRetain", NULL),
		E(primary_release, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"),
		E(ctx_push, "cuCtxPushCurrent_v2", "cuCtxPushCurrent"),
		E(ctx_pop, "cuCtxPopCurrent_v2", "cuCtxPopCurrent"),
		E(host_register, "cuMemHostRegister_v2", "cuMemHostRegister"),
		E(host_device_pointer, "cuMemHostGetDevicePointer_v2", "cuMemHostGetDevicePointer"),
		E(host_unregister, "cuMemHostUnregister", NULL),
		E(error_string, "cuGetErrorString", NULL),
		E(error_name, "cuGetErrorName", NULL),
		E(mem_alloc, "cuMemAlloc_v2", "cuMemAlloc"),
		E(mem_free, "cuMemFree_v2", "cuMemFree"),
		E(memcpy_htod_async, "cuMemcpyHtoDAsync_v2", "cuMemcpyHtoDAsync"),
		E(stream_create, "cuStreamCreate", NULL),
		E(stream_destroy, "cuStreamDestroy_v2", "cuStreamDestroy"),
		E(stream_synchronize, "cuStreamSynchronize", NULL),
		E(event_create, "cuEventCreate", NULL),
		E(event_record, "cuEventRecord", NULL),
		E(event_synchronize, "cuEventSynchronize", NULL),
		E(event_destroy, "cuEventDestroy_v2", "cuEventDestroy"),
		E(pointer_get_attribute, "cuPointerGetAttribute", NULL),
#undef E
	};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		void *p = sym(h, need[i].name, need[i].fallback);
		if (!p) {
			snprintf(no_gpu_why, sizeof no_gpu_why, "libcuda.so.1 lacks %s", need[i].name);
			memset(&cu, 0, sizeof cu);
			dlclose(h);
			return;
		}
		memcpy((char *)&cu + need[i].at, &p, sizeof p);
	}
	CUresult r = cu.init(0);
	int n = 0;
	if (r == CUDA_SUCCESS)
		r = cu.device_get_count(&n);
	if (r != CUDA_SUCCESS || n <= 0) {
		/* The library stays loaded: cuGetErrorString serves the message. */
		snprintf(no_gpu_why, sizeof no_gpu_why, "cuInit: %s",
			 r != CUDA_SUCCESS ? driver_text(r) : "no device");
		return;
	}
	size_t page = umi_os_page_size();
	chunk_max = DEFAULT_CHUNK;
	const char *env = secure_getenv("UNIMEM_GPU_REGISTER_CHUNK");
	if (env && *env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 0);
		if (*end == '\0' && v >= page && v <= SIZE_MAX)
			chunk_max = (size_t)v & ~(page - 1);
	}
	env = secure_getenv("UNIMEM_GPU_MAP_THREADS");
	if (env && *env) {
		long v = strtol(env, NULL, 10);
		piece_threads = v < 1 ? 1 : v > PIECE_THREADS_MAX ? PIECE_THREADS_MAX : (size_t)v;
	}
	env = secure_getenv("UNIMEM_GPU_MAP_PREFAULT");
	prefault = !(env && strcmp(env, "0") == 0);
	gpus = n;
}

static void load_once(void)
{
	load();
	atomic_store_explicit(&loaded, true, memory_order_release);
}

static bool have_gpu(void)
{
	pthread_once(&once, load_once);
	return gpus > 0;
}

const struct umi_cuda *umi_cuda_driver(void)
{
	return have_gpu() ? &cu : NULL;
}

int unimem_gpu_count(void)
{
	pthread_once(&once, load_once);
	return gpus;
}

/* The Block's GPU state, made on first use when `create`. The Block is const in the API:
 * the state is bookkeeping beside its memory, and the Block object itself is never const. */
static struct umi_gpu_state *state_of(const unimem_block *b, bool create)
{
	unimem_block *m = (unimem_block *)b;
	struct umi_gpu_state *s = atomic_load_explicit(&m->gpu, memory_order_acquire);
	if (s || !create)
		return s;
	struct umi_gpu_state *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	pthread_mutex_init(&n->lock, NULL);
	if (atomic_compare_exchange_strong_explicit(&m->gpu, &s, n, memory_order_acq_rel,
						    memory_order_acquire))
		return n;
	pthread_mutex_destroy(&n->lock);
	free(n);
	return s;
}

/* Drop the registrations of [0, upto) of the Block; the context is current. */
static CUresult unregister_chunks(const unimem_block *b, size_t chunk, size_t upto)
{
	CUresult first = CUDA_SUCCESS;
	for (size_t off = 0; off < upto; off += chunk) {
		CUresult r = cu.host_unregister(b->ptr + off);
		if (r != CUDA_SUCCESS && first == CUDA_SUCCESS)
			first = r;
	}
	return first;
}

/* Registering an unpinned Block: the pages are faulted in from a few threads (the driver
 * would fault them one by one in one thread, several times slower), piece by piece, and
 * each thread registers the piece it has just faulted in, so that registering overlaps
 * faulting. Measured for 1 GiB on the H100 host: fault-in 357 ms in 1 thread, 172 in 4,
 * 194 in 8; registering populated memory 34 ms. For 16 GiB on the H200 host: 4.3/3.3 s
 * in 4 threads, 3.4 in 8, 3.5 in 16, 6.7 with the driver faulting (docs/BENCHMARKS_GPU.md):
 * the first touch of the VM's memory, not the threads, sets the pace past 8. */
#define PIECE_MIN ((size_t)4 << 20)
#define PIECE_MAX ((size_t)64 << 20)
#define PINNED_PIECES_MIN ((size_t)256 << 20)

struct pieces {
	const unimem_block *b;
	CUcontext ctx;
	size_t piece, count;
	bool populate;
	CUdeviceptr *dev;          /* per piece; 0 while not registered */
	pthread_mutex_t lock;      /* guards the first failure below */
	int err;                   /* first failure: -errno ... */
	CUresult r;                /* ... and, for a driver failure, its result and call */
	const char *call;
};

static void pieces_fail(struct pieces *j, int err, CUresult r, const char *call)
{
	pthread_mutex_lock(&j->lock);
	if (!j->err) {
		j->err = err;
		j->r = r;
		j->call = call;
	}
	pthread_mutex_unlock(&j->lock);
}

/* Piece i: fault in (unpinned Blocks), register, find the device address. A helper thread
 * (worker > 0) makes the context current for the piece; the caller's is current already.
 * Run by umi_parallel(); a driver failure is latched in j (its detail belongs to the
 * calling thread, which records it after the join). */
static int piece_one(void *arg, size_t i, unsigned worker)
{
	struct pieces *j = arg;
	CUcontext popped;
	CUresult pushed = worker ? cu.ctx_push(j->ctx) : CUDA_SUCCESS;
	if (pushed != CUDA_SUCCESS) {
		pieces_fail(j, 0, pushed, "cuCtxPushCurrent");
		return -EIO;
	}
	int err = 0;
	unsigned char *p = j->b->ptr + i * j->piece;
	size_t len = j->b->size - i * j->piece < j->piece ? j->b->size - i * j->piece : j->piece;
	/* Where MADV_POPULATE_WRITE is missing (EINVAL, kernel < 5.14) the driver faults the
	 * pages in itself. */
	if (j->populate && prefault && madvise(p, len, MADV_POPULATE_WRITE) != 0 &&
	    errno != EINVAL) {
		pieces_fail(j, -ENOMEM, CUDA_SUCCESS, NULL);
		err = -ENOMEM;
	} else {
		CUresult r = cu.host_register(p, len, CU_MEMHOSTREGISTER_PORTABLE |
							      CU_MEMHOSTREGISTER_DEVICEMAP);
		CUdeviceptr d = 0;
		if (r != CUDA_SUCCESS) {
			pieces_fail(j, 0, r, "cuMemHostRegister");
			err = -EIO;
		} else if ((r = cu.host_device_pointer(&d, p, 0)) != CUDA_SUCCESS || !d) {
			cu.host_unregister(p);
			pieces_fail(j, 0, r, "cuMemHostGetDevicePointer");
			err = -EIO;
		} else {
			j->dev[i] = d;
		}
	}
	if (worker)
		cu.ctx_pop(&popped);
	return err;
}

/* Register the whole Block with the driver, mapped and portable, in pieces of at most
 * chunk_max, and check that the device range is one contiguous run. The context is
 * current. Called under s->lock with refs == 0. On success sets s->chunk and s->dev. */
static int register_pieces(struct umi_gpu_state *s, const unimem_block *b, CUcontext ctx)
{
	struct pieces j = { .b = b, .ctx = ctx, .populate = !b->pinned };
	long idle = umi_os_idle_cpus() + 1; /* this thread works too */
	size_t want = piece_threads ? piece_threads :
		      idle > PIECE_THREADS_AUTO ? PIECE_THREADS_AUTO : (size_t)(idle > 1 ? idle : 1);
	size_t piece = b->size;
	/* Unpinned: fault in and register piece by piece. Pinned and large: register pieces
	 * from several threads too (pinning the pages again is the driver's cost). */
	if (j.populate || (want > 1 && b->size >= PINNED_PIECES_MIN)) {
		piece = b->size / (2 * want);
		piece = piece < PIECE_MIN ? PIECE_MIN : piece > PIECE_MAX ? PIECE_MAX : piece;
		piece = umi_round_up(piece, b->page);
	}
	if (piece > chunk_max)
		piece = chunk_max < b->page ? b->page : chunk_max & ~(b->page - 1);
	j.piece = piece;
	j.count = b->size / piece + (b->size % piece != 0);
	j.dev = calloc(j.count, sizeof *j.dev);
	if (!j.dev)
		return -ENOMEM;
	pthread_mutex_init(&j.lock, NULL);

	umi_parallel(j.count, piece_one, &j, j.count > 1 && want > 1 ? (unsigned)(want - 1) : 0);

	int err = j.err;
	if (!err && j.call)
		err = umi_cuda_fail(j.r, j.call);
	for (size_t i = 1; !err && i < j.count; i++) {
		if (j.dev[i] != j.dev[0] + i * piece) {
			err = umi_fail(-EOPNOTSUPP,
				       "CUDA driver: the registrations of the Block got device ranges "
				       "that are not contiguous (%#llx at offset %zu after %#llx)",
				       (unsigned long long)j.dev[i], i * piece,
				       (unsigned long long)j.dev[0]);
		}
	}
	if (err) {
		for (size_t i = 0; i < j.count; i++)
			if (j.dev[i])
				cu.host_unregister(b->ptr + i * piece);
	} else {
		s->chunk = piece;
		atomic_store_explicit(&s->dev, (uintptr_t)j.dev[0], memory_order_relaxed);
	}
	pthread_mutex_destroy(&j.lock);
	free(j.dev);
	return err;
}

/* Retain the primary context of device 0, register the Block in it, and keep the
 * context retained while the registration lives. Called under s->lock with refs == 0. */
static int register_block(struct umi_gpu_state *s, const unimem_block *b)
{
	CUdevice dev;
	CUcontext ctx, popped;
	CUresult r = cu.device_get(&dev, 0);
	if (r != CUDA_SUCCESS)
		return umi_cuda_fail(r, "cuDeviceGet");
	r = cu.primary_retain(&ctx, dev);
	if (r != CUDA_SUCCESS)
		return umi_cuda_fail(r, "cuDevicePrimaryCtxRetain");
	/* Push and pop: the caller's current context, if any, is left as it was. */
	r = cu.ctx_push(ctx);
	if (r != CUDA_SUCCESS) {
		cu.primary_release(dev);
		return umi_cuda_fail(r, "cuCtxPushCurrent");
	}
	int err = register_pieces(s, b, ctx);
	cu.ctx_pop(&popped);
	if (err) {
		cu.primary_release(dev);
		return err;
	}
	s->device = dev;
	s->ctx = ctx;
	return 0;
}

/* Drop every registration of the Block and the context it held. Under s->lock. */
static int unregister_block(struct umi_gpu_state *s, const unimem_block *b)
{
	CUcontext popped;
	CUresult r = cu.ctx_push(s->ctx);
	int err = 0;
	if (r == CUDA_SUCCESS) {
		r = unregister_chunks(b, s->chunk, b->size);
		if (r != CUDA_SUCCESS)
			err = umi_cuda_fail(r, "cuMemHostUnregister");
		cu.ctx_pop(&popped);
	} else {
		/* The context is gone (process exit, or a reset by the application): so are
		 * its registrations. */
		err = umi_cuda_fail(r, "cuCtxPushCurrent");
	}
	cu.primary_release(s->device);
	atomic_store_explicit(&s->dev, 0, memory_order_relaxed);
	return err;
}

int unimem_gpu_map(const unimem_block *b, void **device_ptr)
{
	if (device_ptr)
		*device_ptr = NULL;
	if (!b || !device_ptr)
		return -EINVAL;
	umi_fail_clear();
	if (!have_gpu())
		return no_gpu();
	struct umi_gpu_state *s = state_of(b, true);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	size_t refs = atomic_load_explicit(&s->refs, memory_order_relaxed);
	int err = refs ? 0 : register_block(s, b);
	if (!err) {
		atomic_store_explicit(&s->refs, refs + 1, memory_order_release);
		*device_ptr = (void *)atomic_load_explicit(&s->dev, memory_order_relaxed);
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

int unimem_gpu_unmap(const unimem_block *b)
{
	if (!b)
		return -EINVAL;
	umi_fail_clear();
	if (!have_gpu())
		return no_gpu();
	struct umi_gpu_state *s = state_of(b, false);
	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	size_t refs = atomic_load_explicit(&s->refs, memory_order_relaxed);
	int err = 0;
	if (refs)
		atomic_store_explicit(&s->refs, refs - 1, memory_order_release);
	if (refs == 1) /* unimem_gpu_ptr() says "not mapped" from here on */
		err = unregister_block(s, b); /* the reference goes even when the driver fails */
	pthread_mutex_unlock(&s->lock);
	return err;
}

int unimem_gpu_ptr(const unimem_block *b, const void *host, void **device)
{
	if (device)
		*device = NULL;
	if (!b || !host || !device)
		return -EINVAL;
	uintptr_t h = (uintptr_t)host, base = (uintptr_t)b->ptr;
	if (h < base || h - base > b->size)
		return -EINVAL;
	struct umi_gpu_state *s = state_of(b, false);
	if (!s || !atomic_load_explicit(&s->refs, memory_order_acquire))
		return have_gpu() ? -ENXIO : no_gpu();
	*device = (void *)(atomic_load_explicit(&s->dev, memory_order_relaxed) + (h - base));
	return 0;
}

void umi_gpu_release(unimem_block *b)
{
	struct umi_gpu_state *s = atomic_load_explicit(&b->gpu, memory_order_acquire);
	if (!s)
		return;
	if (atomic_load_explicit(&s->refs, memory_order_relaxed))
		unregister_block(s, b);
	pthread_mutex_destroy(&s->lock);
	free(s);
	atomic_store_explicit(&b->gpu, NULL, memory_order_relaxed);
}
