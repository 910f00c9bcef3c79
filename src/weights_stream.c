/* SPDX-License-Identifier: MIT */
/* Streaming weights (issue 16): the upload. The data sections are cut in chunks (4 KiB
 * aligned in the file, so that uncached pieces go O_DIRECT); each worker thread owns two
 * chunks of a staging ring (one Block; on a GPU each worker registers its part with the
 * driver, so that copies run at copy-engine speed) and its own stream, and loops: claim
 * the next chunk, wait until the copies out of that half are done (its event), read the
 * chunk (umi_read_range: pread for cached pages, O_DIRECT for the others), queue the
 * copies of the tensors' pieces in it, record the event. So each worker reads one chunk
 * while the copy engine drains the other. Host memory is copied with memcpy instead. */
#define _GNU_SOURCE
#include "weights_internal.h"
#include "cuda_decls.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Measured on the H200 host (docs/BENCHMARKS_GPU.md, 8.6 GB warm): 4 MiB chunks beat 8
 * and 16 at every thread count (finer pipelining of read and copy), and 12 threads beat
 * 8 and 16 (41.3 against 39.6 and 37.1 GB/s). */
#define CHUNK_DEFAULT ((size_t)4 << 20)
#define CHUNK_MIN ((size_t)64 << 10)
#define CHUNK_MAX ((size_t)1 << 30)
#define THREADS_DEFAULT 12
/* Uncached chunks keep a worker waiting on the device, not on a CPU: at least this many
 * reads in flight however busy the CPUs are. */
#define THREADS_MIN 4
#define THREADS_MAX 64
#define SLOTS 2

struct chunk {
	size_t shard;
	uint64_t c0, c1;    /* file range */
	size_t first;       /* first model tensor that may reach into it */
};

struct job {
	unimem_weights *w;
	const struct umi_cuda *cu;  /* NULL: host memory */
	CUcontext ctx;
	unsigned char *dst;
	unsigned char *ring;
	size_t chunk_bytes;
	struct chunk *chunks;
	size_t nchunks;
	size_t next;                /* atomic */
	int err;                    /* first failure (atomic) */
};

