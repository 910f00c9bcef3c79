/* SPDX-License-Identifier: MIT */
/* DPDK rivals of the Grid groups, in a plugin (unimem-bench-dpdk.so) so that the installed
 * `unimem` command does not depend on DPDK: rte_mempool with a per-thread cache (DPDK's
 * fast path: each thread owns an rte_mempool_cache, as an lcore owns its per-lcore cache)
 * and a bare rte_ring (MPMC) of free cells. The EAL runs without shared config files, huge pages or
 * devices, on one lcore; the calling thread's CPU affinity is put back after its start.
 * Neither rival checks a give. */
#define _GNU_SOURCE
#include "grid_candidates.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the EAL, once ----------------------------------------------------------------- */

static pthread_once_t eal_once = PTHREAD_ONCE_INIT;
static int eal_err;

/* At exit: the EAL's resources, and the runtime folder it made (/var/run/dpdk/<prefix>). */
static void eal_stop(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	rmdir(dir);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		rmdir(dir); /* /var/run/dpdk, when nothing else uses it */
	}
}

static void eal_start(void)
{
	cpu_set_t set;
	int have = sched_getaffinity(0, sizeof set, &set) == 0;
	char *argv[] = { "unimem-bench", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
			 "--no-telemetry", "--iova-mode=va", "--file-prefix=unimem-bench", "-l", "0", "--log-level=3", NULL };
	int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
	if (rte_eal_init(argc, argv) < 0)
		eal_err = -(rte_errno ? rte_errno : EIO);
	else
		atexit(eal_stop);
	if (have)
		sched_setaffinity(0, sizeof set, &set);
}

static int eal(void)
{
	pthread_once(&eal_once, eal_start);
	return eal_err;
}

/* ---- rte_mempool with a per-thread cache ------------------------------------------------ */

#define DP_CACHES 128

struct dp_pool {
	struct rte_mempool *mp;
	unsigned gen;        /* this pool's number: threads' caches are per pool */
	unsigned cache_size;
	pthread_mutex_t lock;
	int ncaches;
	struct rte_mempool_cache *caches[DP_CACHES];
};

static unsigned dp_gens;
static __thread struct {
	unsigned gen;
	struct rte_mempool_cache *c;
} dp_tls;

static __attribute__((noinline)) struct rte_mempool_cache *dp_cache_new(struct dp_pool *p)
{
	struct rte_mempool_cache *c = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->ncaches < DP_CACHES) {
		c = rte_mempool_cache_create(p->cache_size, SOCKET_ID_ANY);
		if (c)
			p->caches[p->ncaches++] = c;
	}
	pthread_mutex_unlock(&p->lock);
	dp_tls.gen = p->gen;
	dp_tls.c = c; /* NULL: no cache (the ring itself) */
	return c;
}

static inline struct rte_mempool_cache *dp_cache(struct dp_pool *p)
{
	return __builtin_expect(dp_tls.gen == p->gen, 1) ? dp_tls.c : dp_cache_new(p);
}

static void dp_close(void *pool)
{
	struct dp_pool *p = pool;
	if (!p)
		return;
	for (int i = 0; i < p->ncaches; i++) {
		rte_mempool_cache_flush(p->caches[i], p->mp);
		rte_mempool_cache_free(p->caches[i]);
	}
	rte_mempool_free(p->mp);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int dp_open(void **pool, size_t cell, size_t count)
{
	*pool = NULL;
	int e = eal();
	if (e)
		return e;
	struct dp_pool *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->gen = __atomic_add_fetch(&dp_gens, 1, __ATOMIC_RELAXED);
	p->cache_size = count / 8 < 256 ? (unsigned)(count / 8) : 256;
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof name, "umb%u", p->gen);
	/* Cells 64-byte aligned like the Grid's; the pool's own per-lcore cache is off (0):
	 * the threads here are not lcores, each brings its own cache. */
	p->mp = rte_mempool_create(name, (unsigned)count, (unsigned)cell, 0, 0, NULL, NULL, NULL,
				   NULL, SOCKET_ID_ANY, 0);
	if (!p->mp) {
		e = -(rte_errno ? rte_errno : ENOMEM);
		free(p);
		return e;
	}
	*pool = p;
	return 0;
}

static inline void *dp_take(struct dp_pool *p)
{
	void *obj;
	return rte_mempool_generic_get(p->mp, &obj, 1, dp_cache(p)) == 0 ? obj : NULL;
}

static inline int dp_give(struct dp_pool *p, void *obj)
{
	rte_mempool_generic_put(p->mp, &obj, 1, dp_cache(p));
	return 0;
}

GRID_CANDIDATE_LOOPS(dp, struct dp_pool, dp_take, dp_give)

static const struct grid_candidate grid_mempool = {
	.name = "DPDK rte_mempool + per-thread cache",
	.opened_by = "rte_eal_init / rte_mempool_create",
	.open = dp_open, .close = dp_close, GRID_CANDIDATE_FNS(dp), .shared = true,
};

/* ---- rte_ring of free cells ------------------------------------------------------------ */

struct dr_pool {
	struct rte_ring *r;
	unsigned char *mem;
};

static void dr_close(void *pool)
{
	struct dr_pool *p = pool;
	if (!p)
		return;
	free(p->r);
	free(p->mem);
	free(p);
}

static int dr_open(void **pool, size_t cell, size_t count)
{
	*pool = NULL;
	struct dr_pool *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	unsigned size = 1; /* a power of two, above count: the ring holds size - 1 */
	while (size <= count)
		size <<= 1;
	ssize_t bytes = rte_ring_get_memsize(size);
	p->r = bytes > 0 ? aligned_alloc(RTE_CACHE_LINE_SIZE, (size_t)bytes) : NULL;
	p->mem = aligned_alloc(64, cell * count);
	if (!p->r || !p->mem || rte_ring_init(p->r, "umb", size, 0) != 0) {
		dr_close(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++)
		rte_ring_mp_enqueue(p->r, p->mem + i * cell);
	*pool = p;
	return 0;
}

static inline void *dr_take(struct dr_pool *p)
{
	void *obj;
	return rte_ring_mc_dequeue(p->r, &obj) == 0 ? obj : NULL;
}

static inline int dr_give(struct dr_pool *p, void *obj)
{
	return rte_ring_mp_enqueue(p->r, obj) == 0 ? 0 : -1;
}

GRID_CANDIDATE_LOOPS(dr, struct dr_pool, dr_take, dr_give)

static const struct grid_candidate grid_ring = {
	.name = "DPDK rte_ring MPMC (no cache)", .opened_by = "rte_ring_init",
	.open = dr_open, .close = dr_close, GRID_CANDIDATE_FNS(dr), .shared = true,
};

/* ---- the plugin's entry --------------------------------------------------------------- */

static const struct grid_candidate *const list[] = { &grid_mempool, &grid_ring, NULL };

__attribute__((visibility("default"))) const struct grid_candidate *const *
umb_grid_plugin(int abi)
{
	return abi == GRID_PLUGIN_ABI ? list : NULL;
}
