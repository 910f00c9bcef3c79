/* SPDX-License-Identifier: MIT */
/* `unimem bench` groups over the Tape: take on one thread and on two threads sharing one
 * Tape, against the malloc families, and clear against a release store. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "bench.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Tape take, one thread --------------------------------------------------------- */

static __attribute__((noinline)) void tb_take(unimem_tape *t, void **ptr, long batches)
{
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = unimem_tape_take(t, TAKE_SIZE, TAKE_ALIGN);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		unimem_tape_clear(t);
		UMB_CLOBBER();
	}
}

static __attribute__((noinline)) void tb_owned(unimem_tape *t, void **ptr, long batches)
{
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = unimem_tape_take_owned(t, TAKE_SIZE, TAKE_ALIGN);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		unimem_tape_clear(t);
		UMB_CLOBBER();
	}
}

static __attribute__((noinline)) void tb_chunk(unimem_tape *t, void **ptr, long batches)
{
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 0);
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = unimem_tape_chunk_take(&c, TAKE_SIZE, TAKE_ALIGN);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		unimem_tape_clear(t);
		unimem_tape_chunk_reset(&c);
		UMB_CLOBBER();
	}
}

__attribute__((noinline)) void tb_malloc(const struct allocator *a, void **ptr,
						long batches)
{
	void *(*m)(size_t) = a->malloc_fn;
	void (*f)(void *) = a->free_fn;
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = m(TAKE_SIZE);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		UMB_CLOBBER();
		for (int i = 0; i < BATCH; i++)
			f(ptr[i]);
		UMB_CLOBBER();
	}
}

enum { TB_TAKE, TB_OWNED, TB_CHUNK, TB_MALLOC0 };

static bool tb_run(int k, unimem_tape *t, void **ptr, long batches)
{
	if (k == TB_TAKE)
		tb_take(t, ptr, batches);
	else if (k == TB_OWNED)
		tb_owned(t, ptr, batches);
	else if (k == TB_CHUNK)
		tb_chunk(t, ptr, batches);
	else
		tb_malloc(&allocs[k - TB_MALLOC0], ptr, batches);
	return ptr[0] && ptr[BATCH - 1];
}

void bench_tape(int reps, long batches)
{
	struct group *g = group_new("tape_take", "ns", 1);
	snprintf(g->title, sizeof g->title,
		 "Tape take (%d B, align %d) vs malloc+free, one thread", TAKE_SIZE, TAKE_ALIGN);
	snprintf(g->note, sizeof g->note,
		 "per operation: %d takes then one clear (Tape rows), or %d mallocs then %d frees "
		 "(malloc rows; one operation = one malloc + one free). Ratios: row / "
		 "unimem_tape_take.", BATCH, BATCH, BATCH);
	g->base = TB_TAKE;
	row_new(g, "unimem_tape_take (thread-safe)");
	row_new(g, "unimem_tape_take_owned (one owner)");
	row_new(g, "unimem_tape_chunk_take (per thread)");
	int n = TB_MALLOC0 + ALLOC_COUNT;
	for (int a = 0; a < ALLOC_COUNT; a++) {
		struct row *r = row_new(g, allocs[a].name);
		if (!allocs[a].present)
			row_skip(r, "%s: skipped", allocs[a].note);
		else if (a != ALLOC_GLIBC)
			snprintf(r->note, sizeof r->note, "dlopen %s%s", allocs[a].note,
				 a == ALLOC_JEMALLOC && getenv(REEXEC_MARK)
					 ? " (re-run with GLIBC_TUNABLES=" STATIC_TLS_TUNABLE ")"
					 : "");
	}
	unimem_tape *t = NULL;
	int e = unimem_tape_start(&t, 1u << 20);
	if (e)
		e = unimem_tape_start_flags(&t, 1u << 20, UNIMEM_BLOCK_UNPINNED);
	if (e) {
		g->skipped = true;
		snprintf(g->note, sizeof g->note, "no Tape: %s", unimem_strerror(e));
		return;
	}
	static double s[MAX_ROWS][MAX_REPS];
	void *ptr[BATCH];
	bool bad[MAX_ROWS] = { false };
	for (int r = -2; r < reps; r++) {
		if (r == -2 || (r >= 0 && r % 8 == 0))
			progress("tape take: repetition %d of %d", r < 0 ? 0 : r + 1, reps);
		for (int j = 0; j < n; j++) {
			int k = (j + r + 2) % n;
			if (g->rows[k].skipped)
				continue;
			double t0 = umb_now_ns();
			bool ok = tb_run(k, t, ptr, r < 0 ? batches / 4 + 1 : batches);
			double t1 = umb_now_ns();
			bad[k] |= !ok;
			if (r >= 0)
				s[k][r] = (t1 - t0) / ((double)batches * BATCH);
		}
	}
	rows_finish(g, n, s, bad, reps, "an allocation failed");
	unimem_tape_close(t);
}

