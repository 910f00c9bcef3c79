/* SPDX-License-Identifier: MIT */
/* The Grid's take / give / refill / flush / steal / reclaim protocol (src/grid_slow.c,
 * <unimem/grid_pvt.h>, src/grid_reclaim.c) in Promela, for spin. tests/model/README.md says
 * what it proves and what it abstracts.
 *
 * Two holders (each a process with one thread and one holder slot with a cache of CAP
 * cells) take and give NC cells; holder 0 may be killed at any point (the `unless` below
 * stops it between any two steps, for good); a reclaimer then runs concurrently with the
 * live holder. Each statement is one step of the real code: a plain load or store, or one
 * atomic instruction (compare-and-swap, fetch-or, fetch-and: a d_step).
 *
 * Checked: no cell is ever handed to a holder while another live holder holds it (assert
 * in took()); a live holder's give of a cell it holds always succeeds; at the end, after
 * the live holders gave everything back and ended (flushing their caches) and a last
 * reclaim ran, every cell is in the pool with its bit set (nothing lost).
 *
 * Broken variants (the test asserts that spin finds the error):
 *   -DBROKEN_STEAL    the owner's take ignores the steal flag (no asymmetric fence)
 *   -DBROKEN_RECLAIM  reclaim also takes back the cells of a live holder
 *   -DBROKEN_CLAIM    the refill claims a cell by clearing its bit, then tags it (the window
 *                     of a holder killed between claiming and tagging loses the cell)
 *   -DBROKEN_FLUSH    the give path's flush sets the free bit before it stores the state
 *                     (the exit flush keeps the right order)
 *   -DBROKEN_GROUP    (with -DGROUP) the group exchange checks only the first cell's state
 *   -DBROKEN_STALE    reclaim clears the steal flag a dead thief left to 0, instead of marking
 *                     the slot STALE for its owner to check. Not caught since layout 6: with
 *                     two holders the thief is the dead one, so no live holder can claim a
 *                     drained cell before the owner's pop (README.md; test_grid covers it)
 *   -DBROKEN_PRE_RECLAIM  reclaim returns HELD and CACHED cells of a dead holder, not its
 *                     refills' (PRE: in its cache, or taken from there)
 *   -DBROKEN_ABOVE_N  the give's check that a refill's cell is not still in the cache looks
 *                     at the place without the cache's count (a popped entry stays there)
 *
 * -DGROUP=1 (with -DREFILL2=1 -DCAP=2): a refill whose bits show both cells free claims
 * them with one exchange from all-free (src/cas_group.h's 16-byte compare-and-swap; two
 * cells here, four there), then clears their bits; when a cell is not free it falls back
 * to the claim of one cell at a time.
 *
 * Probes (-DPROBE=P_...): an assert(false)-style check at one spot of one path, compiled in
 * only then; spin must find it, which shows that the checker reaches that spot. */

#ifndef NC
#define NC 2  /* cells */
#endif
#ifndef OPS
#define OPS 2 /* takes or gives per holder before it ends */
#endif
#ifndef OPS0
#define OPS0 OPS /* holder 0's (fewer shrinks the state space of a bug that needs few) */
#endif
#ifndef REFILL2
#define REFILL2 0 /* refills claim two cells (one to the cache) */
#endif
#ifndef GROUP
#define GROUP 0 /* the refill's group claim of both cells (needs REFILL2, CAP 2, NC 2) */
#endif
#if GROUP && (!REFILL2 || CAP != 2 || NC != 2)
#error "GROUP needs REFILL2=1, CAP=2 and NC=2"
#endif
/* Cache capacity. The real one (UNIMEM_GRID_PVT_CAP) is 0 or at least 2; 1 here is the
 * smallest cache whose give finds it full within 2 operations, so the flush is checked.
 * give_slow's arithmetic holds for it: keep = cap / 2 = 0, the one cell is flushed. */
#ifndef CAP
#define CAP 1
#endif
#if CAP < 1 || CAP > 2
#error "CAP is 1 or 2"
#endif
#define NH 2  /* holders */
#define KEEP (CAP / 2)  /* what a flush keeps (the newer half), as in give_slow */

