/* SPDX-License-Identifier: MIT */
/* Grid: attachments (who holds a handle, and whether it is still alive) and reclaim.
 *
 * An attachment record holds pid << 32 | start time (the process's start, as
 * umi_os_proc_start() tells it: on Linux clock ticks since boot, from /proc/PID/stat),
 * written by one compare-and-swap from 0, so a record is either free or names its process
 * completely. A process is dead when there is no such process or it is a zombie, or when
 * the process now under that pid started at another time (the pid was reused); where its
 * start cannot be read (hidepid, or a platform that cannot tell), it counts as alive. A
 * record marked closed (a handle closed while a thief held one of its slots) is dead too.
 * Reclaim then hands back every cell whose state word names the dead attachment (taken
 * through it) or one of its holder slots (cached), with a compare-and-swap per cell, so
 * that it races safely with live takes, gives and steals. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "grid_int.h"
#include "os/os.h"

#include <errno.h>
#include <sched.h>

static int ident_pid;
static uint64_t ident_value;

uint64_t umi_grid_self_ident(void)
{
	int pid = umi_grid_getpid();
	if (__atomic_load_n(&ident_pid, __ATOMIC_ACQUIRE) == pid)
		return __atomic_load_n(&ident_value, __ATOMIC_RELAXED);
	uint64_t start = 0;
	if (umi_os_proc_start(pid, &start) != 0)
		start = 0;
	uint64_t v = (uint64_t)(uint32_t)pid << 32 | (uint32_t)start;
	__atomic_store_n(&ident_value, v, __ATOMIC_RELAXED);
	__atomic_store_n(&ident_pid, pid, __ATOMIC_RELEASE);
	return v;
}

bool umi_grid_ident_alive(uint64_t ident)
{
	const int pid = (int)(ident >> 32);
	if (pid <= 0)
		return false;
	if (pid == umi_grid_getpid())
		return ident == umi_grid_self_ident();
	uint64_t start;
	const int err = umi_os_proc_start(pid, &start);
	if (err == -ESRCH) /* none, or a zombie */
		return false;
	if (err)
		return true; /* there but its start unreadable: alive, to be safe */
	return (uint32_t)start == (uint32_t)ident;
}

int umi_grid_claim_record(unimem_grid *g)
{
	const uint64_t me = umi_grid_self_ident();
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t r = 0; r < UNIMEM_GRID_PVT_RECS; r++) {
			uint64_t zero = 0;
			if (__atomic_compare_exchange_n(&g->recs[r].ident, &zero, me, false,
							__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
				__atomic_store_n(&g->recs[r].closed, 0u, __ATOMIC_RELAXED);
				g->rec = r;
				/* Threads that see the new pid without the registry lock see the rec. */
				__atomic_store_n(&g->pid, umi_grid_getpid(), __ATOMIC_RELEASE);
				return 0;
			}
		}
		/* Full: free the records of dead processes, once. */
		g->rec = UMI_GRID_NO_REC;
		g->pid = umi_grid_getpid();
		if (pass == 0 && unimem_grid_reclaim(g) < 0)
			break;
	}
	g->rec = UMI_GRID_NO_REC;
	return -EUSERS;
}