/* ---- Tape take, N threads on one Tape ------------------------------------------------ */

#define TW_MAX 64 /* threads at most */

/* TW_ALONE: the shared-cursor take on thread 0 only, the others idle (the base). */
enum { TW_ALONE, TW_SHARED, TW_CHUNK, TW_MALLOC0 };

struct tw_shared {
	pthread_barrier_t start, done;
	int arrived;         /* spin start: all threads begin at once */
	int nthreads;
	double t_start[TW_MAX], t_end[TW_MAX];
	int kind;
	bool quit;
	unimem_tape *tape;
	long batches;
	double ns[TW_MAX];
	bool ok[TW_MAX];
};

static __attribute__((noinline)) bool tw_shared_run(unimem_tape *t, void **ptr, long batches)
{
	bool ok = true;
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = unimem_tape_take(t, TAKE_SIZE, TAKE_ALIGN);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		ok &= ptr[BATCH - 1] != NULL;
		UMB_CLOBBER();
	}
	return ok;
}

static __attribute__((noinline)) bool tw_chunk_run(unimem_tape *t, void **ptr, long batches)
{
	bool ok = true;
	unimem_tape_chunk c;
	unimem_tape_chunk_init(&c, t, 0);
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = unimem_tape_chunk_take(&c, TAKE_SIZE, TAKE_ALIGN);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		ok &= ptr[BATCH - 1] != NULL;
		UMB_CLOBBER();
	}
	return ok;
}

struct tw_arg {
	struct tw_shared *sh;
	int id;
};

static void *tw_worker(void *arg)
{
	struct tw_arg *a = arg;
	struct tw_shared *sh = a->sh;
	void *ptr[BATCH];
	for (;;) {
		pthread_barrier_wait(&sh->start);
		if (sh->quit)
			break;
		bool ok = true;
		/* Waking from the barrier takes tens of microseconds: spin until all threads
		 * are awake, so that they really take at the same time. */
		__atomic_fetch_add(&sh->arrived, 1, __ATOMIC_ACQ_REL);
		while (__atomic_load_n(&sh->arrived, __ATOMIC_ACQUIRE) < sh->nthreads)
			;
		double t0 = umb_now_ns();
		if (sh->kind == TW_ALONE) {
			ok = a->id != 0 || tw_shared_run(sh->tape, ptr, sh->batches);
		} else if (sh->kind == TW_SHARED) {
			ok = tw_shared_run(sh->tape, ptr, sh->batches);
		} else if (sh->kind == TW_CHUNK) {
			ok = tw_chunk_run(sh->tape, ptr, sh->batches);
		} else {
			tb_malloc(&allocs[sh->kind - TW_MALLOC0], ptr, sh->batches);
			ok = ptr[0] != NULL;
		}
		double t1 = umb_now_ns();
		sh->ns[a->id] = t1 - t0;
		sh->t_start[a->id] = t0;
		sh->t_end[a->id] = t1;
		sh->ok[a->id] = ok;
		pthread_barrier_wait(&sh->done);
	}
	return NULL;
}

