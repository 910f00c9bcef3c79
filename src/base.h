/* SPDX-License-Identifier: MIT */
/* What every file of src/ may use and that belongs to no layer: rounding, the error-detail
 * channel (errors.c) and the parallel helper (parallel.c). Never installed. */
#ifndef UNIMEM_BASE_H
#define UNIMEM_BASE_H

#include <unimem/unimem.h>

/* Round `n` up to a multiple of the power of two `to`; 0 when that overflows. */
static inline size_t umi_round_up(size_t n, size_t to)
{
	if (n > SIZE_MAX - (to - 1))
		return 0;
	return (n + to - 1) & ~(to - 1);
}

/* The error-detail channel (errors.c, which calls no other file). At the point of a
 * failure, record for this thread what exactly went wrong; unimem_strerror() of the same
 * code then says it instead of the list of every cause of that code. Returns `err` (a
 * negative errno; either sign is accepted), so that `return umi_fail(-EPERM, ...);` reads
 * as the failure it is. Thread-safe (thread-local), never fails (long text is cut). */
int umi_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget this thread's detail (a call that starts over, such as a GPU map). */
void umi_fail_clear(void);

/* This thread's detail of code err (either sign), or "" when none was recorded for it. */
const char *umi_fail_detail(int err);

/* Run fn(arg, piece, worker) once for every piece in [0, pieces), in claim order: the
 * calling thread (worker 0) and up to `max_helpers` helper threads (workers 1...), as many
 * as there are idle CPUs (umi_os_idle_cpus(), not asked when max_helpers or pieces - 1 is
 * 0) and at most pieces - 1, claim pieces one at a time until none is left. The first
 * error (a negative errno returned by fn) stops the claims; the call returns it once every
 * helper has been joined, or 0. A helper that cannot start leaves its pieces to the
 * others. parallel.c. */
int umi_parallel(size_t pieces, int (*fn)(void *arg, size_t piece, unsigned worker), void *arg,
		 unsigned max_helpers);

#endif
