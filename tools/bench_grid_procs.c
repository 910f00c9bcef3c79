/* SPDX-License-Identifier: MIT */
/* `unimem bench` Grid groups across processes (issue 15's targets):
 *   grid_procs    take+give pairs on one 64 B x 4096 generated pool: 2 threads of one
 *                 process against 2 processes (a fork's child uses the pool through its
 *                 own attachment), each pinned to a CPU of its own
 *   grid_reclaim  unimem_grid_reclaim() of 100,000 cells held by a process killed with them
 * ms / ns of the wall clock. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "bench.h"
#include "grid_candidates.h"
#include "workers.h"

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECLAIM_CELLS 100000

/* Whether this build cannot fork here (the rows are then skipped, saying why): under
 * ThreadSanitizer (UMB_TSAN, grid_candidates.h) fork() aborts once the command has loaded
 * jemalloc as a malloc family, whose prefork handler takes more locks than TSan's deadlock
 * detector can track. */
static bool cannot_fork(struct row *const *rows, int n)
{
#ifdef UMB_TSAN
	for (int k = 0; k < n; k++)
		row_skip(rows[k], "not in a sanitizer build: ThreadSanitizer aborts in fork() once "
				  "jemalloc is loaded (its prefork handler takes more locks than TSan "
				  "tracks)");
	return true;
#else
	(void)rows;
	(void)n;
	return false;
#endif
}

struct pairs_job {
	const struct grid_candidate *c;
	void *pool;
	long n;
};

static bool pairs_run(void *ctx, int w, int n)
{
	(void)w;
	(void)n;
	struct pairs_job *j = ctx;
	return j->c->pairs(j->pool, j->n);
}

static bool read_all(int fd, void *p, size_t n)
{
	return read(fd, p, n) == (ssize_t)n;
}

/* n pairs on worker 0 here while a fork's child does n pairs on CPU `cpu` through its own
 * attachment (warmed up before the start); ns per pair per process, the mean of the two, or
 * NaN. The child closes the pool before it exits: its slot's cells go back. */