void bench_threads(int reps, long batches, int nth)
{
	static char ids[2][32];
	if (nth < 2)
		nth = 2;
	if (nth > TW_MAX)
		nth = TW_MAX;
	char *id = ids[nth != 2];
	snprintf(id, sizeof ids[0], nth == 2 ? "tape_take_2threads" : "tape_take_nthreads");
	struct group *g = group_new(id, "ns", 1);
	snprintf(g->title, sizeof g->title,
		 "Tape take (%d B, align %d), %d threads on one Tape, per take per thread",
		 TAKE_SIZE, TAKE_ALIGN, nth);
	snprintf(g->note, sizeof g->note,
		 "each thread: %ld x %d takes (or mallocs then frees) at once with the others; "
		 "time per operation per thread, the mean of the threads (the first row: one "
		 "thread alone). Ratios: row / one thread alone (target for the shared cursor: "
		 "<= 1.5x).", batches, BATCH);
	g->base = TW_ALONE;
	row_new(g, "unimem_tape_take, 1 thread alone");
	row_new(g, "unimem_tape_take (shared cursor)");
	row_new(g, "unimem_tape_chunk_take (per-thread chunk)");
	int n = TW_MALLOC0 + ALLOC_COUNT;
	for (int a = 0; a < ALLOC_COUNT; a++) {
		struct row *r = row_new(g, allocs[a].name);
		if (!allocs[a].present)
			row_skip(r, "%s: skipped", allocs[a].note);
	}
	/* Takes never touch the memory: a big lazy Tape costs nothing. */
	size_t need = (size_t)nth * (size_t)batches * BATCH * TAKE_SIZE +
		      (size_t)(2 * nth) * ((size_t)1 << 20); /* a grab per thread, up to 1 MiB */
	unimem_tape *t = NULL;
	int e = unimem_tape_start_flags(&t, need, UNIMEM_BLOCK_UNPINNED);
	if (e) {
		g->skipped = true;
		snprintf(g->note, sizeof g->note, "no Tape: %s", unimem_strerror(e));
		return;
	}
	struct tw_shared sh;
	memset(&sh, 0, sizeof sh);
	sh.tape = t;
	sh.nthreads = nth;
	pthread_barrier_init(&sh.start, NULL, (unsigned)nth + 1);
	pthread_barrier_init(&sh.done, NULL, (unsigned)nth + 1);
	static pthread_t th[TW_MAX];
	static struct tw_arg args[TW_MAX];
	int started = 0;
	for (; started < nth; started++) {
		args[started] = (struct tw_arg){ &sh, started };
		if (pthread_create(&th[started], NULL, tw_worker, &args[started]) != 0)
			break;
	}
	if (started < nth) {
		/* Cannot happen on a sane system; leave the threads parked forever. */
		g->skipped = true;
		snprintf(g->note, sizeof g->note, "could not start %d threads", nth);
		return;
	}
	static double s[MAX_ROWS][MAX_REPS], ov[MAX_ROWS][MAX_REPS], cc[MAX_ROWS][MAX_REPS];
	bool bad[MAX_ROWS] = { false };
	for (int r = -1; r < reps; r++) {
		if (r < 0 || r % 4 == 0)
			progress("%d threads: repetition %d of %d", nth, r < 0 ? 0 : r + 1, reps);
		for (int j = 0; j < n; j++) {
			int k = (j + r + 1) % n;
			if (g->rows[k].skipped)
				continue;
			unimem_tape_clear(t); /* the workers are parked: no take runs now */
			sh.kind = k;
			sh.arrived = 0;
			sh.batches = r < 0 ? batches / 4 + 1 : batches;
			pthread_barrier_wait(&sh.start);
			pthread_barrier_wait(&sh.done);
			int busy = k == TW_ALONE ? 1 : nth; /* threads that took */
			double sum = 0, lo = sh.t_start[0], hi = sh.t_end[0], span = 0;
			double first = sh.t_start[0], last = sh.t_end[0];
			for (int i = 0; i < busy; i++) {
				bad[k] |= !sh.ok[i];
				sum += sh.ns[i];
				lo = sh.t_start[i] > lo ? sh.t_start[i] : lo;
				hi = sh.t_end[i] < hi ? sh.t_end[i] : hi;
				span = sh.ns[i] > span ? sh.ns[i] : span;
				first = sh.t_start[i] < first ? sh.t_start[i] : first;
				last = sh.t_end[i] > last ? sh.t_end[i] : last;
			}
			if (r >= 0) {
				s[k][r] = sum / busy / ((double)batches * BATCH);
				/* How much of the runs overlapped in time (all of them at once). */
				ov[k][r] = hi > lo && span > 0 ? (hi - lo) / span : 0;
				/* How many threads ran at once on average: their busy time over
				 * the span from the first start to the last end. */
				cc[k][r] = last > first ? sum / (last - first) : 1;
			}
		}
	}
	sh.quit = true;
	pthread_barrier_wait(&sh.start);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&sh.start);
	pthread_barrier_destroy(&sh.done);
	for (int k = 0; k < n; k++) {
		if (g->rows[k].skipped)
			continue;
		if (bad[k]) {
			row_skip(&g->rows[k], "an allocation failed");
			continue;
		}
		g->rows[k].m[0] = umb_stats_of(s[k], reps);
		struct umb_stats o = umb_stats_of(ov[k], reps), c = umb_stats_of(cc[k], reps);
		if (k != TW_ALONE)
			snprintf(g->rows[k].note, sizeof g->rows[k].note,
				 "all %d at once %.0f%% of the time; %.1f running on average", nth,
				 o.median * 100, c.median);
	}
	unimem_tape_close(t);
}

