/* SPDX-License-Identifier: MIT */
/* Grid: the slow paths of take and give. A thread's holder slot (made on its first take
 * or give, freed at thread exit), refill from and flush to the shared pool, stealing from
 * other holders' caches when the shared pool is dry, and the fallback without a cache.
 *
 * Every step that moves a cell changes its state word first, by compare-and-swap where
 * another party may race (the shared pool, a steal, a reclaim), so that whatever
 * instruction a holder dies on, the state word names who may have the cell: reclaim
 * (grid_reclaim.c) gives back every cell whose state names a dead holder. The bitmap is
 * only a hint of which cells are in the pool (state 0): a set bit whose cell is not free
 * is cleared by the next claimer, and a free cell without its bit is found by reclaim. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "grid_int.h"
#include "cas_group.h"
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static __thread int32_t my_tid;
static int my_pid; /* cached (glibc's getpid is a system call); reset in a fork's child */

int umi_grid_getpid(void)
{
	int pid = __atomic_load_n(&my_pid, __ATOMIC_RELAXED);
	if (UNIMEM_UNLIKELY(!pid)) {
		pid = getpid();
		__atomic_store_n(&my_pid, pid, __ATOMIC_RELAXED);
	}
	return pid;
}

int32_t umi_grid_tid(void)
{
	if (UNIMEM_UNLIKELY(!my_tid))
		my_tid = umi_os_tid();
	return my_tid;
}

/* ---- membarrier: the thief's half of the asymmetric fence ---- */

static int mb_pid;   /* the process that registered (0: not tried) */
static bool mb_ok;   /* under mb_mutex */
static pthread_mutex_t mb_mutex = PTHREAD_MUTEX_INITIALIZER;

bool umi_grid_membarrier_ok(void)
{
	pthread_mutex_lock(&mb_mutex);
	if (mb_pid != umi_grid_getpid()) {
		mb_pid = umi_grid_getpid();
		mb_ok = !getenv("UNIMEM_GRID_NO_CACHE") && umi_os_membarrier_register() == 0;
	}
	bool ok = mb_ok;
	pthread_mutex_unlock(&mb_mutex);
	return ok;
}

bool umi_grid_membarrier(bool other_processes)
{
	return umi_os_membarrier(other_processes) == 0;
}

/* ---- thread exit and fork ---- */

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* A thread ends: its slots of every live handle go back (their cells to the pool). */
static void on_thread_exit(void *unused)
{
	(void)unused;
	int32_t tid = umi_grid_tid();
	umi_grid_registry_lock();
	for (unimem_grid *g = umi_grid_registry_first(); g; g = g->next)
		if (g->pid == umi_grid_getpid())
			umi_grid_release_slots(g, tid);
	umi_grid_registry_unlock();
	for (unsigned k = 0; k < UNIMEM_GRID_PVT_WAYS; k++)
		unimem_grid_pvt_tls[k].gen = 0;
}

/* exit(): the calling thread's slots go back too (thread-specific destructors do not run
 * for the thread that calls exit(), the main thread's return from main included). Other
 * threads may still be running: their slots stay theirs (reclaim frees them once the
 * process is gone). _exit() and a kill run nothing: reclaim frees those. */
static void on_process_exit(void)
{
	on_thread_exit(NULL);
}

/* The child of a fork: the thread's entries and its cached tid are its parent's. Handles
 * get a record of their own on their next slow path (g->pid differs). */
static void on_fork_prepare(void)
{
	umi_grid_registry_lock();
	pthread_mutex_lock(&mb_mutex);
}

static void on_fork_parent(void)
{
	pthread_mutex_unlock(&mb_mutex);
	umi_grid_registry_unlock();
}

static void on_fork_child(void)
{
	pthread_mutex_unlock(&mb_mutex);
	umi_grid_registry_unlock();
	__atomic_store_n(&my_pid, 0, __ATOMIC_RELAXED);
	my_tid = 0;
	for (unsigned k = 0; k < UNIMEM_GRID_PVT_WAYS; k++)
		unimem_grid_pvt_tls[k].gen = 0;
}

