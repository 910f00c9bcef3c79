/* SPDX-License-Identifier: MIT */
/* A small timing harness of `unimem bench`, which the benchmarks in bench/ use too.
 * Header-only. Method: warm up, then time several repetitions (contenders interleaved
 * within each repetition, so that noise from the machine falls on all of them alike),
 * and report the median with the spread (min, quartiles, max).
 * Nothing here is part of the library: the names carry the umb_ prefix. */
#ifndef UNIMEM_TOOLS_HARNESS_H
#define UNIMEM_TOOLS_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Compiler barriers: nothing is optimised away or moved across them; no instruction
 * is emitted. */
#define UMB_CLOBBER() __asm__ __volatile__("" ::: "memory")
/* The compiler must assume `x` is read here (the value is materialised). */
#define UMB_USE(x) __asm__ __volatile__("" : : "r"(x))
/* The compiler must assume `x` is read and changed here (no constant folding through it). */
#define UMB_OPAQUE(x) __asm__ __volatile__("" : "+r"(x))

/* Monotonic time in nanoseconds (vDSO clock_gettime: ~20 ns a call; time batches). */
static inline double umb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The same in milliseconds. */
static inline double umb_now_ms(void)
{
	return umb_now_ns() / 1e6;
}

/* On-CPU time of the calling thread in nanoseconds (to tell a quiet run from one during
 * which another process took the CPU). */
static inline double umb_thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Summary of a set of samples. */
struct umb_stats {
	double median, min, max, q1, q3;
	int n;
};

static int umb_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Quantile q in [0, 1] of sorted v[0..n), linear between neighbours. */
static inline double umb_quantile(const double *v, int n, double q)
{
	if (n <= 0)
		return 0;
	double pos = q * (n - 1);
	int i = (int)pos;
	if (i >= n - 1)
		return v[n - 1];
	return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* Sorts v in place and summarises it. */
static inline struct umb_stats umb_stats_of(double *v, int n)
{
	struct umb_stats s;
	memset(&s, 0, sizeof s);
	s.n = n;
	if (n <= 0)
		return s;
	qsort(v, (size_t)n, sizeof *v, umb_cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.median = umb_quantile(v, n, 0.5);
	s.q1 = umb_quantile(v, n, 0.25);
	s.q3 = umb_quantile(v, n, 0.75);
	return s;
}

/* Median of v[0..n) (sorts v in place; the mean of the two middle values when n is even). */
static inline double umb_median(double *v, int n)
{
	return umb_stats_of(v, n).median;
}

/* Scale every field (e.g. total time of a batch -> time per operation). */
static inline struct umb_stats umb_stats_scale(struct umb_stats s, double k)
{
	s.median *= k;
	s.min *= k;
	s.max *= k;
	s.q1 *= k;
	s.q3 *= k;
	return s;
}

#endif