/* ---- clear ------------------------------------------------------------------------- */

#define X8(s) s s s s s s s s

static __attribute__((noinline)) void cl_tape(unimem_tape *t, long n8)
{
	for (long i = 0; i < n8; i++) {
		X8(unimem_tape_clear(t); UMB_CLOBBER();)
	}
}

static __attribute__((noinline)) void cl_pass(unimem_layout *l, long n8)
{
	for (long i = 0; i < n8; i++) {
		X8(unimem_layout_clear_pass(l); UMB_CLOBBER();)
	}
}

static __attribute__((noinline)) void cl_talk(unimem_layout *l, long n8)
{
	for (long i = 0; i < n8; i++) {
		X8(unimem_layout_clear_talk(l); UMB_CLOBBER();)
	}
}

static __attribute__((noinline)) void cl_store(uint64_t *x, long n8)
{
	for (long i = 0; i < n8; i++) {
		X8(__atomic_store_n(x, 0, __ATOMIC_RELEASE); UMB_CLOBBER();)
	}
}

void bench_clear(int reps, long n8)
{
	struct group *g = group_new("clear", "ns", 1);
	snprintf(g->title, sizeof g->title, "Tape clear, per clear");
	snprintf(g->note, sizeof g->note,
		 "%ld clears in a row (8 a loop turn, a compiler barrier between each). "
		 "Ratios: row / unimem_tape_clear.", n8 * 8);
	g->base = 0;
	row_new(g, "unimem_tape_clear (inline)");
	row_new(g, "unimem_layout_clear_pass (call)");
	row_new(g, "unimem_layout_clear_talk (call)");
	row_new(g, "release store of 0 (anchor)");
	unimem_layout *l = NULL;
	int e = unimem_layout_open_flags(&l, 1u << 16, 1u << 16, 1u << 16, UNIMEM_BLOCK_UNPINNED);
	if (e) {
		g->skipped = true;
		snprintf(g->note, sizeof g->note, "no Layout: %s", unimem_strerror(e));
		return;
	}
	uint64_t word __attribute__((aligned(64))) = 1;
	static double s[4][MAX_REPS];
	for (int r = -2; r < reps; r++) {
		if (r == -2)
			progress("clear: %d repetitions", reps);
		for (int j = 0; j < 4; j++) {
			int k = (j + r + 2) % 4;
			long m = r < 0 ? n8 / 4 + 1 : n8;
			double t0 = umb_now_ns();
			if (k == 0)
				cl_tape(unimem_layout_scratch(l), m);
			else if (k == 1)
				cl_pass(l, m);
			else if (k == 2)
				cl_talk(l, m);
			else
				cl_store(&word, m);
			double t1 = umb_now_ns();
			if (r >= 0)
				s[k][r] = (t1 - t0) / ((double)n8 * 8);
		}
	}
	for (int k = 0; k < 4; k++)
		g->rows[k].m[0] = umb_stats_of(s[k], reps);
	unimem_layout_close(l);
}

