/* SPDX-License-Identifier: MIT */
/* `unimem bench`: every layer beside its rivals, measured in the same run.
 *
 * Method: each group warms up, then times several repetitions; within a repetition the
 * contenders run one after another in an order that rotates from one repetition to the
 * next, so that noise from the machine falls on all of them alike. Each figure is the
 * median of the repetitions, with min and max (and the quartiles in the JSON). Fast
 * operations are timed in batches (clock reads are ~20 ns), and compiler barriers keep
 * every result alive without adding instructions. Ratios are this row / the base row
 * of the same group, so they come from the same run. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "cli.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_ROWS 10
#define MAX_METRICS 3
#define MAX_REPS 64
#define BATCH 1000          /* allocations a batch: 1000 takes/mallocs, then clear/frees */
#define TAKE_SIZE 64
#define TAKE_ALIGN 16
/* jemalloc needs static TLS room for a late dlopen: see reexec_for_static_tls(). */
#define REEXEC_MARK "UNIMEM_BENCH_STATIC_TLS"
#define STATIC_TLS_TUNABLE "glibc.rtld.optional_static_tls=16384"

struct row {
	char name[80];
	char note[320];
	bool skipped;
	struct umb_stats m[MAX_METRICS];
};

struct group {
	const char *id;
	char title[160];
	const char *unit;
	const char *metric[MAX_METRICS];
	int nmetric;
	int base;            /* the row that ratios divide by; -1: none */
	bool higher_better;  /* bandwidth */
	bool skipped;
	char note[320];
	int nrows;
	struct row rows[MAX_ROWS];
};

struct target {
	char what[160];
	double value, limit;
	bool at_most;        /* value <= limit, else value >= limit */
	const char *unit;
	bool known;
	char note[200];
};

static struct group groups[16];
static int ngroups;
static struct target targets[24];
static int ntargets;
static const struct bench_options *opt;
static struct allocator allocs[ALLOC_COUNT];

/* ---- bookkeeping ------------------------------------------------------------------ */