static void make_key(void)
{
	pthread_key_create(&exit_key, on_thread_exit);
	/* A fork in the middle of another thread's slow path leaves no lock held in the child. */
	pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
	atexit(on_process_exit);
}

void umi_grid_process_init(void)
{
	pthread_once(&exit_once, make_key);
}

/* ---- holder slots ---- */

static uint32_t clamp_n(const unimem_grid *g, const unimem_grid_pvt_slot *s);

/* The owner's half of the fence: 1 when it may use its cache (no thief), else 0 with
 * busy cleared and the thief's token copied into `ack`. A slot marked STALE (a thief died
 * on it: reclaim) first keeps only the entries whose state still names it, then loses the
 * mark; no thief can take the flag meanwhile (they take it from 0), and no one else writes
 * this slot's tag. */
static bool enter(unimem_grid *g, unimem_grid_pvt_slot *s)
{
	__atomic_store_n(&s->busy, 1u, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	uint32_t f = __atomic_load_n(&s->steal, __ATOMIC_ACQUIRE);
	if (f == 0)
		return true;
	if (f == UNIMEM_GRID_PVT_STALE) {
		const uint32_t t = umi_grid_slot_index(g, s), n = clamp_n(g, s);
		const uint32_t tag = UMI_GRID_CACHED | t, pre = umi_grid_pre(g->rec, t);
		uint32_t *cache = unimem_grid_pvt_cache(s), k = 0, fresh = 0;
		for (uint32_t j = 0; j < n; j++) {
			const uint32_t i = __atomic_load_n(&cache[j], __ATOMIC_RELAXED);
			if (i >= g->count)
				continue;
			uint32_t v = __atomic_load_n(&g->state[i], __ATOMIC_ACQUIRE);
			if (!umi_grid_entry_is(v, tag, pre, j))
				continue;
			/* A refill's cell names its place: moved down, it names the new one (by
			 * compare-and-swap: another slot's give may take it meanwhile). */
			if (v != tag) {
				if (j != k && !__atomic_compare_exchange_n(&g->state[i], &v, pre | k, false,
									   __ATOMIC_ACQ_REL,
									   __ATOMIC_RELAXED))
					continue;
				fresh = k + 1;
			}
			__atomic_store_n(&cache[k++], i, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&s->fresh, fresh, __ATOMIC_RELAXED);
		__atomic_store_n(&s->n, k, __ATOMIC_RELAXED);
		/* Full barrier (x86: locked): a thief that takes the flag after this sees busy. */
		if (__atomic_compare_exchange_n(&s->steal, &f, 0u, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			return true;
	}
	__atomic_store_n(&s->busy, 0u, __ATOMIC_RELEASE);
	/* The ack, after busy = 0: a thief that reads its own token here sees everything this
	 * owner did before (release), and this owner sees the flag from now on (it read it). */
	if (f != UNIMEM_GRID_PVT_STALE && __atomic_load_n(&s->ack, __ATOMIC_RELAXED) != f)
		__atomic_store_n(&s->ack, f, __ATOMIC_RELEASE);
	return false;
}

static void leave(unimem_grid_pvt_slot *s)
{
	__atomic_store_n(&s->busy, 0u, __ATOMIC_RELEASE);
}

static uint32_t clamp_n(const unimem_grid *g, const unimem_grid_pvt_slot *s)
{
	uint32_t n = __atomic_load_n(&s->n, __ATOMIC_RELAXED);
	return n <= umi_grid_slot_room(g) ? n : 0;
}

/* Cells cache[from..to) of slot s (entered) back to the shared pool: state 0, then the bit.
 * Entries whose state no longer names the slot (`tag`, or for a refill's cell `pre` and
 * its place) are dropped. */
static void flush_range(unimem_grid *g, unimem_grid_pvt_slot *s, uint32_t tag, uint32_t pre,
			uint32_t from, uint32_t to)
{
	/* One fetch-or per run of cells in one bitmap word (refills take runs). */
	uint64_t word = UINT64_MAX, mask = 0;
	for (uint32_t k = from; k < to; k++) {
		uint32_t i = __atomic_load_n(&unimem_grid_pvt_cache(s)[k], __ATOMIC_RELAXED);
		if (i >= g->count ||
		    !umi_grid_entry_is(__atomic_load_n(&g->state[i], __ATOMIC_RELAXED), tag, pre, k))
			continue;
		__atomic_store_n(&g->state[i], 0u, __ATOMIC_RELEASE);
		if (i >> 6 != word) {
			if (mask)
				__atomic_fetch_or(&g->bits[word], mask, __ATOMIC_RELEASE);
			word = i >> 6;
			mask = 0;
		}
		mask |= (uint64_t)1 << (i & 63);
	}
	if (mask)
		__atomic_fetch_or(&g->bits[word], mask, __ATOMIC_RELEASE);
}

/* A thread's slot of g, made when it has none; NULL when g runs without caches here or
 * every slot is taken (the thread then works on the shared pool directly). */
static const unimem_grid_pvt_tls_entry *entry_for(unimem_grid *g)
{
	if (UNIMEM_UNLIKELY(__atomic_load_n(&g->pid, __ATOMIC_ACQUIRE) != umi_grid_getpid())) {
		/* A forked child: a record of its own (the parent's entries were cleared). */
		umi_grid_registry_lock();
		if (g->pid != umi_grid_getpid() && umi_grid_claim_record(g) == 0)
			g->cap = umi_grid_membarrier_ok() ? UNIMEM_GRID_PVT_CAP(g->count) : 0;
		umi_grid_registry_unlock();
		if (__atomic_load_n(&g->pid, __ATOMIC_ACQUIRE) != umi_grid_getpid())
			return NULL;
	}
	const unimem_grid_pvt_tls_entry *e = umi_grid_entry(g);
	if (e || !g->cap)
		return e;
	pthread_once(&exit_once, make_key);
	const int32_t tid = umi_grid_tid();
	const uint32_t me = g->rec + 1;
	unimem_grid_pvt_slot *s = NULL;
	uint32_t t;
	/* A slot this thread already has (its entry was evicted by another Grid's). */
	for (t = 0; t < UNIMEM_GRID_PVT_SLOTS && !s; t++) {
		unimem_grid_pvt_slot *c = unimem_grid_pvt_slot_at(g, t);
		if (__atomic_load_n(&c->owner, __ATOMIC_ACQUIRE) == me &&
		    __atomic_load_n(&c->tid, __ATOMIC_RELAXED) == tid)
			s = c;
	}
	/* The first free one: the first holders get the first slots, whose refills start in
	 * state words of their own (umi_grid_start). A hash of the thread id put consecutive
	 * threads on neighbouring lines. */
	for (t = 0; t < UNIMEM_GRID_PVT_SLOTS && !s; t++) {
		unimem_grid_pvt_slot *c = unimem_grid_pvt_slot_at(g, t);
		uint32_t free_ = 0;
		if (__atomic_load_n(&c->owner, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&c->owner, &free_, me, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED)) {
			s = c;
			__atomic_store_n(&s->tid, tid, __ATOMIC_RELAXED);
			umi_grid_slot_empty(s);
			/* The claim before this thread's first look at the steal flag: a thief that
			 * took the flag and then found the slot still free or its old owner's
			 * (steal_from) is seen, whatever process it is in. */
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
		}
	}
	if (!s)
		return NULL;
	t = umi_grid_slot_index(g, s);
	pthread_setspecific(exit_key, (void *)1);
	unimem_grid_pvt_tls_entry *w = &unimem_grid_pvt_tls[g->gen & (UNIMEM_GRID_PVT_WAYS - 1)];
	w->slot = s;
	w->tag = UMI_GRID_CACHED | t;
	w->held = UMI_GRID_HELD | g->rec;
	w->pre = umi_grid_pre(g->rec, t);
	w->gen = g->gen;
	return w;
}

/* Claim up to `want` cells of the shared pool into out[] (a holder's cache, or one cell),
 * writing tag + k * step in the state of the cell that goes to out[k] (compare-and-swap
 * from 0: the claim and the owner's name are one step; a refill's cells name their
 * places in the cache, step 1; one atomic instruction claims the free cells of a group of 4,
 * cas_group.h). Scans the bitmap once round from cell *rover, and leaves *rover in the
 * word where the claim ended, at the same bit: a holder's refills keep to the bit where
 * its first one started (umi_grid_start). Refills that walked on from the last cell
 * claimed were slower for a producer and a consumer on both machines measured
 * (docs/BENCHMARKS.md, 2026-12-07). Returns how many. */
static uint32_t claim(unimem_grid *g, uint32_t *rover, uint32_t want, uint32_t tag,
		      uint32_t step, uint32_t *out)
{
	uint32_t k = 0;
	const uint64_t from = *rover < g->count ? *rover : 0;
	uint64_t w = from / 64;
	/* The first word from bit `from` up, the other words, then the first word's low
	 * bits: holders start on state words of their own (umi_grid_start). */
	const uint64_t hi = ~(uint64_t)0 << (from & 63);
	for (uint64_t it = 0; it <= g->words && k < want; it++) {
		uint64_t v = __atomic_load_n(&g->bits[w], __ATOMIC_RELAXED);
		v &= it == 0 ? hi : it == g->words ? ~hi : ~(uint64_t)0;
		uint64_t got = 0, stale = 0;
		while (v && k < want) {
			/* The set bits of one group of 4 cells, at most want - k of them. */
			const unsigned q = (unsigned)__builtin_ctzll(v) & ~3u;
			unsigned ask = (unsigned)(v >> q) & 15u;
			v &= ~((uint64_t)15 << q);
			if (want - k < 4) { /* keep the lowest want - k */
				unsigned keep = 0, m = ask;
				for (uint32_t r = want - k; r && m; r--, m &= m - 1)
					keep |= m & -m;
				ask = keep;
			}
			const uint64_t i = (w << 6) | q;
			const unsigned real = i >= g->count ? 0u : g->count - i >= 4 ? 15u
							       : (1u << (g->count - i)) - 1u;
			stale |= (uint64_t)(ask & ~real) << q;
			ask &= real;
			unsigned won;
			if (ask == 15u && (won = umi_cas_group4(&g->state[i], tag + k * step, step)) == 15u) {
				for (unsigned j = 0; j < 4; j++) /* relaxed: thieves read caches */
					__atomic_store_n(&out[k + j], (uint32_t)(i + j), __ATOMIC_RELAXED);
				k += 4;
			} else {
				if (ask != 15u)
					won = ask ? umi_cas_each(&g->state[i], ask, tag + k * step, step) : 0u;
				for (unsigned j = 0; j < 4; j++)
					if (won >> j & 1)
						__atomic_store_n(&out[k++], (uint32_t)(i + j), __ATOMIC_RELAXED);
			}
			got |= (uint64_t)won << q;
			stale |= (uint64_t)(ask & ~won) << q;
		}
		if (got | stale) {
			__atomic_fetch_and(&g->bits[w], ~(got | stale), __ATOMIC_ACQ_REL);
			/* A stale bit's cell may have come back to the pool meanwhile: its giver
			 * set the bit before we cleared it, so put it back. */
			for (; stale; stale &= stale - 1) {
				const uint64_t i = (w << 6) | (uint64_t)__builtin_ctzll(stale);
				if (i < g->count && __atomic_load_n(&g->state[i], __ATOMIC_ACQUIRE) == 0)
					umi_grid_set_bit(g, i);
			}
		}
		if (k < want && it < g->words && ++w == g->words)
			w = 0;
	}
	if (k) {
		const uint64_t r = (w << 6) | (from & 63);
		*rover = (uint32_t)(r < g->count ? r : w << 6);
	}
	return k;
}

/* Whether the attachment `owner` (a slot's owner field: attachment + 1) is a handle of
 * this process (its record holds this process's identity). */
static bool owner_is_local(const unimem_grid *g, uint32_t owner)
{
	const uint64_t ident = umi_grid_owner_ident(g, owner);
	return ident && ident == umi_grid_self_ident();
}

/* How long a thief waits for owners in other processes to acknowledge its flag before it
 * falls back to a grace period: an owner taking or giving acks within a microsecond. */
#define ACK_WAIT_NS 100000
#define PARKED_EVERY_NS 25000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Move the cells of slot t's cache whose state still names it (`tag`, or for a refill's
 * cell `pre` and its place) to the shared pool, each by compare-and-swap (another party may be
 * draining it too), and empty the cache. Returns how many came back. */
static uint32_t drain_cells(unimem_grid *g, unimem_grid_pvt_slot *s, uint32_t tag, uint32_t pre)
{
	const uint32_t n = clamp_n(g, s);
	uint32_t back = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = __atomic_load_n(&unimem_grid_pvt_cache(s)[k], __ATOMIC_RELAXED), v;
		if (i >= g->count)
			continue;
		v = __atomic_load_n(&g->state[i], __ATOMIC_RELAXED);
		if (umi_grid_entry_is(v, tag, pre, k) &&
		    __atomic_compare_exchange_n(&g->state[i], &v, 0u, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			umi_grid_set_bit(g, i);
			back++;
		}
	}
	umi_grid_slot_empty(s);
	return back;
}

/* Drain victim t (its flag is ours, its owner has seen it): wait for busy == 0, then move
 * its cached cells to the shared pool; the flag goes back to 0 either way. Returns how
 * many cells came back. */
static uint32_t drain(unimem_grid *g, uint32_t t)
{
	unimem_grid_pvt_slot *s = unimem_grid_pvt_slot_at(g, t);
	bool idle = false;
	uint32_t back = 0;
	for (int spin = 0; spin < 2000 && !idle; spin++) {
		idle = __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE) == 0;
		if (!idle && spin >= 100)
			sched_yield();
	}
	/* The owner's attachment, for its refills' cells: the owner field cannot change while
	 * this thief holds the flag (umi_grid_release_slots waits for it). */
	const uint32_t o = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
	if (idle && o && o <= UNIMEM_GRID_PVT_RECS)
		back = drain_cells(g, s, UMI_GRID_CACHED | t, umi_grid_pre(o - 1, t));
	__atomic_store_n(&s->steal, 0u, __ATOMIC_RELEASE);
	return back;
}

static uint32_t steal_seq; /* numbers this process's steals (tokens differ from the last) */

/* Whether the owner thread of slot s (its flag taken) is seen asleep off its CPU. */
static bool parked(const unimem_grid *g, const unimem_grid_pvt_slot *s)
{
	const uint64_t ident = umi_grid_owner_ident(g, __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE));
	return ident && umi_os_thread_parked((int)(ident >> 32), (uint32_t)ident,
				    __atomic_load_n(&s->tid, __ATOMIC_RELAXED)) == 1;
}

/* Empty the caches of holders in this process (`foreign` false) or in other processes
 * (true) into the shared pool. Each victim's steal flag is taken with this steal's token;
 * then each owner must be seen to see it (or show busy) before its cache is touched.
 * Owners in this process: one fence, an IPI to the CPUs that run them (a microsecond).
 * Owners in other processes: each one that takes or gives acks the token within
 * ACK_WAIT_NS, and one that sleeps is seen off its CPU (parked()); those are drained at
 * once; only when they gave nothing does the thief pay the fence for the others, an RCU
 * grace period (milliseconds), which is also why other processes are only robbed when
 * this process's caches gave nothing. A victim whose owner changed after its flag was
 * taken is let go: a new owner in another process would not be reached by this process's
 * fence (the flag and owner are both taken by locked instructions, so of the new owner's
 * claim and this check one sees the other). Returns how many cells came back. */
static uint32_t steal_from(unimem_grid *g, const unimem_grid_pvt_slot *mine, bool foreign)
{
	const uint32_t seq = __atomic_add_fetch(&steal_seq, 1, __ATOMIC_RELAXED);
	const uint32_t token = (g->rec + 1) | seq << UNIMEM_GRID_PVT_SEQ_SHIFT;
	uint64_t victims[UNIMEM_GRID_PVT_SLOTS / 64] = {0};
	uint32_t nvictims = 0;
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		unimem_grid_pvt_slot *s = unimem_grid_pvt_slot_at(g, t);
		const uint32_t owner = __atomic_load_n(&s->owner, __ATOMIC_RELAXED);
		uint32_t zero = 0;
		if (s == mine || !owner || !clamp_n(g, s) || owner_is_local(g, owner) == foreign ||
		    !__atomic_compare_exchange_n(&s->steal, &zero, token, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_RELAXED))
			continue;
		if (__atomic_load_n(&s->owner, __ATOMIC_SEQ_CST) != owner) {
			__atomic_store_n(&s->steal, 0u, __ATOMIC_RELEASE);
			continue;
		}
		victims[t / 64] |= (uint64_t)1 << (t % 64);
		nvictims++;
	}
	if (!nvictims)
		return 0;
	uint32_t back = 0;
	if (foreign) {
		/* The acks: an owner that read the token has finished whatever it started
		 * before, and keeps off its cache until the flag is cleared. Owners that sleep:
		 * the kernel can tell that one is off its CPU, which it left and will enter
		 * again through the scheduler's full barriers (asked every PARKED_EVERY_NS). */
		uint32_t acked = 0;
		const uint64_t t0 = umi_grid_now_ns();
		for (uint64_t t = t0, asked = 0; acked < nvictims && t - t0 < ACK_WAIT_NS;
		     t = umi_grid_now_ns()) {
			const bool ask = t - asked >= PARKED_EVERY_NS;
			for (uint32_t v = 0; v < UNIMEM_GRID_PVT_SLOTS; v++) {
				const unimem_grid_pvt_slot *vs = unimem_grid_pvt_slot_at(g, v);
				if (!(victims[v / 64] >> (v % 64) & 1) ||
				    (__atomic_load_n(&vs->ack, __ATOMIC_ACQUIRE) != token &&
				     !(ask && parked(g, vs))))
					continue;
				victims[v / 64] &= ~((uint64_t)1 << (v % 64));
				acked++;
				back += drain(g, v);
			}
			if (ask)
				asked = umi_grid_now_ns();
			cpu_relax();
		}
		if (back || acked == nvictims) {
			for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) /* let the others go */
				if (victims[t / 64] >> (t % 64) & 1)
					__atomic_store_n(&unimem_grid_pvt_slot_at(g, t)->steal, 0u,
							 __ATOMIC_RELEASE);
			return back;
		}
	}
	const bool fenced = umi_grid_membarrier(foreign);
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		if (!(victims[t / 64] >> (t % 64) & 1))
			continue;
		if (fenced)
			back += drain(g, t);
		else
			__atomic_store_n(&unimem_grid_pvt_slot_at(g, t)->steal, 0u,
					 __ATOMIC_RELEASE);
	}
	return back;
}

