/* SPDX-License-Identifier: MIT */
/* `unimem bench`: the pinned worker team (workers.h). */
#define _GNU_SOURCE
#include "workers.h"

#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

static struct {
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	uint64_t gen;        /* job number, under lock */
	int n, running;      /* workers of this job, those not yet done (under lock) */
	workers_fn *fn;
	void *ctx;
	int arrived;         /* spin barrier (atomic) */
	bool failed;         /* some job returned false (under lock) */
	double t0[WORKERS_MAX], t1[WORKERS_MAX];
	pthread_t th[WORKERS_MAX];
	int started;
	bool pinned;
	int cpu[WORKERS_MAX];
	int ncpu;
	bool masked;         /* cpu[] is the affinity mask (read), not a stand-in */
} team = { .lock = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
	    .done = PTHREAD_COND_INITIALIZER };

int workers_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

bool workers_pinned(void)
{
	return team.pinned;
}

static void *worker(void *arg)
{
	int w = (int)(intptr_t)arg;
	uint64_t seen = 0;
	for (;;) {
		pthread_mutex_lock(&team.lock);
		while (team.gen == seen)
			pthread_cond_wait(&team.go, &team.lock);
		seen = team.gen;
		if (w >= team.n) { /* a job without this worker */
			pthread_mutex_unlock(&team.lock);
			continue;
		}
		workers_fn *fn = team.fn;
		void *ctx = team.ctx;
		int n = team.n;
		pthread_mutex_unlock(&team.lock);

		/* Start together: the job's workers wait for each other here, spinning. */
		__atomic_add_fetch(&team.arrived, 1, __ATOMIC_ACQ_REL);
		while (__atomic_load_n(&team.arrived, __ATOMIC_ACQUIRE) < n)
			__builtin_ia32_pause();
		team.t0[w] = umb_now_ns();
		bool ok = fn(ctx, w, n);
		team.t1[w] = umb_now_ns();

		pthread_mutex_lock(&team.lock);
		team.failed |= !ok;
		if (--team.running == 0)
			pthread_cond_signal(&team.done);
		pthread_mutex_unlock(&team.lock);
	}
	return NULL;
}

/* The CPUs the workers are pinned to, in order (once). */
static void cpus_init(void)
{
	if (team.ncpu)
		return;
	cpu_set_t set;
	team.pinned = true;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && team.ncpu < WORKERS_MAX; c++)
			if (CPU_ISSET(c, &set))
				team.cpu[team.ncpu++] = c;
	team.masked = team.ncpu > 0;
	if (!team.ncpu) {
		team.ncpu = 1;
		team.pinned = false;
	}
}

int workers_cpu(int w)
{
	cpus_init();
	return team.masked && w >= 0 && w < team.ncpu ? team.cpu[w] : -1;
}

static bool start(int n)
{
	cpus_init();
	for (; team.started < n; team.started++) {
		int w = team.started;
		if (pthread_create(&team.th[w], NULL, worker, (void *)(intptr_t)w) != 0)
			return false;
		pthread_detach(team.th[w]);
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(team.cpu[w % team.ncpu], &one);
		if (pthread_setaffinity_np(team.th[w], sizeof one, &one) != 0)
			team.pinned = false;
	}
	return true;
}

double workers_run(int n, workers_fn *fn, void *ctx)
{
	if (n < 1 || n > WORKERS_MAX || !start(n))
		return -1;
	pthread_mutex_lock(&team.lock);
	team.fn = fn;
	team.ctx = ctx;
	team.n = n;
	team.running = n;
	team.failed = false;
	__atomic_store_n(&team.arrived, 0, __ATOMIC_RELEASE);
	team.gen++;
	pthread_cond_broadcast(&team.go);
	while (team.running > 0)
		pthread_cond_wait(&team.done, &team.lock);
	bool failed = team.failed;
	pthread_mutex_unlock(&team.lock);
	double lo = team.t0[0], hi = team.t1[0];
	for (int w = 1; w < n; w++) {
		lo = team.t0[w] < lo ? team.t0[w] : lo;
		hi = team.t1[w] > hi ? team.t1[w] : hi;
	}
	return failed ? -1 : hi - lo;
}