static void job_fail(struct job *j, int err)
{
	int none = 0;
	__atomic_compare_exchange_n(&j->err, &none, err, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}

/* A driver call failed: its note for unimem_strerror() is made in this thread; the
 * caller's thread makes it again from the same result (the note is per thread). */
struct cuerr {
	CUresult r;
	const char *call;
};

struct worker {
	struct job *j;
	size_t index;
	CUstream stream;
	CUevent ev[SLOTS];
	bool pending[SLOTS];
	struct cuerr fail;
};

static int cu_check(struct worker *k, CUresult r, const char *call)
{
	if (r == CUDA_SUCCESS)
		return 0;
	if (!k->fail.call) {
		k->fail.r = r;
		k->fail.call = call;
	}
	return umi_cuda_fail(r, call);
}

/* Copy the pieces of the tensors that lie in chunk c, staged at src. */
static int copy_out(struct worker *k, const struct chunk *c, const unsigned char *src)
{
	struct job *j = k->j;
	const unimem_weights *w = j->w;
	const struct w_shard *sh = &w->shards[c->shard];
	size_t end = sh->first + sh->count;
	for (size_t i = c->first; i < end; i++) {
		const struct w_tensor *t = &w->t[i];
		if (t->file_at >= c->c1)
			break;
		uint64_t a = t->file_at > c->c0 ? t->file_at : c->c0;
		uint64_t b = t->file_at + t->nbytes < c->c1 ? t->file_at + t->nbytes : c->c1;
		if (b <= a)
			continue;
		unsigned char *to = j->dst + t->offset + (a - t->file_at);
		const unsigned char *from = src + (a - c->c0);
		if (!j->cu) {
			memcpy(to, from, (size_t)(b - a));
			continue;
		}
		int err = cu_check(k, j->cu->memcpy_htod_async((CUdeviceptr)(uintptr_t)to, from,
								 (size_t)(b - a), k->stream),
				   "cuMemcpyHtoDAsync");
		if (err)
			return err;
	}
	return 0;
}

/* Make a slot ready for the copy engine: fault its pages in here (in parallel with the
 * other workers) and pin them. Done on the slot's first use, so that the second slot's
 * first touch (fresh memory is slow to fault in a VM) overlaps the first one's copies. */
static int stage_slot(struct worker *k, unsigned char *slot, size_t len)
{
	if (madvise(slot, len, MADV_POPULATE_WRITE) != 0 && errno != EINVAL)
		return -ENOMEM;
	return cu_check(k, k->j->cu->host_register(slot, len, CU_MEMHOSTREGISTER_PORTABLE),
			"cuMemHostRegister");
}

static int work(struct worker *k)
{
	struct job *j = k->j;
	const struct umi_cuda *cu = j->cu;
	unsigned char *mine = j->ring + k->index * SLOTS * j->chunk_bytes;
	bool staged[SLOTS] = { false };
	int err = 0;
	for (size_t n = 0; !err; n++) {
		if (__atomic_load_n(&j->err, __ATOMIC_RELAXED))
			break;
		size_t ci = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		if (ci >= j->nchunks)
			break;
		size_t s = n % SLOTS;
		unsigned char *slot = mine + s * j->chunk_bytes;
		if (cu && !staged[s]) {
			err = stage_slot(k, slot, j->chunk_bytes);
			if (err)
				break;
			staged[s] = true;
		}
		if (cu && k->pending[s]) {
			err = cu_check(k, cu->event_synchronize(k->ev[s]), "cuEventSynchronize");
			k->pending[s] = false;
			if (err)
				break;
		}
		const struct chunk *c = &j->chunks[ci];
		err = umi_read_range(j->w->shards[c->shard].fd, slot, c->c0, (size_t)(c->c1 - c->c0),
				     j->w->flags);
		if (!err)
			err = copy_out(k, c, slot);
		if (!err && cu) {
			err = cu_check(k, cu->event_record(k->ev[s], k->stream), "cuEventRecord");
			k->pending[s] = !err;
		}
	}
	if (cu) {
		int e = cu_check(k, cu->stream_synchronize(k->stream), "cuStreamSynchronize");
		if (!err)
			err = e;
		for (size_t s = 0; s < SLOTS; s++)
			if (staged[s])
				cu->host_unregister(mine + s * j->chunk_bytes);
	}
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *k = arg;
	struct job *j = k->j;
	const struct umi_cuda *cu = j->cu;
	CUcontext popped;
	int err = 0;
	if (cu) {
		err = cu_check(k, cu->ctx_push(j->ctx), "cuCtxPushCurrent");
		if (err) {
			job_fail(j, err);
			return NULL;
		}
		err = cu_check(k, cu->stream_create(&k->stream, CU_STREAM_NON_BLOCKING),
			       "cuStreamCreate");
		for (size_t s = 0; !err && s < SLOTS; s++)
			err = cu_check(k, cu->event_create(&k->ev[s], CU_EVENT_DISABLE_TIMING),
				       "cuEventCreate");
	}
	if (!err)
		err = work(k);
	if (err)
		job_fail(j, err);
	if (cu) {
		for (size_t s = 0; s < SLOTS; s++)
			if (k->ev[s])
				cu->event_destroy(k->ev[s]);
		if (k->stream)
			cu->stream_destroy(k->stream);
		cu->ctx_pop(&popped);
	}
	return NULL;
}

#ifndef __linux__
#define secure_getenv getenv
#endif

/* The staging ring: private anonymous memory on 2 MiB boundaries, with transparent huge
 * pages where the system gives them. On the H200 host it faults in 2x faster than 4 KiB
 * anonymous pages and 2-4x faster than a memfd (which the ring was): the warm 1.5 GB load
 * went from 75-85 ms to 58 ms (docs/BENCHMARKS_GPU.md). */
static unsigned char *scratch_map(size_t bytes)
{
	const size_t align = (size_t)2 << 20;
	unsigned char *p = mmap(NULL, bytes + align, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	unsigned char *at = (unsigned char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (at > p)
		munmap(p, (size_t)(at - p));
	if (at + bytes < p + bytes + align)
		munmap(at + bytes, (size_t)(p + bytes + align - (at + bytes)));
#ifdef MADV_HUGEPAGE
	(void)madvise(at, bytes, MADV_HUGEPAGE); /* a hint: 4 KiB pages where refused */
#endif
	return at;
}

/* CPUs free for workers (all but this one where it cannot be told). */
static long idle_cpus(void)
{
#ifdef __linux__
	return umi_os_idle_cpus();
#else
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 1 ? n - 1 : 0;
#endif
}

static size_t env_size(const char *name, size_t dflt, size_t lo, size_t hi)
{
	const char *e = secure_getenv(name);
	if (!e || !*e)
		return dflt;
	char *end;
	unsigned long long v = strtoull(e, &end, 0);
	return *end || v < lo || v > hi ? dflt : (size_t)v;
}

/* The chunks of every shard's data section, from the 4 KiB boundary below it. */
static int cut(struct job *j)
{
	const unimem_weights *w = j->w;
	size_t n = 0;
	for (size_t s = 0; s < w->nshards; s++) {
		const struct w_shard *sh = &w->shards[s];
		uint64_t from = sh->data_at & ~(uint64_t)4095;
		if (sh->size > sh->data_at)
			n += (size_t)((sh->size - from + j->chunk_bytes - 1) / j->chunk_bytes);
	}
	j->chunks = calloc(n ? n : 1, sizeof *j->chunks);
	if (!j->chunks)
		return -ENOMEM;
	for (size_t s = 0; s < w->nshards; s++) {
		const struct w_shard *sh = &w->shards[s];
		if (sh->size <= sh->data_at)
			continue;
		size_t ti = sh->first, tend = sh->first + sh->count;
		for (uint64_t c0 = sh->data_at & ~(uint64_t)4095; c0 < sh->size; c0 += j->chunk_bytes) {
			struct chunk *c = &j->chunks[j->nchunks++];
			c->shard = s;
			c->c0 = c0;
			c->c1 = sh->size - c0 < j->chunk_bytes ? sh->size : c0 + j->chunk_bytes;
			/* The first tensor ending past c0 (tensors are in data order). */
			while (ti < tend && w->t[ti].file_at + w->t[ti].nbytes <= c0)
				ti++;
			c->first = ti;
		}
	}
	return 0;
}

/* The device: its primary context retained (w->ctx_device), and the destination: the
 * caller's buffer checked, or one cuMemAlloc. */
static int gpu_setup(unimem_weights *w, const struct umi_cuda *cu, int device,
		     unsigned char **base, CUcontext *ctx)
{
	int n = 0;
	if (cu->device_get_count(&n) != CUDA_SUCCESS || device >= n)
		return -ENODEV;
	CUdevice dev;
	CUresult r = cu->device_get(&dev, device);
	if (r != CUDA_SUCCESS)
		return umi_cuda_fail(r, "cuDeviceGet");
	r = cu->primary_retain(ctx, dev);
	if (r != CUDA_SUCCESS)
		return umi_cuda_fail(r, "cuDevicePrimaryCtxRetain");
	CUcontext popped;
	r = cu->ctx_push(*ctx);
	if (r != CUDA_SUCCESS) {
		cu->primary_release(dev);
		return umi_cuda_fail(r, "cuCtxPushCurrent");
	}
	int err = 0;
	if (*base) {
		unsigned type = 0;
		int ordinal = -1;
		CUdeviceptr start = 0;
		size_t range = 0;
		CUdeviceptr p = (CUdeviceptr)(uintptr_t)*base;
		if (cu->pointer_get_attribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) ||
		    type != CU_MEMORYTYPE_DEVICE ||
		    cu->pointer_get_attribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p) ||
		    ordinal != device ||
		    cu->pointer_get_attribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p) ||
		    cu->pointer_get_attribute(&range, CU_POINTER_ATTRIBUTE_RANGE_SIZE, p) ||
		    start + range < p + w->bytes)
			err = -EINVAL;
	} else if (w->bytes) {
		CUdeviceptr d = 0;
		r = cu->mem_alloc(&d, w->bytes);
		if (r != CUDA_SUCCESS)
			err = umi_cuda_fail(r, "cuMemAlloc");
		else {
			*base = (unsigned char *)(uintptr_t)d;
			w->base = *base;
			w->owns = true;
		}
	}
	cu->ctx_pop(&popped);
	if (err) {
		cu->primary_release(dev);
		return err;
	}
	w->ctx_device = device;
	return 0;
}