/* When the shared pool is dry: what idle caches of this process hold, else those of
 * other processes. Returns how many cells came back. */
static uint32_t steal(unimem_grid *g, const unimem_grid_pvt_slot *mine)
{
	if (!umi_grid_membarrier_ok())
		return 0;
	const uint32_t back = steal_from(g, mine, false);
	return back ? back : steal_from(g, mine, true);
}

/* One cell from the shared pool, straight to the taker (no cache). */
static uint64_t take_direct(unimem_grid *g, uint32_t *rover)
{
	uint32_t i;
	if (g->pid != umi_grid_getpid() || g->rec >= UNIMEM_GRID_PVT_RECS)
		return UINT64_MAX;
	return claim(g, rover, 1, UMI_GRID_HELD | g->rec, 0, &i) ? i : UINT64_MAX;
}

static uint32_t shared_rover; /* where cache-less takes start (a hint; races are harmless) */

uint64_t unimem_grid_pvt_take_slow(unimem_grid *g)
{
	const unimem_grid_pvt_tls_entry *e = entry_for(g);
	for (int round = 0; round < 3; round++) {
		if (e && enter(g, e->slot)) {
			unimem_grid_pvt_slot *s = e->slot;
			uint32_t *cache = unimem_grid_pvt_cache(s), n = clamp_n(g, s);
			while (n) {
				uint32_t i = __atomic_load_n(&cache[--n], __ATOMIC_RELAXED), v;
				if (i < g->count &&
				    umi_grid_entry_is(v = __atomic_load_n(&g->state[i], __ATOMIC_RELAXED),
						      e->tag, e->pre, n)) {
					__atomic_store_n(&s->n, n, __ATOMIC_RELAXED);
					if (v == e->tag)
						__atomic_store_n(&g->state[i], e->held, __ATOMIC_RELAXED);
					if (n < __atomic_load_n(&s->fresh, __ATOMIC_RELAXED))
						__atomic_store_n(&s->fresh, n, __ATOMIC_RELAXED);
					leave(s);
					return i;
				}
			}
			/* Refill half the cache in one pass over the bitmap, straight into the
			 * cache (n stays 0 until the end: a thief waits for busy == 0, and a
			 * reclaim goes by the state words). The cells' state is PRE: the takes
			 * that hand them out, this one first, store nothing. */
			uint32_t rover = __atomic_load_n(&s->rover, __ATOMIC_RELAXED);
			uint32_t k = claim(g, &rover, umi_grid_refill(g->cap), e->pre, 1, cache);
			__atomic_store_n(&s->rover, rover, __ATOMIC_RELAXED);
			if (k) {
				const uint32_t i = __atomic_load_n(&cache[k - 1], __ATOMIC_RELAXED);
				__atomic_store_n(&s->fresh, k - 1, __ATOMIC_RELAXED);
				__atomic_store_n(&s->n, k - 1, __ATOMIC_RELAXED);
				leave(s);
				return i;
			}
			umi_grid_slot_empty(s);
			leave(s);
		} else {
			uint32_t rover = __atomic_load_n(&shared_rover, __ATOMIC_RELAXED);
			uint64_t i = take_direct(g, &rover);
			__atomic_store_n(&shared_rover, rover, __ATOMIC_RELAXED);
			if (i != UINT64_MAX)
				return i;
		}
		/* The shared pool is dry: bring back what idle caches hold, then what dead
		 * holders held. */
		if (!steal(g, e ? e->slot : NULL) && umi_grid_reclaim_if_dead(g) <= 0)
			break;
	}
	return UINT64_MAX;
}

