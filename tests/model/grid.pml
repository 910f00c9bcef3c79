/* SPDX-License-Identifier: MIT */
/* The Grid's take / give / refill / flush / steal / reclaim protocol (src/grid_slow.c,
 * <unimem/grid_pvt.h>, src/grid_reclaim.c) in Promela, for spin. tests/model/README.md says
 * what it proves and what it abstracts.
 *
 * Two holders (each a process with one thread and one holder slot with a cache of CAP
 * cells) take and give NC cells, through the shared pool and a depot of ND entries of full
 * magazines (MAG cells each); holder 0 may be killed at any point (the `unless` below
 * stops it between any two steps, for good); a reclaimer then runs concurrently with the
 * live holder. Each statement is one step of the real code: a plain load or store, or one
 * atomic instruction (compare-and-swap, fetch-or, fetch-and: a d_step). In the depot's
 * code, a load or store of the holder's own cache, or of the list of a depot entry that it
 * holds BUSY, shares a step with its neighbour (no one else reads or writes those words
 * then), and the scan over the entries is one step.
 *
 * Checked: no cell is ever handed to a holder while another live holder holds it (assert
 * in took()); a live holder's give of a cell it holds always succeeds; at the end, after
 * the live holders gave everything back and ended (flushing their caches) and a last
 * reclaim ran, every cell is in the pool with its bit set, or in a FULL depot entry that
 * lists it (nothing lost). At every state: no cell is DEPOT(d) while entry d is EMPTY, and
 * a FULL entry's listed cells are DEPOT(d) (the monitor process).
 *
 * Broken variants (the test asserts that spin finds the error):
 *   -DBROKEN_STEAL    the owner's take ignores the steal flag (no asymmetric fence)
 *   -DBROKEN_RECLAIM  reclaim also takes back the cells of a live holder
 *   -DBROKEN_CLAIM    the refill claims a cell by clearing its bit, then tags it (the window
 *                     of a holder killed between claiming and tagging loses the cell)
 *   -DBROKEN_DEPOT    the refill from the depot stores EMPTY before it retags the cells
 *   -DBROKEN_DEPOT_RECLAIM  reclaim leaves the DEPOT cells of a dead holder's BUSY entry
 *   -DBROKEN_DEPOT_FLUSH    the flush publishes FULL before it tags the cell DEPOT
 *   -DBROKEN_DEPOT_GONE     reclaim returns every DEPOT cell, FULL entries' too
 *   -DNO_MONITOR      no invariant monitor (a broken variant then fails at the end check) */

#ifndef NC
#define NC 2  /* cells */
#endif
#ifndef OPS
#define OPS 2 /* takes or gives per holder before it ends */
#endif
#ifndef REFILL2
#define REFILL2 0 /* refills claim two cells (one to the cache) */
#endif
#ifndef CAP
#define CAP 1 /* cache capacity (1 or 2; the real minimum is 2, see the README) */
#endif
#ifndef ND
#define ND 1  /* depot entries */
#endif
#define NH 2  /* holders */
#define MAG 1 /* cells per depot entry: the flushed (older) half of a cache of 1 or 2 */
#define KEEP (CAP / 2)  /* what a flush keeps (the newer half) */
#define FL (CAP - KEEP) /* what a flush moves: 1 = MAG */
#if CAP < 1 || CAP > 2
#error "CAP is 1 or 2 (a flush moves one cell, a depot entry holds one)"
#endif

#define POOL 0
#define HELD(p) (10 + (p))
#define CACHED(p) (20 + (p))
#define DEPOT(d) (30 + (d))
#define NONE 255

/* A depot entry's word: EMPTY, FULL(k) (k cells listed), or BUSY(r) (holder r fills or
 * empties it). */
#define EMPTY 0
#define ISFULL(w) ((w) >= 1 && (w) <= MAG)
#define BUSY(r) (10 + (r))
#define ISDEPOT(v) ((v) >= DEPOT(0) && (v) < DEPOT(ND))

