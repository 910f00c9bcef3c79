/* SPDX-License-Identifier: MIT */
/* Grid across processes (issue 15): stress and kill tests.
 *
 *   UNIMEM_STRESS_SECONDS  how long each test runs (the 'stress' suite: 60 by default; the
 *                          default suite runs a short version)
 *   UNIMEM_STRESS_THREADS  threads per process (default 2; more on machines with more cores)
 *
 * Every holder stamps each cell it takes with its owner (pid << 32 | thread) by a compare-
 * and-swap on the cell's first word, from 0 (or from the stamp of a holder that was killed:
 * a reclaimed cell keeps its bytes); any other old value is a double hand-out. Before a
 * give it swaps its stamp back to 0; a stamp that is not its own there means someone else
 * was handed its cell. Counters live in a shared mapping; the Grid in a Block that the
 * holders attach to (looked up by id, or inherited over fork). */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define MAX_PROCS 16
#define MAX_THREADS 16
#define MAX_KILLED 4096
#define HOLD 24

struct shared {
	uint64_t double_handouts, stolen_stamps, bad_gives, takes, gives, mailed;
	uint64_t ops[MAX_PROCS]; /* per holder process */
	uint32_t stop;
	uint32_t done, parties; /* holders past their last operation; how many to wait for */
	uint32_t nkilled;
	int32_t killed[MAX_KILLED]; /* pids killed on purpose */
	uint32_t box[64];           /* cells in transit between processes: index + 1, or 0 */
};