static double two_processes(struct pairs_job *j, int cpu)
{
	int go[2], back[2];
	if (pipe(go) != 0)
		return NAN;
	if (pipe(back) != 0) {
		close(go[0]);
		close(go[1]);
		return NAN;
	}
	pid_t pid = fork();
	if (pid == 0) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(0, sizeof one, &one);
		double ns = NAN;
		char c = j->c->pairs(j->pool, 1000) ? 1 : 0; /* its attachment and slot first */
		if (write(back[1], &c, 1) != 1 || !read_all(go[0], &c, 1))
			_exit(1);
		double t0 = umb_now_ns();
		if (j->c->pairs(j->pool, j->n))
			ns = (umb_now_ns() - t0) / (double)j->n;
		j->c->close(j->pool); /* its slot's cells and its attachment go back */
		_exit(write(back[1], &ns, sizeof ns) == sizeof ns ? 0 : 1);
	}
	close(go[0]);
	close(back[1]);
	double mine = NAN, theirs = NAN;
	char c = 0;
	if (pid > 0 && read_all(back[0], &c, 1) && c == 1 && write(go[1], &c, 1) == 1) {
		double ns = workers_run(1, pairs_run, j);
		if (ns >= 0)
			mine = ns / (double)j->n;
		if (!read_all(back[0], &theirs, sizeof theirs))
			theirs = NAN;
	}
	close(go[1]);
	close(back[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return (mine + theirs) / 2;
}

static void bench_procs(const struct grid_candidate *c, int reps, double target_ms)
{
	struct group *g = group_new("grid_procs", "ns", 1);
	snprintf(g->title, sizeof g->title, "Grid: 2 processes on one pool");
	snprintf(g->note, sizeof g->note, "per take+give pair, per thread or process, 64 B x 4096 "
		 "cells, %s; the second process is a fork's child with an attachment of its own. "
		 "Ratio: row / first row (issue 15: <= 1.5).", c->name);
	g->base = 0;
	struct row *r0 = row_new(g, "2 threads of one process");
	struct row *r1 = row_new(g, "2 processes");
	if (cannot_fork((struct row *[]){ r0, r1 }, 2))
		return;
	int cpu = workers_cpu(1); /* the child's: worker 0 runs this process's pairs */
	void *pool = NULL;
	int e = cpu < 0 ? 0 : c->open(&pool, 64, 4096);
	if (cpu < 0 || e) {
		const char *why = cpu < 0 ? "one CPU" : unimem_strerror(e);
		row_skip(r0, "%s", why);
		row_skip(r1, "%s", why);
		return;
	}
	static double s[2][MAX_REPS];
	bool bad[2] = { false, false };
	struct pairs_job j = { c, pool, 20000 };
	progress("grid_procs: %d repetitions", reps);
	for (int rep = -2; rep < reps; rep++) {
		for (int k = 0; k < 2; k++) {
			int which = (k + rep + 2) % 2;
			if (bad[which])
				continue;
			double t = NAN;
			if (which == 0) {
				double ns = workers_run(2, pairs_run, &j);
				t = ns >= 0 ? ns / (double)j.n : NAN;
			} else {
				t = two_processes(&j, cpu);
			}
			if (!isfinite(t)) {
				bad[which] = true;
				continue;
			}
			if (rep == -2 && which == 0) { /* calibrate: each run about target_ms */
				double ops = target_ms * 1e6 / (t > 0.05 ? t : 0.05);
				j.n = ops < 1000 ? 1000 : ops > 5e7 ? 50000000 : (long)ops;
			}
			if (rep >= 0)
				s[which][rep] = t;
		}
	}
	rows_finish(g, 2, s, bad, reps, "a take found nothing, a give was refused or a fork failed");
	c->close(pool);
}

/* A child takes every cell of g, says so, and is killed; then the reclaim is timed. Its
 * time in ms, or NaN when the reclaim did not return every cell. */
static double reclaim_once(unimem_grid *g)
{
	int back[2];
	if (pipe(back) != 0)
		return NAN;
	pid_t pid = fork();
	if (pid == 0) {
		long n = 0;
		while (unimem_grid_take(g))
			n++;
		char c = n == RECLAIM_CELLS;
		if (write(back[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(back[1]);
	char c = 0;
	bool ok = pid > 0 && read_all(back[0], &c, 1) && c == 1;
	close(back[0]);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (!ok)
		return NAN;
	double t0 = umb_now_ns();
	int64_t got = unimem_grid_reclaim(g);
	double ms = (umb_now_ns() - t0) / 1e6;
	return got == RECLAIM_CELLS && unimem_grid_available(g) == RECLAIM_CELLS ? ms : NAN;
}

static void bench_reclaim(int reps)
{
	struct group *g = group_new("grid_reclaim", "ms", 1);
	snprintf(g->title, sizeof g->title, "Grid: reclaim after a holder was killed");
	snprintf(g->note, sizeof g->note, "unimem_grid_reclaim() of the %d cells (64 B) that a "
		 "process took and was SIGKILLed with: every cell back (issue 15: <= 1 ms per "
		 "100,000 cells).", RECLAIM_CELLS);
	g->base = -1;
	struct row *r = row_new(g, "unimem_grid_reclaim, 100,000 cells");
	if (cannot_fork(&r, 1))
		return;
	unimem_grid *pool;
	int e = unimem_grid_open(&pool, 64, RECLAIM_CELLS);
	if (e) {
		row_skip(r, "unimem_grid_open: %s", unimem_strerror(e));
		return;
	}
	static double s[1][MAX_REPS];
	bool bad[1] = { false };
	progress("grid_reclaim: %d repetitions", reps);
	for (int rep = 0; rep < reps && !bad[0]; rep++) {
		double t = reclaim_once(pool);
		if (!isfinite(t))
			bad[0] = true;
		else
			s[0][rep] = t;
	}
	rows_finish(g, 1, s, bad, reps, "the reclaim did not return every cell, or a fork failed");
	unimem_grid_close(pool);
}

void bench_grid_procs(int reps, bool quick)
{
	bench_procs(grid_candidates[0], reps, quick ? 1.5 : 4);
	bench_reclaim(reps);
}