byte state[NC];     /* the per-cell owner words */
bool hint[NC];       /* the free hint */
byte cache[NH * CAP];
byte n[NH];
bool busy[NH];
byte steal[NH];     /* 0, or the thief + 1 */
bool dead[NH];
bool done[NH];
byte holds[NC];     /* ghost: the holder + 1 that has the cell, 0 when none */
byte dword[ND];     /* the depot entries' words */
byte cells[ND * MAG]; /* the depot entries' lists */

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
				:: state[c] == POOL -> state[c] = t; got = c; stale = 0
				:: else -> stale = 1
				fi
			};
			hint[c] = 0;
			if
			:: stale && state[c] == POOL -> hint[c] = 1
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
				d_step { if :: state[c] == CACHED(q) -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
				if :: moved -> hint[c] = 1 :: else -> skip fi;
				k++
			:: else -> break
			od;
			n[q] = 0
		:: true -> skip /* the owner stayed busy: give up (bounded wait) */
		fi;
		steal[q] = 0
	:: else -> skip
	fi
}

/* Refill from the depot (entered, before the shared pool). The first FULL entry is taken
 * with one compare-and-swap to BUSY(p) (the scan over the entries is one step here); its
 * cell, if still DEPOT(d), is retagged CACHED(p) and pushed on the cache; EMPTY is stored;
 * then one cell is popped as the fast path does. got stays NONE when the depot gave
 * nothing. MAG is 1: one cell per entry. Reads and writes of the holder's own cache and of
 * the list of an entry it holds BUSY share a step with a neighbour (no one else touches
 * them then: a thief waits on busy, reclaim waits on death). */