void umi_grid_return_held(unimem_grid *g, uint32_t rec)
{
	const uint32_t held = UMI_GRID_HELD | rec;
	for (uint64_t i = 0; i < g->count; i++) {
		uint32_t v = __atomic_load_n(&g->state[i], __ATOMIC_RELAXED);
		/* Taken through rec, or a refill's cell of one of rec's slots (their caches were
		 * emptied first: such a cell went out and was not given back). */
		if ((v == held || (umi_grid_is_pre(v) && umi_grid_pre_rec(v) == rec)) &&
		    __atomic_compare_exchange_n(&g->state[i], &v, 0u, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			umi_grid_set_bit(g, i);
	}
}

/* Whether attachment r (index) is gone: closed (a handle that had to leave a slot to a
 * thief that would not let go), or its process dead. A free record is not. */
static bool rec_dead(const unimem_grid *g, uint32_t r, uint64_t *ident)
{
	*ident = __atomic_load_n(&g->recs[r].ident, __ATOMIC_ACQUIRE);
	if (!*ident)
		return false;
	if (r == g->rec && g->pid == umi_grid_getpid())
		return false;
	/* Read after the ident: `closed` goes back to 0 before a reclaim frees the record,
	 * so a record claimed since never reads as closed. */
	if (__atomic_load_n(&g->recs[r].closed, __ATOMIC_ACQUIRE))
		return true;
	return !umi_grid_ident_alive(*ident);
}

/* Take the reclaim lock of the Grid, breaking a dead holder's and waiting at most wait_ns
 * for a live one: 0, 1 when it waited for a live holder (whose reclaim may have given
 * back what the caller looks for), or -EBUSY (the holder is stopped, or a hostile peer).
 * A handle without an attachment (one being made) locks as RECS + 1; such a holder cannot
 * be told alive or dead, and is broken once wait_ns has passed. */
static int lock_reclaim(unimem_grid *g, uint64_t wait_ns)
{
	const uint32_t me = g->rec < UNIMEM_GRID_PVT_RECS ? g->rec + 1 : UNIMEM_GRID_PVT_RECS + 1;
	uint32_t *lock = &g->hdr->reclaim_lock;
	uint64_t t0 = 0;
	for (long tries = 0;; tries++) {
		uint32_t cur = 0;
		if (__atomic_compare_exchange_n(lock, &cur, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return t0 != 0;
		if (!t0)
			t0 = umi_grid_now_ns();
		const bool late = (tries & 63) == 63 && umi_grid_now_ns() - t0 >= wait_ns;
		uint64_t ident;
		/* A holder that is no attachment (out of range, free, dead) cannot release it. */
		if (cur > UNIMEM_GRID_PVT_RECS + 1 || (cur == UNIMEM_GRID_PVT_RECS + 1 && late) ||
		    (cur <= UNIMEM_GRID_PVT_RECS && (rec_dead(g, cur - 1, &ident) || !ident))) {
			if (__atomic_compare_exchange_n(lock, &cur, me, false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				return 0;
			continue;
		}
		if (late)
			return -EBUSY;
		sched_yield();
	}
}

/* The reclaim itself, under the lock: how many cells came back. */
static long reclaim_locked(unimem_grid *g)
{
	bool dead_rec[UNIMEM_GRID_PVT_RECS] = {false}, dead_slot[UNIMEM_GRID_PVT_SLOTS] = {false};
	uint64_t idents[UNIMEM_GRID_PVT_RECS];
	for (uint32_t r = 0; r < UNIMEM_GRID_PVT_RECS; r++)
		dead_rec[r] = rec_dead(g, r, &idents[r]);
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		uint32_t o = __atomic_load_n(&unimem_grid_pvt_slot_at(g, t)->owner, __ATOMIC_ACQUIRE);
		/* Owned by a dead attachment (or a value no attachment has). */
		if (o && (o > UNIMEM_GRID_PVT_RECS || dead_rec[o - 1]))
			dead_slot[t] = true;
	}
	long back = 0;
	for (uint64_t w = 0; w < g->words; w++) {
		uint64_t fix = 0;
		const uint64_t end = g->count - w * 64 < 64 ? g->count - w * 64 : 64;
		const uint64_t bits = __atomic_load_n(&g->bits[w], __ATOMIC_ACQUIRE);
		for (uint64_t b = 0; b < end; b++) {
			const uint64_t i = w * 64 + b;
			uint32_t v = __atomic_load_n(&g->state[i], __ATOMIC_ACQUIRE);
			const uint32_t x = v & UMI_GRID_IDX;
			bool gone = false;
			if (v == 0) {
				/* In the pool without its bit: a flush or steal that died between
				 * the two steps. The bit is a hint; setting it is always safe. */
				if (!(bits >> b & 1))
					fix |= (uint64_t)1 << b;
				continue;
			}
			if (umi_grid_is_pre(v)) /* a refill's: by its attachment */
				gone = umi_grid_pre_junk(v) || umi_grid_pre_slot(v) >= UNIMEM_GRID_PVT_SLOTS ||
				       dead_rec[umi_grid_pre_rec(v)];
			else if ((v & ~UMI_GRID_IDX) == UMI_GRID_HELD)
				gone = x >= UNIMEM_GRID_PVT_RECS || dead_rec[x];
			else if ((v & ~UMI_GRID_IDX) == UMI_GRID_CACHED)
				gone = x >= UNIMEM_GRID_PVT_SLOTS || dead_slot[x];
			else
				gone = true; /* no state this library writes */
			if (gone && __atomic_compare_exchange_n(&g->state[i], &v, 0u, false, __ATOMIC_ACQ_REL,
								__ATOMIC_RELAXED)) {
				fix |= (uint64_t)1 << b;
				back++;
			}
		}
		if (fix)
			__atomic_fetch_or(&g->bits[w], fix, __ATOMIC_RELEASE);
	}
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		unimem_grid_pvt_slot *s = unimem_grid_pvt_slot_at(g, t);
		uint32_t thief = __atomic_load_n(&s->steal, __ATOMIC_ACQUIRE);
		const uint32_t by = umi_grid_thief(thief);
		/* STALE, junk, or an attachment that is dead: no thief will come back. */
		bool thief_dead = thief && (!by || dead_rec[by - 1]);
		/* A live owner's cache may hold entries that thief drained (the fast take pops
		 * a given cell without looking at its state): mark the slot STALE for its owner to check
		 * (enter() in grid_slow.c). A dead slot is freed below: plain 0. */
		const uint32_t to = dead_slot[t] ? 0u : UNIMEM_GRID_PVT_STALE;
		if (thief_dead && thief != to)
			__atomic_compare_exchange_n(&s->steal, &thief, to, false, __ATOMIC_ACQ_REL,
						    __ATOMIC_RELAXED);
		if (!dead_slot[t] || (thief && !thief_dead))
			continue; /* live, or a live thief still on it: the next reclaim frees it */
		umi_grid_slot_empty(s);
		__atomic_store_n(&s->busy, 0u, __ATOMIC_RELAXED);
		__atomic_store_n(&s->tid, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->owner, 0u, __ATOMIC_RELEASE);
	}
	for (uint32_t r = 0; r < UNIMEM_GRID_PVT_RECS; r++) {
		if (!dead_rec[r])
			continue;
		bool owns = false;
		for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS && !owns; t++)
			owns = __atomic_load_n(&unimem_grid_pvt_slot_at(g, t)->owner,
					       __ATOMIC_RELAXED) == r + 1;
		if (owns)
			continue;
		/* A closed record loses its mark before it is freed (rec_dead). A junk
		 * ident that changed meanwhile keeps both. */
		if (__atomic_load_n(&g->recs[r].closed, __ATOMIC_RELAXED) &&
		    __atomic_load_n(&g->recs[r].ident, __ATOMIC_RELAXED) == idents[r])
			__atomic_store_n(&g->recs[r].closed, 0u, __ATOMIC_RELEASE);
		__atomic_compare_exchange_n(&g->recs[r].ident, &idents[r], 0, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	}
	return back;
}

/* Lock (waiting at most wait_ns), reclaim, unlock; *waited (may be NULL): whether it
 * waited for another reclaim. */
static long reclaim_waiting(unimem_grid *g, uint64_t wait_ns, bool *waited)
{
	const int locked = lock_reclaim(g, wait_ns);
	if (waited)
		*waited = locked == 1;
	if (locked < 0)
		return locked;
	const long back = reclaim_locked(g);
	__atomic_store_n(&g->hdr->reclaim_lock, 0u, __ATOMIC_RELEASE);
	return back;
}

long unimem_grid_reclaim(unimem_grid *g)
{
	if (!g || !g->block)
		return -EINVAL;
	return reclaim_waiting(g, UMI_GRID_RECLAIM_WAIT_NS, NULL);
}

long umi_grid_reclaim_if_dead(unimem_grid *g)
{
	uint64_t ident;
	for (uint32_t r = 0; r < UNIMEM_GRID_PVT_RECS; r++) {
		if (!rec_dead(g, r, &ident))
			continue;
		bool waited;
		const long back = reclaim_waiting(g, UMI_GRID_RECLAIM_TAKE_WAIT_NS, &waited);
		return back == 0 && waited ? 1 : back;
	}
	return 0;
}