void umi_weights_free_device(unimem_weights *w)
{
	if (w->ctx_device < 0)
		return; /* a host load: never wake the driver (cuInit, its fds) for it */
	const struct umi_cuda *cu = umi_cuda_driver();
	if (!cu)
		return;
	CUdevice dev;
	CUcontext ctx, popped;
	if (cu->device_get(&dev, w->ctx_device) != CUDA_SUCCESS ||
	    cu->primary_retain(&ctx, dev) != CUDA_SUCCESS)
		return;
	if (w->owns && w->base && cu->ctx_push(ctx) == CUDA_SUCCESS) {
		cu->mem_free((CUdeviceptr)(uintptr_t)w->base);
		cu->ctx_pop(&popped);
	}
	w->base = NULL;
	w->owns = false;
	cu->primary_release(dev);  /* this call's retain */
	cu->primary_release(dev);  /* gpu_setup's */
	w->ctx_device = -1;
}

/* umi_parallel() piece: worker `piece` runs its loop (its failure is latched in j). */
static int run_worker(void *arg, size_t piece, unsigned worker)
{
	(void)worker;
	worker_main((struct worker *)arg + piece);
	return 0;
}

int umi_weights_stream(unimem_weights *w, int device, unsigned char *base)
{
	const struct umi_cuda *cu = NULL;
	CUcontext ctx = NULL;
	if (device != UNIMEM_WEIGHTS_CPU) {
		cu = umi_cuda_driver();
		if (!cu)
			return -ENODEV;
		int err = gpu_setup(w, cu, device, &base, &ctx);
		if (err)
			return err;
	}
	struct job j = { .w = w, .cu = cu, .ctx = ctx, .dst = base };
	j.chunk_bytes = env_size("UNIMEM_WEIGHTS_CHUNK", CHUNK_DEFAULT, CHUNK_MIN, CHUNK_MAX) &
			~(size_t)4095;
	int err = cut(&j);
	size_t threads = 0;
	unsigned char *ring = NULL;
	struct worker *k = NULL;
	if (!err && j.nchunks) {
		long idle = idle_cpus() + 1; /* this thread waits: its CPU is free too */
		threads = env_size("UNIMEM_WEIGHTS_THREADS",
				   idle < THREADS_MIN ? THREADS_MIN :
				   idle > THREADS_DEFAULT ? THREADS_DEFAULT : (size_t)idle,
				   1, THREADS_MAX);
		if (threads > (j.nchunks + SLOTS - 1) / SLOTS)
			threads = (j.nchunks + SLOTS - 1) / SLOTS;
		w->staging = threads * SLOTS * j.chunk_bytes;
		ring = scratch_map(w->staging);
		err = ring ? 0 : -ENOMEM;
		k = calloc(threads, sizeof *k);
		if (!err && !k)
			err = -ENOMEM;
	}
	if (!err && j.nchunks) {
		j.ring = ring;
		for (size_t i = 0; i < threads; i++) {
			k[i].j = &j;
			k[i].index = i;
		}
		/* One piece per worker (its ring slots, stream and events): the caller runs the
		 * first, helpers the others; workers that get no thread leave their chunks to
		 * those running (each claims chunks until none is left). */
		umi_parallel(threads, run_worker, k, (unsigned)(threads - 1));
		err = j.err;
		/* A driver failure's note, made again in the caller's thread. */
		for (size_t i = 0; err && i < threads; i++)
			if (k[i].fail.call) {
				err = umi_cuda_fail(k[i].fail.r, k[i].fail.call);
				break;
			}
	}
	free(k);
	if (ring)
		munmap(ring, w->staging);
	free(j.chunks);
	if (err && cu)
		umi_weights_free_device(w);
	else if (err)
		w->staging = 0;
	return err;
}