static struct shared *sh;
static int sh_fd = -1;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double env_number(const char *name, double fallback)
{
	const char *s = getenv(name);
	double v = s ? strtod(s, NULL) : 0;
	return v > 0 ? v : fallback;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static bool was_killed(int32_t pid)
{
	uint32_t n = __atomic_load_n(&sh->nkilled, __ATOMIC_ACQUIRE);
	for (uint32_t k = 0; k < n && k < MAX_KILLED; k++)
		if (__atomic_load_n(&sh->killed[k], __ATOMIC_RELAXED) == pid)
			return true;
	return false;
}

/* Stamp a cell just taken; false on a double hand-out. */
static bool stamp(void *cell, uint64_t me)
{
	uint64_t *w = cell, old = 0;
	for (;;) {
		if (__atomic_compare_exchange_n(w, &old, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
		/* A stamp of a killed holder: the cell was reclaimed with its bytes. */
		if (!was_killed((int32_t)(old >> 32)))
			return false;
	}
}

/* Unstamp before a give; false when the stamp is not ours. */
static bool unstamp(void *cell, uint64_t me)
{
	uint64_t *w = cell, old = me;
	return __atomic_compare_exchange_n(w, &old, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

struct holder {
	unimem_grid *g;
	int proc, thread;
	bool mail; /* pass cells to other processes through the mailboxes */
};

static void *holder_thread(void *arg)
{
	struct holder *h = arg;
	const uint64_t me = (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)(h->thread + 1);
	uint64_t rng = me * 0x9E3779B97F4A7C15ull + 1;
	void *held[HOLD];
	int n = 0;
	const size_t cell = unimem_grid_cell_size(h->g);
	unsigned char *base = unimem_block_ptr(unimem_grid_block(h->g));
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = rng_next(&rng);
		if (n < HOLD && (n == 0 || r % 3)) {
			void *c = unimem_grid_take(h->g);
			if (c) {
				if (!stamp(c, me))
					__atomic_fetch_add(&sh->double_handouts, 1, __ATOMIC_RELAXED);
				held[n++] = c;
				__atomic_fetch_add(&sh->takes, 1, __ATOMIC_RELAXED);
			}
		} else if (h->mail && r % 7 == 0) {
			/* Post a cell to a mailbox, or collect one posted by someone else. */
			uint32_t *box = &sh->box[(r >> 8) % 64], v = __atomic_load_n(box, __ATOMIC_ACQUIRE);
			if (v && n < HOLD && __atomic_compare_exchange_n(box, &v, 0, false, __ATOMIC_ACQ_REL,
									 __ATOMIC_RELAXED)) {
				void *c = base + (size_t)(v - 1) * cell;
				uint64_t *w = c, old = __atomic_load_n(w, __ATOMIC_ACQUIRE);
				if (!__atomic_compare_exchange_n(w, &old, me, false, __ATOMIC_ACQ_REL,
								 __ATOMIC_RELAXED) ||
				    (old & 0xffffffffu) != 0xffffffffu)
					__atomic_fetch_add(&sh->stolen_stamps, 1, __ATOMIC_RELAXED);
				held[n++] = c;
			} else if (!v && n) {
				void *c = held[--n];
				/* In transit: stamped as nobody's thread. */
				if (!__atomic_compare_exchange_n((uint64_t *)c, &(uint64_t){me}, me | 0xffffffffu,
								 false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
					__atomic_fetch_add(&sh->stolen_stamps, 1, __ATOMIC_RELAXED);
				uint32_t idx = (uint32_t)(((unsigned char *)c - base) / cell) + 1, zero = 0;
				if (!__atomic_compare_exchange_n(box, &zero, idx, false, __ATOMIC_ACQ_REL,
								 __ATOMIC_RELAXED)) {
					*(uint64_t *)c = me;
					held[n++] = c;
				} else {
					__atomic_fetch_add(&sh->mailed, 1, __ATOMIC_RELAXED);
				}
			}
		} else if (n) {
			size_t k = (size_t)(r >> 16) % (size_t)n;
			void *c = held[k];
			held[k] = held[--n];
			if (!unstamp(c, me))
				__atomic_fetch_add(&sh->stolen_stamps, 1, __ATOMIC_RELAXED);
			if (unimem_grid_give(h->g, c) != 0)
				__atomic_fetch_add(&sh->bad_gives, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&sh->gives, 1, __ATOMIC_RELAXED);
		}
		__atomic_fetch_add(&sh->ops[h->proc], 1, __ATOMIC_RELAXED);
	}
	while (n) {
		void *c = held[--n];
		if (!unstamp(c, me))
			__atomic_fetch_add(&sh->stolen_stamps, 1, __ATOMIC_RELAXED);
		if (unimem_grid_give(h->g, c) != 0)
			__atomic_fetch_add(&sh->bad_gives, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* A holder is past its last take and give. With sh->parties set, wait until every holder
 * is: a holder process that ended while others still ran would leave the cells it mailed
 * to the next reclaim, and a take that finds the pool dry runs one (unimem_grid_take
 * reclaims from dead holders), so they could go back to the pool while the test counts
 * them as in a mailbox. */
static void finish_and_wait(void)
{
	__atomic_fetch_add(&sh->done, 1, __ATOMIC_ACQ_REL);
	const uint32_t parties = __atomic_load_n(&sh->parties, __ATOMIC_ACQUIRE);
	const double give_up = now() + 60;
	while (parties && __atomic_load_n(&sh->done, __ATOMIC_ACQUIRE) < parties)
		if (now() > give_up)
			_exit(4);
		else
			usleep(1000);
}

__attribute__((noreturn)) static void run_holder(unimem_grid *h, int proc, int threads, bool mail)
{
	pthread_t th[MAX_THREADS];
	struct holder hs[MAX_THREADS];
	for (int t = 0; t < threads; t++) {
		hs[t] = (struct holder){h, proc, t, mail};
		if (pthread_create(&th[t], NULL, holder_thread, &hs[t]))
			_exit(3);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	finish_and_wait();
	_exit(0);
}

/* A holder process started by exec (a process of its own, as another program would be):
 * UNIMEM_GRID_HOLDER=fd,id,proc,threads,mail names the counters' memfd and the Block. Runs
 * before Criterion's main. */
__attribute__((constructor)) static void holder_main(void)
{
	const char *spec = getenv("UNIMEM_GRID_HOLDER");
	if (!spec)
		return;
	int fd, proc, threads, mail;
	unsigned id;
	if (sscanf(spec, "%d,%u,%d,%d,%d", &fd, &id, &proc, &threads, &mail) != 5)
		_exit(6);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unimem_block *b;
	unimem_grid *h;
	if (sh == MAP_FAILED || unimem_block_lookup(&b, id) || unimem_grid_attach(&h, b))
		_exit(2);
	run_holder(h, proc, threads, mail != 0);
}

/* A holder process: a forked child on the inherited handle, or (by_lookup) a program of
 * its own (fork + exec) that looks the Block up by id and attaches. Under ThreadSanitizer,
 * which cannot start threads in the child of a multi-threaded fork, always the latter. */
static pid_t spawn(unimem_grid *g, int proc, int threads, bool by_lookup, bool mail)
{
	char spec[96];
	snprintf(spec, sizeof spec, "%d,%u,%d,%d,%d", sh_fd, unimem_block_id(unimem_grid_block(g)),
		 proc, threads, mail);
	const pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* A holder dies with the test (one that failed an assertion leaves no holders
	 * spinning behind it). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(7);
	if (by_lookup || UNIMEM_TEST_TSAN) {
		setenv("UNIMEM_GRID_HOLDER", spec, 1);
		char *argv[] = {"grid_procs", NULL};
		execv("/proc/self/exe", argv);
		_exit(7);
	}
	run_holder(g, proc, threads, mail);
}

static void map_shared(void)
{
	sh_fd = memfd_create("grid_procs", 0); /* inherited over exec */
	cr_assert_geq(sh_fd, 0);
	cr_assert_eq(ftruncate(sh_fd, sizeof *sh), 0);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, sh_fd, 0);
	cr_assert_neq(sh, MAP_FAILED);
	memset(sh, 0, sizeof *sh);
}

static int threads_per_proc(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int t = (int)env_number("UNIMEM_STRESS_THREADS", cpus > 4 ? (double)(cpus / 2) : 2);
	return t > MAX_THREADS ? MAX_THREADS : t;
}

/* After every holder is gone: every cell is in the pool, taken once each, stamped by
 * nobody alive. */
static void check_all_accounted(unimem_grid *g)
{
	const size_t count = unimem_grid_cells(g);
	cr_assert_eq(unimem_grid_available(g), count, "%zu of %zu cells available at the end",
		     unimem_grid_available(g), count);
	unsigned char *seen = calloc(count, 1);
	void **all = malloc(count * sizeof *all);
	unsigned char *base = unimem_block_ptr(unimem_grid_block(g));
	for (size_t k = 0; k < count; k++) {
		all[k] = unimem_grid_take(g);
		cr_assert_not_null(all[k], "cell %zu of %zu lost", k, count);
		size_t i = ((unsigned char *)all[k] - base) / unimem_grid_cell_size(g);
		cr_assert_eq(seen[i], 0, "cell %zu handed out twice", i);
		seen[i] = 1;
		uint64_t st = *(uint64_t *)all[k];
		cr_assert(st == 0 || was_killed((int32_t)(st >> 32)), "cell %zu still stamped %llx", i,
			  (unsigned long long)st);
		*(uint64_t *)all[k] = 0;
	}
	cr_assert_null(unimem_grid_take(g));
	for (size_t k = 0; k < count; k++)
		cr_assert_eq(unimem_grid_give(g, all[k]), 0);
	free(all);
	free(seen);
}

static void check_counters(void)
{
	cr_assert_eq(sh->double_handouts, 0, "%llu double hand-outs",
		     (unsigned long long)sh->double_handouts);
	cr_assert_eq(sh->stolen_stamps, 0, "%llu cells found stamped by another holder",
		     (unsigned long long)sh->stolen_stamps);
	cr_assert_eq(sh->bad_gives, 0, "%llu gives of held cells refused",
		     (unsigned long long)sh->bad_gives);
}

/* 2 processes (and more) x 2 threads (and more), cells passed between processes too. */
Test(grid_procs, processes_share_one_pool)
{
	map_shared();
	const double seconds = env_number("UNIMEM_STRESS_SECONDS", 60);
	const int threads = threads_per_proc();
	static const size_t shapes[][2] = {{64, 256}, {4096, 256}, {192, 1000}};
	for (size_t s = 0; s < 3; s++) {
		unimem_grid *g;
		cr_assert_eq(unimem_grid_open(&g, shapes[s][0], shapes[s][1]), 0);
		sh->stop = 0;
		sh->done = 0;
		sh->parties = 4; /* the 3 holder processes and this process's holder thread */
		memset(sh->box, 0, sizeof sh->box);
		pid_t pids[3];
		for (int p = 0; p < 3; p++)
			pids[p] = spawn(g, p, threads, p != 1, true);
		/* The test's process is a holder as well (through its own handle). */
		struct holder me = {g, 3, 0, false};
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, holder_thread, &me), 0);
		double end = now() + seconds / 3;
		while (now() < end)
			usleep(10000);
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		__atomic_fetch_add(&sh->done, 1, __ATOMIC_ACQ_REL);
		for (int p = 0; p < 3; p++) {
			int st;
			cr_assert_eq(waitpid(pids[p], &st, 0), pids[p]);
			cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "holder %d: status %d", p, st);
		}
		/* Cells still in mailboxes were taken by processes that ended without giving
		 * them (none ended before every holder was done: finish_and_wait): each one's
		 * state still names its dead taker, every other cell is in the pool, and
		 * reclaim gives back exactly the mailed cells. */
		const size_t count = unimem_grid_cells(g), cell = unimem_grid_cell_size(g);
		unsigned char *base = unimem_block_ptr(unimem_grid_block(g));
		long boxed = 0;
		for (int k = 0; k < 64; k++) {
			if (!sh->box[k])
				continue;
			cr_assert_leq(sh->box[k], count);
			const uint32_t st = __atomic_load_n(&g->state[sh->box[k] - 1], __ATOMIC_ACQUIRE);
			/* Taken: HELD, or still the PRE its taker's refill wrote (the fast take
			 * stores nothing over it). */
			cr_assert((st & ~UNIMEM_GRID_PVT_INDEX) == UNIMEM_GRID_PVT_HELD ||
				  (st & UNIMEM_GRID_PVT_PRE) == UNIMEM_GRID_PVT_PRE,
				  "shape %zu: mailed cell %u in state %x, not taken", s, sh->box[k] - 1, st);
			boxed++;
			*(uint64_t *)(base + (size_t)(sh->box[k] - 1) * cell) = 0;
		}
		const size_t avail = unimem_grid_available(g);
		cr_assert_eq(avail + (size_t)boxed, count,
			     "shape %zu: %zu of %zu cells available, %ld in mailboxes", s, avail, count,
			     boxed);
		long back = unimem_grid_reclaim(g);
		cr_assert_eq(back, boxed, "shape %zu: reclaim gave back %ld cells, %ld in mailboxes", s,
			     back, boxed);
		check_counters();
		cr_assert_gt(sh->takes, 1000);
		check_all_accounted(g);
		unimem_grid_close(g);
	}
}

/* Holders SIGKILLed at random points (after a random number of operations or a random
 * delay: mid-take, mid-give, mid-refill, mid-steal), the others running on; reclaim after
 * each kill, races with live holders. At the end every cell is accounted for, the pool is
 * usable, and nobody was handed a cell another held. */
Test(grid_procs, kill_holders_at_random_points)
{
	map_shared();
	const double seconds = env_number("UNIMEM_STRESS_SECONDS", 60);
	const int threads = threads_per_proc();
	static const size_t shapes[][2] = {{64, 512}, {4096, 256}};
	uint64_t rng = 12345;
	long kills = 0, reclaimed = 0, held_at_death = 0;
	for (size_t s = 0; s < 2; s++) {
		unimem_grid *g;
		cr_assert_eq(unimem_grid_open(&g, shapes[s][0], shapes[s][1]), 0);
		sh->stop = 0;
		/* A new pool: the previous one's holders are all gone, and so are its stamps. */
		__atomic_store_n(&sh->nkilled, 0, __ATOMIC_RELEASE);
		enum { P = 3 };
		pid_t pids[P];
		for (int p = 0; p < P; p++)
			pids[p] = spawn(g, p, threads, p % 2 == 0, false);
		const double end = now() + seconds / 2;
		long round = 0;
		/* Until the time is up, or the record of killed pids is full (a fast machine
		 * kills more than MAX_KILLED holders in a 60-second run). */
		while ((now() < end || round < 20) &&
		       __atomic_load_n(&sh->nkilled, __ATOMIC_RELAXED) < MAX_KILLED) {
			int p = (int)(rng_next(&rng) % P);
			/* Wait for a random number of its operations, or a random delay. */
			if (rng_next(&rng) % 2) {
				uint64_t target = __atomic_load_n(&sh->ops[p], __ATOMIC_RELAXED) +
						  rng_next(&rng) % 20000;
				double give_up = now() + 1;
				while (__atomic_load_n(&sh->ops[p], __ATOMIC_RELAXED) < target && now() < give_up)
					sched_yield();
			} else {
				usleep((useconds_t)(rng_next(&rng) % 3000));
			}
			uint32_t k = __atomic_load_n(&sh->nkilled, __ATOMIC_RELAXED);
			cr_assert_lt(k, MAX_KILLED);
			__atomic_store_n(&sh->killed[k], pids[p], __ATOMIC_RELAXED);
			__atomic_store_n(&sh->nkilled, k + 1, __ATOMIC_RELEASE);
			kill(pids[p], SIGKILL);
			cr_assert_eq(waitpid(pids[p], NULL, 0), pids[p]);
			kills++;
			/* What it held when it died (a cell keeps its stamp until its next taker's):
			 * live holders that find the pool dry may reclaim it before this thread. */
			const size_t count = unimem_grid_cells(g), cell = unimem_grid_cell_size(g);
			const unsigned char *base = unimem_block_ptr(unimem_grid_block(g));
			for (size_t i = 0; i < count; i++)
				held_at_death += (int32_t)(__atomic_load_n((const uint64_t *)(const void *)
									   (base + i * cell),
									   __ATOMIC_RELAXED) >>
							   32) == pids[p];
			long back = unimem_grid_reclaim(g);
			cr_assert_geq(back, 0);
			reclaimed += back;
			__atomic_store_n(&sh->ops[p], 0, __ATOMIC_RELAXED);
			pids[p] = spawn(g, p, threads, rng_next(&rng) % 2, false);
			round++;
		}
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
		for (int p = 0; p < P; p++) {
			int st;
			cr_assert_eq(waitpid(pids[p], &st, 0), pids[p]);
			cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "holder %d: status %d", p, st);
		}
		cr_assert_geq(unimem_grid_reclaim(g), 0);
		check_counters();
		check_all_accounted(g);
		unimem_grid_close(g);
	}
	cr_assert_geq(kills, 40);
	/* Every cell came back (check_all_accounted), so what they held was reclaimed: by this
	 * thread (reclaimed) or by a holder's take on a dry pool. */
	cr_assert_gt(held_at_death, 0, "the killed holders held nothing (the test did not test)");
	cr_log_info("%ld kills; they held %ld cells when they died; this thread's reclaims gave "
		    "back %ld", kills, held_at_death, reclaimed);
}