int unimem_grid_pvt_give_slow(unimem_grid *g, uint64_t i, int checked)
{
	const unimem_grid_pvt_tls_entry *e = entry_for(g);
	uint32_t *st = &g->state[i];
	for (;;) {
		uint32_t v = __atomic_load_n(st, __ATOMIC_RELAXED);
		if (!(v & UMI_GRID_HELD))
			return -UNIMEM_EALREADY;
		if (e && enter(g, e->slot)) {
			unimem_grid_pvt_slot *s = e->slot;
			uint32_t *cache = unimem_grid_pvt_cache(s), n = clamp_n(g, s);
			/* A refill's cell still in this cache at its place: not out. */
			if (umi_grid_pre_cached(e, cache, n, v, i)) {
				leave(s);
				return -UNIMEM_EALREADY;
			}
			if (n >= g->cap) {
				/* Full: the older half goes back to the shared pool. */
				const uint32_t keep = g->cap / 2;
				flush_range(g, s, e->tag, e->pre, 0, n - keep);
				for (uint32_t k = 0; k < keep; k++)
					__atomic_store_n(&cache[k],
							 __atomic_load_n(&cache[n - keep + k], __ATOMIC_RELAXED),
							 __ATOMIC_RELAXED);
				n = keep;
				/* A refill's cells lie below its half of the cache (it fills an empty
				 * one), so they are all in the older half. */
				__atomic_store_n(&s->fresh, 0u, __ATOMIC_RELAXED);
				__atomic_store_n(&s->n, n, __ATOMIC_RELAXED);
			}
			bool ok = true;
			if (checked)
				ok = __atomic_compare_exchange_n(st, &v, e->tag, false, __ATOMIC_RELEASE,
								 __ATOMIC_RELAXED);
			else
				__atomic_store_n(st, e->tag, __ATOMIC_RELEASE);
			if (ok) {
				__atomic_store_n(&cache[n], (uint32_t)i, __ATOMIC_RELAXED);
				__atomic_store_n(&s->n, n + 1, __ATOMIC_RELAXED);
			}
			leave(s);
			if (ok)
				return 0;
			continue;
		}
		/* No cache (or a thief on it): straight to the shared pool. */
		bool ok = true;
		if (checked)
			ok = __atomic_compare_exchange_n(st, &v, 0u, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
		else
			__atomic_store_n(st, 0u, __ATOMIC_RELEASE);
		if (ok) {
			umi_grid_set_bit(g, i);
			return 0;
		}
	}
}

uint32_t umi_grid_release_slots(unimem_grid *g, int32_t tid)
{
	const uint32_t me = g->rec + 1;
	uint32_t left = 0;
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		unimem_grid_pvt_slot *s = unimem_grid_pvt_slot_at(g, t);
		if (__atomic_load_n(&s->owner, __ATOMIC_ACQUIRE) != me ||
		    (tid && __atomic_load_n(&s->tid, __ATOMIC_RELAXED) != tid))
			continue;
		/* Wait out a live thief (its drain is short, but it may be preempted; freeing
		 * the slot under it would let it clear the next owner's cache). One that died
		 * will never touch the slot again. One that holds on past THIEF_WAIT_NS
		 * (stopped, or a peer that never drains) keeps the slot. */
		uint32_t dead_thief = 0;
		bool stuck = false;
		for (uint64_t t0 = 0; !enter(g, s);) {
			uint32_t thief = __atomic_load_n(&s->steal, __ATOMIC_ACQUIRE);
			const uint32_t by = umi_grid_thief(thief);
			if (thief && (!by || !umi_grid_ident_alive(umi_grid_owner_ident(g, by)))) {
				__atomic_store_n(&s->busy, 1u, __ATOMIC_RELAXED);
				dead_thief = thief;
				break;
			}
			if (!t0) {
				t0 = umi_grid_now_ns();
			} else if (umi_grid_now_ns() - t0 >= UMI_GRID_THIEF_WAIT_NS) {
				__atomic_store_n(&s->busy, 1u, __ATOMIC_RELAXED);
				stuck = true;
				break;
			}
			sched_yield();
		}
		if (stuck) {
			/* The thief may drain at any time: its cells go back by compare-and-swap,
			 * as its drain's do, so each comes back once; the slot stays ours. */
			drain_cells(g, s, UMI_GRID_CACHED | t, umi_grid_pre(g->rec, t));
			leave(s);
			left++;
			continue;
		}
		flush_range(g, s, UMI_GRID_CACHED | t, umi_grid_pre(g->rec, t), 0, clamp_n(g, s));
		umi_grid_slot_empty(s);
		__atomic_store_n(&s->tid, 0, __ATOMIC_RELAXED);
		/* A dead thief's flag goes with the slot (a reclaim may have marked it STALE
		 * meanwhile: harmless, the next owner's first slow path clears it). A live
		 * thief that took the flag after enter() is waiting for busy == 0: its flag is
		 * its own to clear, or the next owner of the slot would use the cache while
		 * that thief still drains it. */
		if (dead_thief)
			__atomic_compare_exchange_n(&s->steal, &dead_thief, 0u, false, __ATOMIC_RELEASE,
						    __ATOMIC_RELAXED);
		leave(s);
		__atomic_store_n(&s->owner, 0u, __ATOMIC_RELEASE);
	}
	for (unsigned k = 0; k < UNIMEM_GRID_PVT_WAYS; k++)
		if (unimem_grid_pvt_tls[k].gen == g->gen)
			unimem_grid_pvt_tls[k].gen = 0;
	return left;
}