/* The probes. Each names a spot; REACH(P, cond) fails there, when built with -DPROBE=P and
 * cond holds. Without -DPROBE it is nothing (no extra step, no extra state). */
#define P_REFILL 1     /* holder 0's refill claimed a cell from the pool */
#define P_FLUSH 2      /* holder 0's give flush, between the state store and the bit */
#define P_STEAL 3      /* holder 0 steals a cell of holder 1, between the state CAS and the bit */
#define P_RECLAIM 4    /* reclaim takes back a cell that dead holder 0 held or cached */
#define P_EXIT 5       /* holder 0's exit flush, between the state store and the bit */
#define P_REPAIR 6     /* reclaim sets the bit of a pool cell that lacks it */
#define P_THIEF 7      /* reclaim clears the steal flag that dead holder 0 left taken */
#define P_DIRECT 8     /* a take claims straight to the holder (a thief on its cache) */
#define P_POP 9        /* the fast path pops a cell from the cache */
#define P_RESET 10     /* a refill puts back a stale bit whose cell came back meanwhile */
#define P_GROUP 11     /* holder 0's refill claimed both cells with one exchange */
#define P_UNGROUP 12   /* a group exchange found a cell not free: one cell at a time */
#define P_STALE 13     /* holder 1 enters its slot marked STALE and drops a drained entry */
#ifdef PROBE
byte probe = 1; /* constant; its name shows in pan's report of the failed assertion */
#define REACH(P, cond) assert(!(probe && PROBE == P && (cond)));
#else
#define REACH(P, cond)
#endif

#define POOL 0
#define HELD(p) (10 + (p))
#define CACHED(p) (20 + (p))
#define PRE(p, k) (30 + 2 * (p) + (k)) /* claimed by p's refill into place k of its cache */
#define OWN(p, k, v) ((v) == CACHED(p) || (v) == PRE(p, k)) /* p's cache entry at place k */
#define NONE 255
#define STALE 3 /* steal flag: a thief died on this slot; its owner checks its cache */

byte state[NC];     /* the per-cell owner words */
bool hint[NC];       /* the free hint */
byte cache[NH * CAP];
byte n[NH];
byte fresh[NH];     /* places [0, fresh) of the cache hold a refill's cells */
bool busy[NH];
byte steal[NH];     /* 0, the thief + 1, or STALE */
bool dead[NH];
bool done[NH];
byte holds[NC];     /* ghost: the holder + 1 that has the cell, 0 when none */

inline took(p, c)
{
	/* No live holder has it: a cell is never out to two holders. */
	assert(holds[c] == 0 || dead[holds[c] - 1]);
	holds[c] = p + 1
}

/* Claim one cell of the shared pool with tag t (CAS from POOL), clearing its bit; stale
 * bits (cell not in the pool) are cleared and re-set if the cell came back meanwhile. */
inline claim(p, t, got)
{
	got = NONE;
	c = 0;
	do
	:: c < NC && got == NONE ->
		if
		:: hint[c] ->
#ifdef BROKEN_CLAIM
			d_step { if :: hint[c] -> hint[c] = 0; stale = 0 :: else -> stale = 1 fi };
			if
			:: stale == 0 -> state[c] = t; got = c
			:: else -> skip
			fi
#else
			d_step {
				if
				:: state[c] == POOL -> REACH(P_DIRECT, t == HELD(p)) state[c] = t; got = c; stale = 0
				:: else -> stale = 1
				fi
			};
			hint[c] = 0;
			if
			:: stale && state[c] == POOL -> REACH(P_RESET, t != HELD(p)) hint[c] = 1
			:: else -> skip
			fi
#endif
		:: else -> skip
		fi;
		c++
	:: else -> break
	od
}

