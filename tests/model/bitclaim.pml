/* SPDX-License-Identifier: MIT */
/* A DESIGN model, not a model of the code: the refill that claims by the bitmap, sketched in
 * docs/GRID.md ("Not built"). The bitmap is authoritative (bit set: the cell is in the pool
 * and nobody owns it); a claim is one fetch-and of the word, then plain stores of the state
 * words; a flush stores the states, then one fetch-or. Before either, a holder stores an
 * intent (the cells it may move) and a sequence number in its slot, and clears it after.
 * Reclaim gives back what names a dead holder, and sets the bit of an orphan: it reads
 * (1) the intents and sequence numbers, (2) which holders are alive, (3) the state and the
 * bit, (4) the sequence numbers again; an orphan has state 0 and bit clear, no intent of a
 * holder alive at (2) covers it, and no sequence number moved.
 *
 * Two holders on a pool of NC cells (one bitmap word); each claims some of the free cells
 * of its intent (all, all but the lowest, or the lowest) and flushes them, ROUNDS times;
 * either may die between any two steps. A reclaimer runs concurrently, twice; a last
 * reclaim runs once both holders are done or dead. Sequential consistency is assumed (the
 * real code needs the intent store ordered before the fetch-and: x86's locked instruction
 * does it, elsewhere a fence).
 *
 * Checked: a claim never wins a cell someone owns (the ghost owner); reclaim never frees a
 * live holder's cell; at the end every cell is in the pool or held by a live holder.
 *   spin -a bitclaim.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 *   -DBROKEN_NO_RECHECK: reclaim reads the intents once (caught: a cell claimed, then
 *   flushed, reads 0 on both sides of a reading that found no intent).
 *   -DBROKEN_EARLY_READ: reclaim reads the state and the bit before it looks at which
 *   holders are alive (caught: a holder finished its flush, died, and a live claimer took
 *   the cell meanwhile).
 *   -DBROKEN_NO_INTENT: holders store no intents (caught). */
#ifndef NC
#define NC 3
#endif
#ifndef ROUNDS
#define ROUNDS 1
#endif
#define ALL ((1 << NC) - 1)

byte bits = ALL;      /* the bitmap word */
byte state[NC];       /* 0 free, h + 1: held or cached by holder h */
byte intent[2];       /* a mask of cells, 0 when none */
byte seq[2];          /* bumped with every intent store (the same 16-byte store) */
bool alive[2] = true;
byte ghost[NC];       /* who really owns the cell (0: the pool) */
byte done = 0;        /* holders finished or dead */

#define DIE(h) if :: alive[h] = false; goto dead :: skip fi
#define INTENT(h, m) atomic { intent[h] = (m); seq[h]++ }

proctype holder(byte h)
{
	byte got, c, r, old;
	for (r : 1 .. ROUNDS) {
		/* claim */
		DIE(h);
#ifndef BROKEN_NO_INTENT
		INTENT(h, bits);
		DIE(h);
#endif
		atomic {
			/* fetch_and(~v) of the v read into the intent: only cells of the intent can
			 * be won (a bit set meanwhile by a flush stays set) */
#ifndef BROKEN_NO_INTENT
			old = bits & intent[h];
#else
			old = bits;
#endif
			/* one, two or all of those (the checker tries each) */
			if
			:: got = old
			:: got = old & (old - 1)
			:: got = old & ~(old & (old - 1))
			fi;
			for (c : 0 .. NC - 1) {
				if
				:: got & (1 << c) -> assert(ghost[c] == 0); ghost[c] = h + 1
				:: else -> skip
				fi
			}
			bits = bits & ~got
		}
		for (c : 0 .. NC - 1) {
			if
			:: got & (1 << c) -> DIE(h); state[c] = h + 1
			:: else -> skip
			fi
		}
		DIE(h);
		INTENT(h, 0);
		/* flush what it got */
		DIE(h);
#ifndef BROKEN_NO_INTENT
		INTENT(h, got);
		DIE(h);
#endif
		for (c : 0 .. NC - 1) {
			if
			:: got & (1 << c) -> DIE(h); state[c] = 0
			:: else -> skip
			fi
		}
		DIE(h);
		atomic {
			for (c : 0 .. NC - 1) {
				if
				:: got & (1 << c) -> assert(ghost[c] == h + 1); ghost[c] = 0
				:: else -> skip
				fi
			}
			bits = bits | got
		}
		DIE(h);
		INTENT(h, 0)
	}
dead:
	done++
}

/* One pass of reclaim over the cells. */
inline reclaim_pass()
{
	for (k : 0 .. NC - 1) {
		/* a state that names a dead holder: give the cell back (state first, then the bit;
		 * a reclaim that stops between leaves an orphan for the next) */
		atomic {
			if
			:: state[k] != 0 && !alive[state[k] - 1] -> state[k] = 0
			:: else -> skip
			fi
		}
		/* An orphan: in this order, (1) every holder's intent and its sequence number,
		 * (2) which holders are alive (a dead one acts no more, so what it did before
		 * is seen by (3)), (3) the state and the bit, (4) the sequence numbers again:
		 * no holder stored an intent since (1), so none moved the cell meanwhile unless
		 * its intent of (1) covers it (the state may go 0 -> held -> 0 in that time: a
		 * claim, then a flush). */
		atomic { q0 = seq[0]; i0 = intent[0] }
		atomic { q1 = seq[1]; i1 = intent[1] }
#ifdef BROKEN_EARLY_READ
		s0 = state[k];
		b0 = bits & (1 << k);
#endif
		cov = 0;
		if :: alive[0] -> cov = cov | i0 :: else -> skip fi;
		if :: alive[1] -> cov = cov | i1 :: else -> skip fi;
#ifndef BROKEN_EARLY_READ
		s0 = state[k];
		b0 = bits & (1 << k);
#endif
#ifndef BROKEN_NO_RECHECK
		if :: seq[0] != q0 -> cov = ALL :: else -> skip fi;
		if :: seq[1] != q1 -> cov = ALL :: else -> skip fi;
#endif
		if
		:: s0 == 0 && b0 == 0 && (cov & (1 << k)) == 0 ->
			atomic {
				assert(ghost[k] == 0 || !alive[ghost[k] - 1]);
				ghost[k] = 0;
				bits = bits | (1 << k)
			}
		:: else -> skip
		fi
	}
}

proctype reclaimer()
{
	byte k, s0, b0, cov, q0, q1, i0, i1;
	reclaim_pass();
	reclaim_pass();
	/* the last reclaim, once both holders are done or dead */
	done == 2;
	reclaim_pass();
	for (k : 0 .. NC - 1) {
		assert((bits & (1 << k)) != 0 || (ghost[k] != 0 && alive[ghost[k] - 1]))
	}
}

init
{
	atomic {
		run holder(0);
		run holder(1);
		run reclaimer()
	}
}