inline depot_refill(p)
{
	d_step {
		dd = NONE;
		e = 0;
		do
		:: e < ND && dd == NONE ->
			if :: ISFULL(dword[e]) -> dword[e] = BUSY(p); dd = e :: else -> skip fi;
			e++
		:: else -> break
		od;
		if :: dd != NONE -> c = cells[dd * MAG] :: else -> skip fi
	};
	if
	:: dd != NONE ->
#ifdef BROKEN_DEPOT
		dword[dd] = EMPTY; /* too soon: its cell is still DEPOT(dd) */
#endif
		if
		:: state[c] == DEPOT(dd) ->
			state[c] = CACHED(p);
			d_step { assert(n[p] < CAP); cache[p * CAP + n[p]] = c; n[p]++; kk = 1 }
		:: else -> skip
		fi;
#ifndef BROKEN_DEPOT
		dword[dd] = EMPTY;
#endif
		/* Pop one (the fast path's pop). */
		d_step { if :: kk -> m = n[p]; c = cache[p * CAP + m - 1] :: else -> skip fi };
		if
		:: kk && state[c] == CACHED(p) -> n[p] = m - 1; state[c] = HELD(p); got = c
		:: kk && state[c] != CACHED(p) -> n[p] = m - 1
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* Flush the older half of a full cache (entered): FL = 1 cell, the first. Into an EMPTY
 * depot entry (one compare-and-swap to BUSY(p); the scan over the entries is one step
 * here): tag the cell DEPOT(d), list it, then store FULL(1), or EMPTY when the cell was
 * no longer ours. When no entry is EMPTY, to the shared pool (state first, then the bit).
 * The cache then keeps its newer half. */
inline flush(p)
{
	d_step {
		dd = NONE;
		e = 0;
		do
		:: e < ND && dd == NONE ->
			if :: dword[e] == EMPTY -> dword[e] = BUSY(p); dd = e :: else -> skip fi;
			e++
		:: else -> break
		od;
		c = cache[p * CAP]
	};
	if
	:: state[c] == CACHED(p) && dd != NONE ->
#ifdef BROKEN_DEPOT_FLUSH
		/* Published before the tag: a refill may see FULL(1) and skip the cell. */
		d_step { cells[dd * MAG] = c; kk = 1 };
		dword[dd] = kk;
		state[c] = DEPOT(dd)
#else
		state[c] = DEPOT(dd);
		d_step { cells[dd * MAG] = c; kk = 1 }
#endif
	:: state[c] == CACHED(p) && dd == NONE -> state[c] = POOL; hint[c] = 1
	:: else -> skip
	fi;
#ifndef BROKEN_DEPOT_FLUSH
	/* FULL(1), or EMPTY when kk is 0 */
	d_step { if :: dd != NONE -> dword[dd] = kk :: else -> skip fi };
#else
	d_step { if :: dd != NONE && kk == 0 -> dword[dd] = EMPTY :: else -> skip fi };
#endif
	d_step {
		j = 0;
		do
		:: j < KEEP -> cache[p * CAP + j] = cache[p * CAP + FL + j]; j++
		:: else -> break
		od;
		n[p] = KEEP
	}
}

inline take(p)
{
	got = NONE;
	/* The inline fast path: pop the cache, no locked instruction. */
	busy[p] = 1;
#ifdef BROKEN_STEAL
	if
	:: true ->
#else
	if
	:: steal[p] == 0 ->
#endif
		m = n[p];
		if
		:: m > 0 ->
			c = cache[p * CAP + m - 1];
			if
			:: state[c] == CACHED(p) -> n[p] = m - 1; state[c] = HELD(p); got = c
			:: else -> n[p] = m - 1 /* dropped (a thief that died half way) */
			fi
		:: else -> skip
		fi
	:: else -> skip
	fi;
	busy[p] = 0;
	/* The slow path: refill (claim into the cache, pop one), or claim directly when a
	 * thief is on the cache; when the pool is dry, steal, then try once more. */
	tries = 0;
	do
	:: got == NONE && tries < 2 ->
		busy[p] = 1;
		if
		:: steal[p] == 0 ->
			/* The depot first: a full magazine into the cache, pop one. */
			depot_refill(p);
			if
			:: got == NONE ->
				claim(p, CACHED(p), got);
				if
				:: got != NONE ->
					/* A second cell for the cache when one is free (-DREFILL2). */
					if
					:: REFILL2 && n[p] < CAP - 1 ->
						claim(p, CACHED(p), extra);
						if
						:: extra != NONE -> cache[p * CAP + n[p]] = extra; n[p]++
						:: else -> skip
						fi
					:: else -> skip
					fi;
					state[got] = HELD(p)
				:: else -> skip
				fi
			:: else -> skip
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
	assert(v == HELD(0) || v == HELD(1)); /* a holder's own cell is out */
	busy[p] = 1;
	if
	:: steal[p] == 0 ->
		if
		:: n[p] == CAP ->
			/* Full: flush the older half to the depot, or to the pool. */
			flush(p)
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
	byte c, k, m, v, got, extra, tries, ops, nheld, stale, moved, dd, e, j, kk;
	bool ok;
	byte held[OPS];
	{
		ops = 0;
		do
		:: ops < OPS ->
			ops++;
			if
			:: take(p)
			:: nheld > 0 -> nheld--; give(p, held[nheld])
			fi;
			/* Forget the temporaries (dead values would only multiply the states). */
			d_step { c = 0; k = 0; m = 0; v = 0; got = 0; extra = 0; tries = 0; stale = 0; moved = 0; ok = 0; dd = 0; e = 0; j = 0; kk = 0 }
		:: else -> break
		od;
		/* The end: give back what it holds, then thread exit flushes the cache. */
		do
		:: nheld > 0 -> nheld--; give(p, held[nheld]);
			d_step { c = 0; k = 0; m = 0; v = 0; got = 0; extra = 0; tries = 0; stale = 0; moved = 0; ok = 0; dd = 0; e = 0; j = 0; kk = 0 }
		:: else -> break
		od;
		busy[p] = 1;
		(steal[p] == 0 || dead[steal[p] - 1]);
		k = 0;
		do
		:: k < n[p] ->
			c = cache[p * CAP + k];
			if
			:: state[c] == CACHED(p) -> state[c] = POOL; hint[c] = 1
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		n[p] = 0;
		busy[p] = 0;
		done[p] = 1
	} unless { dead[p] }
}

/* Reclaim the cells of dead holder d: CAS each of its cells back to the pool (also a cell
 * DEPOT(e) of an entry e that d left BUSY: load the state, load the entry's word, CAS), set
 * the bits of pool cells that lack theirs; then CAS each BUSY(d) entry to EMPTY; free its
 * slot, clear its steal flags. FULL entries stay (the pool owns them). */
inline reclaim(d)
{
	c = 0;
	do
	:: c < NC ->
#ifdef BROKEN_RECLAIM
		d_step { if :: state[c] != POOL && !ISDEPOT(state[c]) -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
#else
		d_step { if :: state[c] == HELD(d) || state[c] == CACHED(d) -> state[c] = POOL; moved = 1 :: else -> moved = 0 fi };
#endif
#ifndef BROKEN_DEPOT_RECLAIM
		if
		:: !moved ->
			v = state[c];
			if
#ifdef BROKEN_DEPOT_GONE
			:: ISDEPOT(v) -> /* any DEPOT cell, as if no state this library writes */
#else
			:: ISDEPOT(v) && dword[v - DEPOT(0)] == BUSY(d) ->
#endif
				d_step { if :: state[c] == v -> state[c] = POOL; moved = 1 :: else -> skip fi }
			:: else -> skip
			fi
		:: else -> skip
		fi;
#endif
		if
		:: moved -> hint[c] = 1
		:: else -> if :: state[c] == POOL && !hint[c] -> hint[c] = 1 :: else -> skip fi
		fi;
		c++
	:: else -> break
	od;
	e = 0;
	do
	:: e < ND -> d_step { if :: dword[e] == BUSY(d) -> dword[e] = EMPTY :: else -> skip fi }; e++
	:: else -> break
	od;
	n[d] = 0;
	busy[d] = 0;
	d_step { if :: steal[1 - d] == d + 1 -> steal[1 - d] = 0 :: else -> skip fi }
}

proctype reclaimer()
{
	byte c, e, v;
	bool moved;
	/* Once holder 0 is dead, any time while holder 1 runs (or never). */
end:	dead[0];
	reclaim(0);
	done[0] = 1
}

/* The depot's invariant, at every state: no cell is DEPOT(d) while entry d is EMPTY; the
 * cell a FULL entry lists is DEPOT(d), and no other cell is (MAG = 1). A guard that blocks
 * until the invariant fails, so it adds no states. */
#define BAD_CELL(c, d) (ISDEPOT(state[c]) && state[c] - DEPOT(0) == d && \
	(dword[d] == EMPTY || (ISFULL(dword[d]) && cells[d * MAG] != c)))
#define BAD_FULL(d) (ISFULL(dword[d]) && state[cells[d * MAG]] != DEPOT(d))
#if NC == 2
#define BAD_ENTRY(d) (BAD_FULL(d) || BAD_CELL(0, d) || BAD_CELL(1, d))
#elif NC == 3
#define BAD_ENTRY(d) (BAD_FULL(d) || BAD_CELL(0, d) || BAD_CELL(1, d) || BAD_CELL(2, d))
#else
#error "the monitor covers NC of 2 or 3"
#endif
#if ND == 1
#define BAD_DEPOT (BAD_ENTRY(0))
#elif ND == 2
#define BAD_DEPOT (BAD_ENTRY(0) || BAD_ENTRY(1))
#else
#error "the monitor covers ND of 1 or 2"
#endif

proctype monitor()
{
	bool depot_ok = 1;
end:	atomic { BAD_DEPOT -> depot_ok = 0; assert(depot_ok) }
}

init
{
	byte c, e, v;
	bool moved, nothing_lost;
	c = 0;
	do
	:: c < NC -> hint[c] = 1; c++
	:: else -> break
	od;
	atomic {
		run holder(0);
		run holder(1);
		run reclaimer();
#ifndef NO_MONITOR
		run monitor()
#endif
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
	:: c < NC ->
		/* In the pool with its bit, or in a FULL depot entry that lists it. */
		nothing_lost = (state[c] == POOL && hint[c]) ||
			       (ISDEPOT(state[c]) && ISFULL(dword[state[c] - DEPOT(0)]) &&
				cells[(state[c] - DEPOT(0)) * MAG] == c);
		assert(nothing_lost);
		c++
	:: else -> break
	od;
	/* No entry left BUSY. */
	e = 0;
	do
	:: e < ND -> assert(dword[e] == EMPTY || ISFULL(dword[e])); e++ /* none left BUSY */
	:: else -> break
	od
}
