/* SPDX-License-Identifier: MIT */
/* `unimem bench`: a team of worker threads, each pinned to its own CPU, that run one job
 * together and time it (the Grid's patterns with threads, bench_grid.c). The threads live
 * for the whole run, so a job's time holds no thread start-up. */
#ifndef UNIMEM_TOOLS_WORKERS_H
#define UNIMEM_TOOLS_WORKERS_H

#include <stdbool.h>

#define WORKERS_MAX 64

/* A job: worker w of n (0 <= w < n); false when it failed. */
typedef bool workers_fn(void *ctx, int w, int n);

/* Run fn on workers 0..n-1 (started on first use, pinned to the CPUs this process may use,
 * in order, round robin); they start together (a spin barrier) and each times itself.
 * Returns the wall time in ns from the first start to the last end, or a negative number
 * when a worker could not be started or a job returned false. */
double workers_run(int n, workers_fn *fn, void *ctx);

/* CPUs this process may run on (its affinity mask). */
int workers_cpus(void);

/* The CPU worker w is pinned to, where it is a CPU of its own (w < workers_cpus()), else -1
 * (also where the affinity mask could not be read). */
int workers_cpu(int w);

/* Whether the workers are pinned (false: pthread_setaffinity_np failed, e.g. in a
 * container that forbids it); after the first workers_run(). */
bool workers_pinned(void);

#endif