/* Drain the caches of the other holder into the pool (the shared pool was dry). */
inline steal_from(p, q)
{
	d_step { if :: steal[q] == 0 -> steal[q] = p + 1; ok = 1 :: else -> ok = 0 fi };
	if
	:: ok ->
		/* membarrier() here: in this sequentially consistent model it is implicit. */
		if
		:: busy[q] == 0 ->
			k = 0;
			do
			:: k < n[q] ->
				c = cache[q * CAP + k];
				d_step { if :: OWN(q, k, state[c]) -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
				if :: moved -> REACH(P_STEAL, p == 0) hint[c] = 1 :: else -> skip fi;
				k++
			:: else -> break
			od;
			n[q] = 0;
			fresh[q] = 0
		:: true -> skip /* the owner stayed busy: give up (bounded wait) */
		fi;
		steal[q] = 0
	:: else -> skip
	fi
}

/* The slow paths' enter (busy already set): a slot marked STALE (a thief died on it)
 * keeps only the cache entries whose state still names it, then the owner clears the
 * mark. No thief can be on it meanwhile (their take of the flag is from 0). */
inline enter(p)
{
	if
	:: steal[p] == STALE ->
		k = 0;
		m = 0;
		fresh[p] = 0;
		do
		:: k < n[p] ->
			c = cache[p * CAP + k];
			if
			:: state[c] == CACHED(p) -> cache[p * CAP + m] = c; m++
			:: state[c] == PRE(p, k) ->
				/* Moved down, a refill's cell names its new place (compare-and-swap). */
				d_step { if :: k == m -> moved = 1 :: state[c] == PRE(p, k) -> state[c] = PRE(p, m); moved = 1 :: else -> moved = 0 fi };
				if :: moved -> cache[p * CAP + m] = c; m++; fresh[p] = m :: else -> skip fi
			:: else -> REACH(P_STALE, p == 1) skip
			fi;
			k++
		:: else -> break
		od;
		n[p] = m;
		steal[p] = 0
	:: else -> skip
	fi
}

/* A pop of p's cache (entered, no thief): the entry at the top goes out when its state
 * still names this cache at that place (a refill's cell: nothing is stored) or names the
 * cache (a given cell: marked taken); otherwise it is dropped. */
inline pop(p)
{
	m = n[p] - 1;
	c = cache[p * CAP + m];
	if
	:: state[c] == PRE(p, m) -> n[p] = m; got = c
	:: state[c] == CACHED(p) -> n[p] = m; state[c] = HELD(p); got = c
	:: else -> n[p] = m
	fi;
	if :: fresh[p] > m -> fresh[p] = m :: else -> skip fi
}

/* A refill into p's empty cache (entered): up to two cells claimed into places 0 and 1,
 * the last one claimed goes out (its state stays the refill's). */
inline refill(p)
{
	claim(p, PRE(p, 0), got);
	if
	:: got != NONE ->
		REACH(P_REFILL, p == 0)
		/* A second cell for the cache when one is free (-DREFILL2). */
		if
		:: REFILL2 && CAP > 1 ->
			claim(p, PRE(p, 1), extra);
			if
			:: extra != NONE -> cache[p * CAP] = got; fresh[p] = 1; n[p] = 1; got = extra
			:: else -> skip
			fi
		:: else -> skip
		fi
	:: else -> skip
	fi
}

inline take(p)
{
	got = NONE;
	/* The inline fast path: pop the cache (a load of the cell's state), no locked
	 * instruction; an entry that does not pass goes to the slow path. */
	busy[p] = 1;
#ifdef BROKEN_STEAL
	if
	:: true ->
#else
	if
	:: steal[p] == 0 ->
#endif
		/* Below `fresh`, a refill's cell: it goes out if its state still names this
		 * place (a load, no store). Above, a given cell: marked taken, no look at its
		 * state (no one else moves a cached cell; a dead thief's entries are kept off
		 * this path by STALE). */
		if
		:: n[p] > 0 ->
			m = n[p] - 1;
			c = cache[p * CAP + m];
			if
			:: m < fresh[p] ->
				if
				:: state[c] == PRE(p, m) -> REACH(P_POP, true) fresh[p] = m; n[p] = m; got = c
				:: else -> skip
				fi
			:: else -> REACH(P_POP, true) n[p] = m; state[c] = HELD(p); got = c
			fi
		:: else -> skip
		fi
	:: else -> skip
	fi;
	busy[p] = 0;
	/* The slow path: pop what is left (dropping entries whose cell left), refill when the
	 * cache is empty, or claim directly when a thief is on the cache; when the pool is
	 * dry, steal, then try once more. */
	tries = 0;
	do
	:: got == NONE && tries < 2 ->
		busy[p] = 1;
		enter(p);
		if
		:: steal[p] == 0 ->
			do
			:: got == NONE && n[p] > 0 -> pop(p)
			:: else -> break
			od;
			if
			:: got != NONE -> skip
#if GROUP
			/* The bits, read at once, show both cells free: one exchange claims both
			 * if both states are POOL (places 0 and 1). */
			:: got == NONE && hint[0] && hint[1] ->
				d_step {
#ifdef BROKEN_GROUP
					if
					:: state[0] == POOL -> state[0] = PRE(p, 0); state[1] = PRE(p, 1); moved = 1
#else
					if
					:: state[0] == POOL && state[1] == POOL -> state[0] = PRE(p, 0); state[1] = PRE(p, 1); moved = 1
#endif
					:: else -> moved = 0
					fi
				};
				if
				:: moved ->
					REACH(P_GROUP, p == 0)
					hint[0] = 0;
					hint[1] = 0;
					cache[p * CAP] = 0;
					fresh[p] = 1;
					n[p] = 1;
					got = 1
				:: else ->
					/* Not all free: one cell at a time (umi_cas_each). */
					REACH(P_UNGROUP, true)
					refill(p)
				fi
#endif
			:: got == NONE -> refill(p)
			fi;
			busy[p] = 0
		:: else ->
			busy[p] = 0;
			claim(p, HELD(p), got)
		fi;
		if
		:: got == NONE -> steal_from(p, (1 - p))
		:: else -> skip
		fi;
		tries++
	:: else -> break
	od;
	if
	:: got != NONE -> took(p, got); held[nheld] = got; nheld++
	:: else -> skip
	fi
}

inline give(p, i)
{
	v = state[i];
	assert(v == HELD(p) || v == PRE(p, 0) || v == PRE(p, 1)); /* a holder's own cell is out */
	busy[p] = 1;
	enter(p);
	if
	:: steal[p] == 0 ->
		/* A refill's cell still at its place in this cache is not out: refused. A
		 * live holder's give of a cell it holds must never be. */
		if
#ifdef BROKEN_ABOVE_N
		:: (v == PRE(p, 0) && cache[p * CAP] == i) ||
		   (v == PRE(p, 1) && CAP > 1 && cache[p * CAP + CAP - 1] == i) -> ok = 0
#else
		:: (v == PRE(p, 0) && n[p] > 0 && cache[p * CAP] == i) ||
		   (v == PRE(p, 1) && n[p] > 1 && cache[p * CAP + CAP - 1] == i) -> ok = 0
#endif
		:: else -> ok = 1
		fi;
		assert(ok);
		if
		:: n[p] == CAP ->
			/* Full: flush the older half to the pool (state first, then the bit), keep
			 * the newer half. With CAP of 1 or 2 the older half is cache[0]. */
			c = cache[p * CAP];
			if
#ifdef BROKEN_FLUSH
			:: OWN(p, 0, state[c]) -> hint[c] = 1; state[c] = POOL
#else
			:: OWN(p, 0, state[c]) -> state[c] = POOL; REACH(P_FLUSH, p == 0) hint[c] = 1
#endif
			:: else -> skip
			fi;
#if KEEP == 1
			cache[p * CAP] = cache[p * CAP + 1];
#endif
			fresh[p] = 0;
			n[p] = KEEP
		:: else -> skip
		fi;
		/* The checked give: one compare-and-swap from the state read. */
		d_step { if :: state[i] == v -> state[i] = CACHED(p); holds[i] = 0; ok = 1 :: else -> ok = 0 fi };
		assert(ok);
		cache[p * CAP + n[p]] = i;
		n[p]++;
		busy[p] = 0
	:: else ->
		busy[p] = 0;
		d_step { if :: state[i] == v -> state[i] = POOL; holds[i] = 0; ok = 1 :: else -> ok = 0 fi };
		assert(ok);
		hint[i] = 1
	fi
}

proctype holder(byte p)
{
	byte c, k, m, v, got, extra, tries, ops, nheld, stale, moved;
	bool ok;
	byte held[OPS];
	{
		ops = 0;
		do
		:: ops < (p == 0 -> OPS0 : OPS) ->
			ops++;
			if
			:: take(p)
			:: nheld > 0 -> nheld--; give(p, held[nheld])
			fi;
			/* Forget the temporaries (dead values would only multiply the states). */
			d_step { c = 0; k = 0; m = 0; v = 0; got = 0; extra = 0; tries = 0; stale = 0; moved = 0; ok = 0 }
		:: else -> break
		od;
		/* The end: give back what it holds, then thread exit flushes the cache. */
		do
		:: nheld > 0 -> nheld--; give(p, held[nheld]);
			d_step { c = 0; k = 0; m = 0; v = 0; got = 0; extra = 0; tries = 0; stale = 0; moved = 0; ok = 0 }
		:: else -> break
		od;
		busy[p] = 1;
		(steal[p] == 0 || steal[p] == STALE || (steal[p] < STALE && dead[steal[p] - 1]));
		k = 0;
		do
		:: k < n[p] ->
			c = cache[p * CAP + k];
			if
			:: OWN(p, k, state[c]) -> state[c] = POOL; REACH(P_EXIT, p == 0) hint[c] = 1
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		n[p] = 0;
		fresh[p] = 0;
		busy[p] = 0;
		done[p] = 1
	} unless { dead[p] }
}

/* Reclaim the cells of dead holder d: CAS each of its cells back to the pool, set the bits
 * of pool cells that lack theirs, free its slot, clear its steal flags. */
inline reclaim(d)
{
	c = 0;
	do
	:: c < NC ->
#ifdef BROKEN_RECLAIM
		d_step { if :: state[c] != POOL -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
#elif defined(BROKEN_PRE_RECLAIM)
		d_step { if :: state[c] == HELD(d) || state[c] == CACHED(d) -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
#else
		d_step { if :: state[c] == HELD(d) || state[c] == CACHED(d) || state[c] == PRE(d, 0) || state[c] == PRE(d, 1) -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
#endif
		if
		:: moved -> REACH(P_RECLAIM, true) hint[c] = 1
		:: else -> if :: state[c] == POOL && !hint[c] -> REACH(P_REPAIR, true) hint[c] = 1 :: else -> skip fi
		fi;
		c++
	:: else -> break
	od;
	n[d] = 0;
	fresh[d] = 0;
	busy[d] = 0;
#ifdef BROKEN_STALE
	d_step { if :: steal[1 - d] == d + 1 -> REACH(P_THIEF, true) steal[1 - d] = 0 :: else -> skip fi }
#else
	d_step { if :: steal[1 - d] == d + 1 -> REACH(P_THIEF, true) steal[1 - d] = STALE :: else -> skip fi }
#endif
}

proctype reclaimer()
{
	byte c;
	bool moved;
	/* Once holder 0 is dead, any time while holder 1 runs (or never). */
end:	dead[0];
	reclaim(0);
	done[0] = 1
}

init
{
	byte c;
	bool moved;
	c = 0;
	do
	:: c < NC -> hint[c] = 1; c++
	:: else -> break
	od;
	atomic {
		run holder(0);
		run holder(1);
		run reclaimer()
	};
	/* The killer: holder 0 dies at any point, or never. */
	if
	:: dead[0] = 1
	:: skip
	fi;
	(done[0] && done[1]);
	/* A last reclaim, then: nothing lost. */
	if
	:: dead[0] -> reclaim(0)
	:: else -> skip
	fi;
	c = 0;
	do
	:: c < NC -> assert(state[c] == POOL && hint[c]); c++
	:: else -> break
	od
}