static void progress(const char *fmt, ...)
{
	if (opt->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("unimem bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static struct group *group_new(const char *id, const char *unit, int nmetric)
{
	struct group *g = &groups[ngroups++];
	memset(g, 0, sizeof *g);
	g->id = id;
	g->unit = unit;
	g->nmetric = nmetric;
	g->metric[0] = "time";
	g->base = -1;
	return g;
}

static struct row *row_new(struct group *g, const char *name)
{
	struct row *r = &g->rows[g->nrows++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	return r;
}

static void row_skip(struct row *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	r->skipped = true;
	vsnprintf(r->note, sizeof r->note, fmt, ap);
	va_end(ap);
}

/* Close a group's measured rows: the statistics of samples[k] for each row that ran, or a
 * skip saying `why` for a row whose run failed. */
static void rows_finish(struct group *g, int n, double samples[][MAX_REPS], const bool *bad,
			int reps, const char *why)
{
	for (int k = 0; k < n; k++) {
		if (g->rows[k].skipped)
			continue;
		if (bad[k])
			row_skip(&g->rows[k], "%s", why);
		else
			g->rows[k].m[0] = umb_stats_of(samples[k], reps);
	}
}

/* Median of row's metric, or NaN when skipped. */
static double med(const struct group *g, int row, int metric)
{
	if (!g || row < 0 || row >= g->nrows || g->rows[row].skipped)
		return NAN;
	return g->rows[row].m[metric].median;
}

static double ratio(const struct group *g, int row, int metric)
{
	return med(g, row, metric) / med(g, g->base, metric);
}

static struct group *group_find(const char *id)
{
	for (int i = 0; i < ngroups; i++)
		if (!strcmp(groups[i].id, id))
			return &groups[i];
	return NULL;
}

/* ---- Block open + close ------------------------------------------------------------ */

enum { BK_PINNED, BK_UNPINNED, BK_MALLOC, BK_POPULATE, BK_ANCHOR, BK_N };

static const char *const bk_names[BK_N] = {
	"unimem_block_open (pinned)",
	"unimem_block_open UNPINNED (lazy)",
	"malloc + memset",
	"mmap + MAP_POPULATE",
	"mmap + MAP_POPULATE + mlock (anchor)",
};

struct bk {
	unimem_block *b;
	void *p;
};

static int bk_open(int k, struct bk *h, size_t size)
{
	switch (k) {
	case BK_PINNED:
		return unimem_block_open(&h->b, size, 0);
	case BK_UNPINNED:
		return unimem_block_open(&h->b, size, UNIMEM_BLOCK_UNPINNED);
	case BK_MALLOC:
		h->p = malloc(size);
		if (!h->p)
			return -ENOMEM;
		UMB_OPAQUE(h->p); /* or the compiler turns malloc + memset into calloc */
		memset(h->p, 0, size);
		UMB_USE(h->p);
		UMB_CLOBBER(); /* the memset is not dead */
		return 0;
	case BK_POPULATE:
	case BK_ANCHOR:
		h->p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (h->p == MAP_FAILED)
			return -errno;
		if (k == BK_ANCHOR && mlock(h->p, size) != 0) {
			int err = errno == ENOMEM || errno == EAGAIN ? -EPERM : -errno;
			munmap(h->p, size);
			return err;
		}
		return 0;
	}
	return -EINVAL;
}

static void bk_close(int k, struct bk *h, size_t size)
{
	switch (k) {
	case BK_PINNED:
	case BK_UNPINNED:
		unimem_block_close(h->b);
		break;
	case BK_MALLOC:
		free(h->p);
		break;
	default:
		munmap(h->p, size);
	}
}

static void bench_block(size_t mib, int reps, int warm)
{
	static char id[2][32];
	char *gid = id[mib > 16];
	snprintf(gid, 32, "block_open_%zumib", mib);
	struct group *g = group_new(gid, "ms", 3);
	snprintf(g->title, sizeof g->title, "Block open + close, %zu MiB", mib);
	g->metric[0] = "open";
	g->metric[1] = "close";
	g->metric[2] = "open+close";
	g->base = BK_ANCHOR;
	snprintf(g->note, sizeof g->note,
		 "open: from nothing to zeroed memory of this size (pinned rows: resident and "
		 "locked); close: give it all back. Ratios: row / anchor.");
	size_t size = mib << 20;
	static double s[BK_N][3][MAX_REPS];
	int err[BK_N] = { 0 };
	for (int k = 0; k < BK_N; k++)
		row_new(g, bk_names[k]);
	for (int r = -warm; r < reps; r++) {
		progress("block open+close %zu MiB: %s %d of %d", mib, r < 0 ? "warm-up" : "repetition",
			 r < 0 ? r + warm + 1 : r + 1, r < 0 ? warm : reps);
		for (int j = 0; j < BK_N; j++) {
			int k = (j + r + warm) % BK_N; /* rotate the order */
			if (err[k])
				continue;
			struct bk h = { NULL, NULL };
			double t0 = umb_now_ns();
			int e = bk_open(k, &h, size);
			double t1 = umb_now_ns();
			if (e) {
				err[k] = e;
				continue;
			}
			bk_close(k, &h, size);
			double t2 = umb_now_ns();
			if (r >= 0) {
				s[k][0][r] = (t1 - t0) / 1e6;
				s[k][1][r] = (t2 - t1) / 1e6;
				s[k][2][r] = (t2 - t0) / 1e6;
			}
		}
	}
	for (int k = 0; k < BK_N; k++) {
		if (err[k] == -EPERM && k == BK_ANCHOR) {
			struct rlimit rl;
			getrlimit(RLIMIT_MEMLOCK, &rl);
			row_skip(&g->rows[k], "failed: mlock refused by RLIMIT_MEMLOCK (%llu bytes)",
				 (unsigned long long)rl.rlim_cur);
			continue;
		}
		if (err[k]) {
			row_skip(&g->rows[k], "failed: %s", unimem_strerror(err[k]));
			continue;
		}
		for (int m = 0; m < 3; m++)
			g->rows[k].m[m] = umb_stats_of(s[k][m], reps);
	}
	snprintf(g->rows[BK_UNPINNED].note, sizeof g->rows[BK_UNPINNED].note,
		 "lazy: no page is faulted until first touch");
	/* glibc raises its mmap threshold after freeing a mapped chunk (up to 32 MiB on
	 * 64-bit): smaller buffers then come back from the heap, already resident. */
	if (mib <= 32 && !err[BK_MALLOC])
		snprintf(g->rows[BK_MALLOC].note, sizeof g->rows[BK_MALLOC].note,
			 "glibc reuses the freed heap: memset of resident pages, no faults");
}

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

static __attribute__((noinline)) void tb_malloc(const struct allocator *a, void **ptr,
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

static void bench_tape(int reps, long batches)
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

/* ---- Tape take, two threads on one Tape ---------------------------------------------- */

enum { TW_SHARED, TW_CHUNK, TW_MALLOC0 };

struct tw_shared {
	pthread_barrier_t start, done;
	int arrived;         /* spin start: both threads begin at once */
	double t_start[2], t_end[2];
	int kind;
	bool quit;
	unimem_tape *tape;
	long batches;
	double ns[2];
	bool ok[2];
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
		/* Waking from the barrier takes tens of microseconds: spin until both threads
		 * are awake, so that they really take at the same time. */
		__atomic_fetch_add(&sh->arrived, 1, __ATOMIC_ACQ_REL);
		while (__atomic_load_n(&sh->arrived, __ATOMIC_ACQUIRE) < 2)
			;
		double t0 = umb_now_ns();
		if (sh->kind == TW_SHARED) {
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

static void bench_threads(int reps, long batches)
{
	struct group *g = group_new("tape_take_2threads", "ns", 1);
	snprintf(g->title, sizeof g->title,
		 "Tape take (%d B, align %d), 2 threads on one Tape, per take per thread",
		 TAKE_SIZE, TAKE_ALIGN);
	snprintf(g->note, sizeof g->note,
		 "each thread: %ld x %d takes (or mallocs then frees) at once with the other; "
		 "time per operation per thread, the mean of the two threads. Ratios: row / "
		 "shared cursor.", batches, BATCH);
	g->base = TW_SHARED;
	row_new(g, "unimem_tape_take (shared cursor)");
	row_new(g, "unimem_tape_chunk_take (per-thread chunk)");
	int n = TW_MALLOC0 + ALLOC_COUNT;
	for (int a = 0; a < ALLOC_COUNT; a++) {
		struct row *r = row_new(g, allocs[a].name);
		if (!allocs[a].present)
			row_skip(r, "%s: skipped", allocs[a].note);
	}
	/* Takes never touch the memory: a big lazy Tape costs nothing. */
	size_t need = 2 * (size_t)batches * BATCH * TAKE_SIZE + 4 * UNIMEM_TAPE_CHUNK_DEFAULT;
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
	pthread_barrier_init(&sh.start, NULL, 3);
	pthread_barrier_init(&sh.done, NULL, 3);
	pthread_t th[2];
	struct tw_arg args[2] = { { &sh, 0 }, { &sh, 1 } };
	int started = 0;
	for (; started < 2; started++)
		if (pthread_create(&th[started], NULL, tw_worker, &args[started]) != 0)
			break;
	if (started < 2) {
		/* Cannot happen on a sane system; leave the threads parked forever. */
		g->skipped = true;
		snprintf(g->note, sizeof g->note, "could not start 2 threads");
		return;
	}
	static double s[MAX_ROWS][MAX_REPS], ov[MAX_ROWS][MAX_REPS];
	bool bad[MAX_ROWS] = { false };
	for (int r = -1; r < reps; r++) {
		if (r < 0 || r % 4 == 0)
			progress("2 threads: repetition %d of %d", r < 0 ? 0 : r + 1, reps);
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
			bad[k] |= !sh.ok[0] || !sh.ok[1];
			if (r >= 0) {
				s[k][r] = (sh.ns[0] + sh.ns[1]) / 2 / ((double)batches * BATCH);
				/* How much of the two runs overlapped in time. */
				double lo = sh.t_start[0] > sh.t_start[1] ? sh.t_start[0] : sh.t_start[1];
				double hi = sh.t_end[0] < sh.t_end[1] ? sh.t_end[0] : sh.t_end[1];
				double span = (sh.ns[0] > sh.ns[1] ? sh.ns[0] : sh.ns[1]);
				ov[k][r] = hi > lo && span > 0 ? (hi - lo) / span : 0;
			}
		}
	}
	sh.quit = true;
	pthread_barrier_wait(&sh.start);
	for (int i = 0; i < 2; i++)
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
		struct umb_stats o = umb_stats_of(ov[k], reps);
		snprintf(g->rows[k].note, sizeof g->rows[k].note, "threads overlapped %.0f%%",
			 o.median * 100);
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

static void bench_clear(int reps, long n8)
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

/* ---- Grid take + give ------------------------------------------------------------- */

struct mfl {
	pthread_mutex_t mu;
	void *head;
	unsigned char *cells;
};

static void *mfl_take(struct mfl *f)
{
	pthread_mutex_lock(&f->mu);
	void *p = f->head;
	if (p)
		f->head = *(void **)p;
	pthread_mutex_unlock(&f->mu);
	return p;
}

static void mfl_give(struct mfl *f, void *p)
{
	pthread_mutex_lock(&f->mu);
	*(void **)p = f->head;
	f->head = p;
	pthread_mutex_unlock(&f->mu);
}

static __attribute__((noinline)) bool gb_mfl(struct mfl *f, void **ptr, long batches)
{
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = mfl_take(f);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		UMB_CLOBBER();
		for (int i = 0; i < BATCH; i++)
			mfl_give(f, ptr[i]);
		UMB_CLOBBER();
	}
	return ptr[BATCH - 1] != NULL;
}

static __attribute__((noinline)) bool gb_grid(unimem_grid *gr, void **ptr, long batches)
{
	int err = 0;
	for (long k = 0; k < batches; k++) {
		for (int i = 0; i < BATCH; i++) {
			void *p = unimem_grid_take(gr);
			UMB_OPAQUE(p);
			ptr[i] = p;
		}
		UMB_CLOBBER();
		for (int i = 0; i < BATCH; i++)
			err |= unimem_grid_give(gr, ptr[i]);
		UMB_CLOBBER();
	}
	return err == 0 && ptr[BATCH - 1] != NULL;
}

enum { GB_GRID, GB_MUTEX, GB_MALLOC0 };

static void bench_grid(int reps, long batches)
{
	const size_t cell = 64, cells = 4096;
	struct group *g = group_new("grid", "ns", 1);
	snprintf(g->title, sizeof g->title, "Grid take + give (%zu B cells)", cell);
	snprintf(g->note, sizeof g->note,
		 "per take+give pair: %d takes then %d gives. Ratios: row / unimem_grid.", BATCH,
		 BATCH);
	g->base = GB_GRID;
	struct row *gr_row = row_new(g, "unimem_grid_take + give (generic)");
	row_new(g, "mutex free list");
	int n = GB_MALLOC0 + ALLOC_COUNT;
	for (int a = 0; a < ALLOC_COUNT; a++) {
		struct row *r = row_new(g, allocs[a].name);
		if (!allocs[a].present)
			row_skip(r, "%s: skipped", allocs[a].note);
	}
	unimem_grid *gr = NULL;
	int e = unimem_grid_open(&gr, cell, cells);
	if (e)
		row_skip(gr_row, "unimem_grid_open failed: %s", unimem_strerror(e));
	struct mfl f;
	pthread_mutex_init(&f.mu, NULL);
	f.cells = aligned_alloc(64, cell * cells);
	f.head = NULL;
	if (!f.cells) {
		g->skipped = true;
		snprintf(g->note, sizeof g->note, "out of memory");
		return;
	}
	for (size_t i = cells; i-- > 0;)
		mfl_give(&f, f.cells + i * cell);
	static double s[MAX_ROWS][MAX_REPS];
	bool bad[MAX_ROWS] = { false };
	void *ptr[BATCH];
	for (int r = -2; r < reps; r++) {
		if (r == -2)
			progress("grid: %d repetitions", reps);
		for (int j = 0; j < n; j++) {
			int k = (j + r + 2) % n;
			if (g->rows[k].skipped)
				continue;
			long m = r < 0 ? batches / 4 + 1 : batches;
			bool ok = true;
			double t0 = umb_now_ns();
			if (k == GB_GRID) {
				ok = gb_grid(gr, ptr, m);
			} else if (k == GB_MUTEX) {
				ok = gb_mfl(&f, ptr, m);
			} else {
				tb_malloc(&allocs[k - GB_MALLOC0], ptr, m);
			}
			double t1 = umb_now_ns();
			bad[k] |= !ok;
			if (r >= 0)
				s[k][r] = (t1 - t0) / ((double)batches * BATCH);
		}
	}
	rows_finish(g, n, s, bad, reps, "a take or give failed");
	unimem_grid_close(gr);
	pthread_mutex_destroy(&f.mu);
	free(f.cells);
}

/* ---- bandwidth ---------------------------------------------------------------------- */

static __attribute__((noinline)) uint64_t read_sum(const uint64_t *p, size_t n)
{
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	for (size_t i = 0; i + 4 <= n; i += 4) {
		a0 += p[i];
		a1 += p[i + 1];
		a2 += p[i + 2];
		a3 += p[i + 3];
	}
	return a0 + a1 + a2 + a3;
}

#define BW_MAX_INSTANCES 4

/* Several buffers of each kind, used in turn: in these VMs the bandwidth of a buffer
 * depends on where its pages land (measured: 15 to 29 GB/s for buffers of one kind, best
 * of 5 reads each), more than on the kind of buffer. */
static void bench_bandwidth(size_t mib, int reps, int instances)
{
	struct group *rd = group_new("read_bandwidth", "GB/s", 1);
	struct group *wr = group_new("write_bandwidth", "GB/s", 1);
	snprintf(rd->title, sizeof rd->title, "Read bandwidth, %zu MiB", mib);
	snprintf(wr->title, sizeof wr->title, "Write bandwidth (memset), %zu MiB", mib);
	snprintf(rd->note, sizeof rd->note,
		 "sum of 64-bit words, 4 accumulators, over %d buffers of each kind in turn; "
		 "higher is better. Ratios: row / malloc.", instances);
	snprintf(wr->note, sizeof wr->note,
		 "glibc memset over the whole buffer, %d buffers of each kind in turn; higher is "
		 "better. Ratios: row / malloc.", instances);
	rd->higher_better = wr->higher_better = true;
	rd->base = wr->base = 1;
	size_t size = mib << 20;
	unimem_block *b[BW_MAX_INSTANCES] = { NULL };
	unsigned char *m[BW_MAX_INSTANCES] = { NULL };
	const char *bname = "unimem Block (pinned)";
	int e = 0;
	for (int i = 0; i < instances && !e; i++) {
		/* Alternate which kind is made first: recently freed memory comes back first. */
		if (i % 2)
			m[i] = malloc(size);
		e = unimem_block_open(&b[i], size, 0);
		if (e) {
			e = unimem_block_open(&b[i], size, UNIMEM_BLOCK_UNPINNED);
			bname = "unimem Block (unpinned: pinning refused)";
		}
		if (i % 2 == 0)
			m[i] = malloc(size);
		if (!e && !m[i])
			e = -ENOMEM;
	}
	row_new(rd, bname);
	row_new(rd, "malloc memory");
	row_new(wr, bname);
	row_new(wr, "malloc memory");
	if (e) {
		rd->skipped = wr->skipped = true;
		snprintf(rd->note, sizeof rd->note, "no buffers: %s", unimem_strerror(e));
		memcpy(wr->note, rd->note, sizeof wr->note);
		for (int i = 0; i < instances; i++) {
			unimem_block_close(b[i]);
			free(m[i]);
		}
		return;
	}
	for (int i = 0; i < instances; i++) {
		memset(unimem_block_ptr(b[i]), 1, size); /* also faults an unpinned Block in */
		memset(m[i], 1, size);
	}
	static double sr[2][MAX_REPS], sw[2][MAX_REPS];
	for (int r = -1; r < reps; r++) {
		progress("bandwidth %zu MiB: %s %d of %d", mib, r < 0 ? "warm-up" : "repetition",
			 r < 0 ? 1 : r + 1, r < 0 ? 1 : reps);
		int inst = (r + instances) % instances;
		for (int j = 0; j < 2; j++) {
			int k = (j + r + 1) % 2;
			unsigned char *p = k == 0 ? unimem_block_ptr(b[inst]) : m[inst];
			double t0 = umb_now_ns();
			uint64_t sum = read_sum((const uint64_t *)p, size / 8);
			UMB_USE(sum);
			double t1 = umb_now_ns();
			memset(p, r & 0x7f, size);
			UMB_USE(p);
			UMB_CLOBBER();
			double t2 = umb_now_ns();
			if (r >= 0) {
				sr[k][r] = (double)size / (t1 - t0);
				sw[k][r] = (double)size / (t2 - t1);
			}
		}
	}
	for (int k = 0; k < 2; k++) {
		rd->rows[k].m[0] = umb_stats_of(sr[k], reps);
		wr->rows[k].m[0] = umb_stats_of(sw[k], reps);
	}
	for (int i = 0; i < instances; i++) {
		unimem_block_close(b[i]);
		free(m[i]);
	}
}

/* ---- targets ------------------------------------------------------------------------ */

static void target(const char *what, double value, bool at_most, double limit, const char *unit,
		   const char *note)
{
	struct target *t = &targets[ntargets++];
	snprintf(t->what, sizeof t->what, "%s", what);
	t->value = value;
	t->limit = limit;
	t->at_most = at_most;
	t->unit = unit;
	t->known = isfinite(value);
	snprintf(t->note, sizeof t->note, "%s", note ? note : "");
}

static bool target_met(const struct target *t)
{
	return t->known && (t->at_most ? t->value <= t->limit : t->value >= t->limit);
}

static void evaluate_targets(void)
{
	char what[160];
	for (int i = 0; i < 2; i++) {
		const char *id = i ? "block_open_256mib" : "block_open_16mib";
		int mib = i ? 256 : 16;
		struct group *g = group_find(id);
		if (!g)
			continue;
		snprintf(what, sizeof what, "pinned %d MiB open / anchor open", mib);
		target(what, ratio(g, BK_PINNED, 0), true, 1.2, "x", NULL);
		snprintf(what, sizeof what, "pinned %d MiB open+close / anchor open+close", mib);
		target(what, ratio(g, BK_PINNED, 2), true, 1.2, "x",
		       "the stated target is for open; close is shown beside it");
		if (mib == 16)
			target("unpinned 16 MiB open", med(g, BK_UNPINNED, 0) * 1000, true, 50, "us",
			       NULL);
	}
	struct group *tp = group_find("tape_take");
	if (tp) {
		target("thread-safe take (unimem_tape_take)", med(tp, TB_TAKE, 0), true, 2.2, "ns",
		       NULL);
		target("single-owner take (unimem_tape_take_owned)", med(tp, TB_OWNED, 0), true, 1.2,
		       "ns", NULL);
		target("single-owner take (unimem_tape_chunk_take)", med(tp, TB_CHUNK, 0), true, 1.2,
		       "ns", NULL);
		target("glibc malloc+free / thread-safe take", ratio(tp, TB_MALLOC0 + ALLOC_GLIBC, 0),
		       false, 5, "x", NULL);
		int best = -1;
		for (int a = ALLOC_JEMALLOC; a < ALLOC_COUNT; a++) {
			double v = med(tp, TB_MALLOC0 + a, 0);
			if (isfinite(v) && (best < 0 || v < med(tp, TB_MALLOC0 + best, 0)))
				best = a;
		}
		const char *note = best < 0 ? "no other malloc installed: glibc stands in" : NULL;
		if (best < 0)
			best = ALLOC_GLIBC;
		snprintf(what, sizeof what, "best installed malloc (%s) / thread-safe take",
			 allocs[best].name);
		target(what, ratio(tp, TB_MALLOC0 + best, 0), false, 2.5, "x", note);
		snprintf(what, sizeof what, "best installed malloc (%s) / chunk take",
			 allocs[best].name);
		target(what, med(tp, TB_MALLOC0 + best, 0) / med(tp, TB_CHUNK, 0), false, 2.5, "x",
		       note);
	}
	struct group *tw = group_find("tape_take_2threads");
	if (tw)
		target("2 threads on one Tape, per take per thread (chunks)", med(tw, TW_CHUNK, 0),
		       true, 5, "ns", NULL);
	struct group *cl = group_find("clear");
	if (cl)
		target("Tape clear", med(cl, 0, 0), true, 0.3, "ns", NULL);
	struct group *gr = group_find("grid");
	if (gr)
		target("Grid take+give, one thread", med(gr, GB_GRID, 0), true, 5, "ns",
		       gr->rows[GB_GRID].skipped ? "the Grid is not in this build" : NULL);
	struct group *rd = group_find("read_bandwidth");
	if (rd)
		target("Block read bandwidth / malloc", ratio(rd, 0, 0), false, 0.97, "x", NULL);
}

/* ---- output ------------------------------------------------------------------------- */

static void fmt_num(char *buf, size_t len, double v)
{
	if (!isfinite(v))
		snprintf(buf, len, "-");
	else if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, len, "%.1f", v);
	else if (v >= 1)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.3f", v);
}

static void print_group(const struct group *g)
{
	int n = 0;
	for (int i = 0; i < g->nrows && !n; i++)
		n = g->rows[i].skipped ? 0 : g->rows[i].m[0].n;
	printf("\n%s  [%s; median (min..max) of %d]\n", g->title, g->unit, n);
	if (g->note[0])
		printf("  %s\n", g->note);
	if (g->skipped)
		return;
	printf("  %-42s", "");
	for (int m = 0; m < g->nmetric; m++)
		printf("%-24s", g->metric[m]);
	if (g->base >= 0)
		for (int m = 0; m < g->nmetric; m++)
			printf(" ratio %-8s", g->nmetric > 1 ? g->metric[m] : "");
	printf("\n");
	for (int i = 0; i < g->nrows; i++) {
		const struct row *r = &g->rows[i];
		printf("  %-42s", r->name);
		if (r->skipped) {
			printf("%s\n", r->note);
			continue;
		}
		for (int m = 0; m < g->nmetric; m++) {
			char a[32], b[32], c[32], cell[100];
			fmt_num(a, sizeof a, r->m[m].median);
			fmt_num(b, sizeof b, r->m[m].min);
			fmt_num(c, sizeof c, r->m[m].max);
			snprintf(cell, sizeof cell, "%s (%s..%s)", a, b, c);
			printf("%-24s", cell);
		}
		if (g->base >= 0)
			for (int m = 0; m < g->nmetric; m++) {
				double x = ratio(g, i, m);
				if (isfinite(x))
					printf(" %6.2fx%7s", x, "");
				else
					printf(" %6s %7s", "-", "");
			}
		if (r->note[0])
			printf("  %s", r->note);
		printf("\n");
	}
}

static void print_text(const struct machine *mach, const struct machine *end, double secs)
{
	printf("unimem %s bench%s\n", unimem_version(), opt->quick ? " --quick" : "");
	printf("machine: %s, %ld CPUs, %s\n", mach->cpu, mach->cpus, mach->kernel);
	printf("date: %s; load average %.2f at start, %.2f at end; %.1f s\n", mach->date,
	       mach->load1, end->load1, secs);
#ifndef __OPTIMIZE__
	printf("WARNING: this unimem was built without optimisation: the numbers mean little\n");
#endif
	printf("method: warm-up, then the median of the repetitions with (min..max); "
	       "contenders interleaved in a rotating order; ratios from this run.\n");
	for (int i = 0; i < ngroups; i++)
		print_group(&groups[i]);
	printf("\nTargets (this run)\n");
	for (int i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];
		char v[32], l[32];
		fmt_num(v, sizeof v, t->value);
		fmt_num(l, sizeof l, t->limit);
		const char *verdict = !t->known ? "not measured" : target_met(t) ? "met" : "MISSED";
		printf("  %-62s %8s %-2s  (%s %s)  %s", t->what, v, t->unit, t->at_most ? "<=" : ">=",
		       l, verdict);
		if (t->known && !target_met(t))
			printf(", gap %.2fx", t->at_most ? t->value / t->limit : t->limit / t->value);
		if (t->note[0])
			printf("  [%s]", t->note);
		printf("\n");
	}
}

static void stats_json(struct jw *w, const char *key, const struct umb_stats *s)
{
	jw_object(w, key);
	jw_num(w, "median", s->median);
	jw_num(w, "min", s->min);
	jw_num(w, "max", s->max);
	jw_num(w, "q1", s->q1);
	jw_num(w, "q3", s->q3);
	jw_int(w, "n", s->n);
	jw_object_end(w);
}

static void print_json(const struct machine *mach, const struct machine *end, double secs)
{
	struct jw w;
	jw_init(&w, stdout);
	jw_object(&w, NULL);
	jw_str(&w, "tool", "unimem bench");
	jw_str(&w, "version", unimem_version());
	jw_str(&w, "mode", opt->quick ? "quick" : "full");
	cli_machine_json(&w, mach);
	jw_num(&w, "load_average_1min_at_end", end->load1);
	jw_num(&w, "seconds", secs);
	jw_str(&w, "method",
	       "warm-up, then the median of the repetitions with min/max and quartiles; "
	       "contenders interleaved in a rotating order within each repetition; "
	       "ratio = row median / base row median of the same group and run");
	jw_array(&w, "groups");
	for (int i = 0; i < ngroups; i++) {
		const struct group *g = &groups[i];
		jw_object(&w, NULL);
		jw_str(&w, "id", g->id);
		jw_str(&w, "title", g->title);
		jw_str(&w, "unit", g->unit);
		jw_bool(&w, "higher_is_better", g->higher_better);
		jw_str(&w, "note", g->note);
		jw_bool(&w, "skipped", g->skipped);
		if (g->base >= 0)
			jw_str(&w, "base", g->rows[g->base].name);
		else
			jw_null(&w, "base");
		jw_array(&w, "rows");
		for (int k = 0; k < g->nrows && !g->skipped; k++) {
			const struct row *r = &g->rows[k];
			jw_object(&w, NULL);
			jw_str(&w, "name", r->name);
			jw_bool(&w, "skipped", r->skipped);
			if (r->note[0])
				jw_str(&w, "note", r->note);
			if (!r->skipped) {
				jw_object(&w, "metrics");
				for (int m = 0; m < g->nmetric; m++)
					stats_json(&w, g->metric[m], &r->m[m]);
				jw_object_end(&w);
				if (g->base >= 0) {
					jw_object(&w, "ratio");
					for (int m = 0; m < g->nmetric; m++)
						jw_num(&w, g->metric[m], ratio(g, k, m));
					jw_object_end(&w);
				}
			}
			jw_object_end(&w);
		}
		jw_array_end(&w);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_array(&w, "targets");
	for (int i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];
		jw_object(&w, NULL);
		jw_str(&w, "what", t->what);
		jw_num(&w, "value", t->value);
		jw_str(&w, "unit", t->unit);
		jw_str(&w, "compare", t->at_most ? "<=" : ">=");
		jw_num(&w, "limit", t->limit);
		if (t->known)
			jw_bool(&w, "met", target_met(t));
		else
			jw_null(&w, "met");
		if (t->note[0])
			jw_str(&w, "note", t->note);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_object_end(&w);
}

/* jemalloc (initial-exec TLS) cannot be dlopen'ed late without static TLS room to spare:
 * run this command again with glibc's tunable for it, once. Returns false only when the
 * process should stop (never: a failed exec just goes on without that allocator). */
static bool reexec_for_static_tls(const struct bench_options *o)
{
	bool need = false;
	for (int a = 0; a < ALLOC_COUNT; a++)
		need |= allocs[a].needs_static_tls;
	if (!need || !o->argv)
		return true;
	if (getenv(REEXEC_MARK)) {
		for (int a = 0; a < ALLOC_COUNT; a++)
			if (allocs[a].needs_static_tls)
				allocs[a].note = "installed, but its TLS did not fit a dlopen even "
						 "with " STATIC_TLS_TUNABLE;
		return true;
	}
	const char *old = getenv("GLIBC_TUNABLES");
	char tun[1024];
	snprintf(tun, sizeof tun, "%s%s%s", old ? old : "", old && *old ? ":" : "",
		 STATIC_TLS_TUNABLE);
	setenv("GLIBC_TUNABLES", tun, 1);
	setenv(REEXEC_MARK, "1", 1);
	fflush(NULL);
	execv("/proc/self/exe", o->argv);
	unsetenv(REEXEC_MARK); /* no exec: go on without it */
	return true;
}

/* Whether --only names this group (or there is no --only). */
static bool wanted(const char *name)
{
	if (!opt->only)
		return true;
	size_t n = strlen(name);
	for (const char *p = opt->only; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && !strncmp(p, name, n))
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

int cli_bench(const struct bench_options *o)
{
	opt = o;
	static const char *const known[] = { "block", "tape", "threads", "clear", "grid",
					     "bandwidth" };
	for (const char *p = o->only ? o->only : ""; *p;) {
		size_t len = strcspn(p, ","), i = 0;
		while (i < 6 && !(strlen(known[i]) == len && !strncmp(p, known[i], len)))
			i++;
		if (i == 6) {
			fprintf(stderr, "unimem bench: unknown group '%.*s' (known: block, tape, "
				"threads, clear, grid, bandwidth)\n", (int)len, p);
			return 2;
		}
		p += len;
		p += *p == ',';
	}
	struct machine start, end;
	cli_allocators(allocs);
	if (!reexec_for_static_tls(o))
		return 1;
	cli_machine(&start);
	double t0 = umb_now_ns();
	bool q = o->quick;
	if (wanted("block")) {
		bench_block(16, q ? 5 : 15, 1);
		bench_block(256, q ? 3 : 7, q ? 0 : 1);
	}
	if (wanted("tape"))
		bench_tape(q ? 7 : 31, q ? 100 : 400);
	if (wanted("threads"))
		bench_threads(q ? 5 : 15, q ? 50 : 200);
	if (wanted("clear"))
		bench_clear(q ? 7 : 21, q ? 50000 : 250000);
	if (wanted("grid"))
		bench_grid(q ? 7 : 21, q ? 100 : 400);
	if (wanted("bandwidth"))
		bench_bandwidth(q ? 128 : 256, q ? 4 : 12, q ? 2 : 4);
	double secs = (umb_now_ns() - t0) / 1e9;
	cli_machine(&end);
	evaluate_targets();
	if (o->json)
		print_json(&start, &end, secs);
	else
		print_text(&start, &end, secs);
	return fflush(stdout) == 0 ? 0 : 1;
}
