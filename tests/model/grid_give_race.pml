/* SPDX-License-Identifier: MIT */
/* The double-give race of the Grid's checked give (<unimem/grid_pvt.h> umi_grid_put and
 * src/grid_slow.c): one cell is out, and two threads (or processes) give it at the same
 * time, each through its own holder slot (cache push, or straight to the pool when a
 * thief is on its cache). Exactly one of them must succeed.
 *   -DBROKEN_GIVE  the give checks the state with a load and then stores (what
 *                  unimem_grid_give_unchecked does): both succeed, spin must find it. */
#define POOL 0
#define HELD 10
#define CACHED(p) (20 + (p))

byte state = HELD;
byte wins = 0;
byte finished = 0;

proctype giver(byte p)
{
	byte v;
	bool ok;
	v = state;
	if
	:: v == HELD ->
		if
		:: true -> /* into this thread's cache */
#ifdef BROKEN_GIVE
			state = CACHED(p); ok = 1
#else
			d_step { if :: state == v -> state = CACHED(p); ok = 1 :: else -> ok = 0 fi }
#endif
		:: true -> /* straight to the pool */
#ifdef BROKEN_GIVE
			state = POOL; ok = 1
#else
			d_step { if :: state == v -> state = POOL; ok = 1 :: else -> ok = 0 fi }
#endif
		fi
	:: else -> ok = 0 /* -EALREADY */
	fi;
	d_step { wins = wins + ok; finished++ }
}

init
{
	atomic { run giver(0); run giver(1) };
	(finished == 2);
	assert(wins == 1)
}
