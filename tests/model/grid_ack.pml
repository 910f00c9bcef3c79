/* SPDX-License-Identifier: MIT */
/* The thief's fence against an owner in another process, under x86-TSO: the one place where
 * the Grid relies on an order that grid.pml (sequentially consistent) takes as given.
 *
 * The owner (<unimem/grid_pvt.h> umi_grid_take_index / umi_grid_put, src/grid_slow.c
 * enter()) stores busy = 1 and then loads the steal flag with no barrier between: its store
 * may wait in its store buffer (FIFO; its own loads see it, no one else does) while the load
 * runs. With the flag 0 it uses its cache (here: one store to `n`, the cache's count) and
 * stores busy = 0; with a flag it stores busy = 0, then the flag's token into `ack`. A
 * drainer moves the oldest buffered store to memory at any moment.
 *
 * The thief (src/grid_slow.c steal_from, drain): takes the flag with a locked
 * compare-and-swap (memory at once), then waits until its token is in `ack`, or until the
 * kernel says that the owner's thread sleeps off its CPU (umi_os_thread_parked: at that
 * instant its store buffer is empty), or gives up and lets the victim go; then it waits
 * until memory's busy is 0, then empties the cache and clears the flag. It steals twice,
 * with the tokens 1 and 2.
 *
 * Checked: when the thief empties the cache, no use of the cache by the owner is still
 * running or not yet visible (`incs` counts the owner's uses whose busy = 0 has not reached
 * memory).
 *   -DBROKEN_NO_ACK    the thief does not wait for the ack (no fence at all): caught
 *   -DBROKEN_TOKEN     both steals use token 1, so the first steal's ack satisfies the
 *                      second: caught
 *   -DBROKEN_PARKED    the thief trusts that the owner is between two operations (as a
 *                      thread state of "sleeping" in /proc/PID/stat would say, which can be
 *                      read while the thread's last stores still sit in its buffer) instead
 *                      of the kernel's off-CPU check: caught
 *   -DFENCE            instead of the acks, the thief's membarrier: the owner's store
 *                      buffer drains at once (a full barrier on its CPU); sound too
 *   -DPROBE_DRAIN      fails where the thief empties a cache after its token was acked
 *                      while the owner had used the cache before: the checker gets there */
#define OPS 3       /* the owner's takes or gives */
#define SB 4        /* store buffer entries */

#define V_BUSY 0
#define V_ACK 1
#define V_N 2
#define CS_END 9    /* a buffered busy = 0 that ends a use of the cache */

byte mem[3];
byte steal = 0;
byte incs = 0;      /* the owner's uses of its cache not yet ended in memory */
byte sbv[SB];       /* store buffer: variable */
byte sbx[SB];       /* store buffer: value (CS_END: busy = 0 that ends a use) */
byte sblen = 0;
bool owner_done = 0;
bool between = 1;   /* the owner is between two operations (its program, not its memory) */
bool probe = 1;     /* names the probe's assertion (check_models.py) */

inline push(v, x)
{
	d_step { sblen < SB -> sbv[sblen] = v; sbx[sblen] = x; sblen++ }
}

/* The oldest buffered store reaches memory. */
inline drain_one()
{
	d_step {
		sblen > 0 ->
		if
		:: sbx[0] == CS_END -> mem[sbv[0]] = 0; incs--
		:: else -> mem[sbv[0]] = sbx[0]
		fi;
		sbv[0] = sbv[1]; sbx[0] = sbx[1];
		sbv[1] = sbv[2]; sbx[1] = sbx[2];
		sbv[2] = sbv[3]; sbx[2] = sbx[3];
		sblen--
	}
}

proctype owner()
{
	byte k = 0, f;
	do
	:: k < OPS ->
		between = 0;
		push(V_BUSY, 1);
		/* The load of the flag: the owner never stores it, so it reads memory. A use of
		 * the cache starts in the same step as the load that found the flag 0. */
		d_step { f = steal; if :: f == 0 -> incs++ :: else -> skip fi };
		if
		:: f == 0 ->
			push(V_N, 1); /* the cache: pop or push */
			push(V_BUSY, CS_END)
		:: else ->
			push(V_BUSY, 0);
			push(V_ACK, f) /* enter(): the ack, after busy = 0 */
		fi;
		between = 1;
		k++
	:: else -> break
	od;
	owner_done = 1
}

proctype drainer()
{
end:	do
	:: drain_one()
	od
}

proctype thief()
{
	byte round = 0, token;
	do
	:: round < 2 ->
#ifdef BROKEN_TOKEN
		token = 1;
#else
		token = round + 1;
#endif
		d_step { steal == 0 -> steal = token };
#if defined(FENCE)
		/* membarrier: the owner's CPU runs a full barrier; its buffer drains. */
		d_step { do :: sblen > 0 -> drain_one() :: else -> break od };
		goto busy;
#elif defined(BROKEN_NO_ACK)
		goto busy;
#else
		if
		:: mem[V_ACK] == token -> goto busy
		/* The kernel saw the owner's thread asleep off its CPU: at that instant its
		 * buffer was empty (it passed the scheduler's full barrier), and it passes
		 * another before it runs again. */
#ifdef BROKEN_PARKED
		:: between -> goto busy
#else
		:: sblen == 0 -> goto busy
#endif
		:: true -> goto letgo /* no ack within the wait: let it go */
		fi;
#endif
busy:
		if
		:: mem[V_BUSY] == 0 ->
			assert(incs == 0);
#ifdef PROBE_DRAIN
			assert(!(probe && mem[V_ACK] == token && mem[V_N] == 1));
#endif
			mem[V_N] = 0 /* the drain */
		:: true -> skip /* still busy: give up (bounded wait) */
		fi;
letgo:
		steal = 0;
		round++
	:: else -> break
	od
}

init
{
	atomic { run owner(); run drainer(); run thief() }
}
