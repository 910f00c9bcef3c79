#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Model-check the Grid's protocol with spin (tests/model/README.md).

Each run: spin -a MODEL (with -D defines), cc pan.c, ./pan. A sound run must give `errors: 0`
over its whole state space. A broken variant must give an error, and the failed assertion
must be the one named for the bug it plants. A probe (-DPROBE=P_...) must be caught too: its
assertion fails only where the checker reaches the probed spot. The runs go one per core.
Usage: check_models.py [--long] (--long adds the larger bounds). Exit 77 (skipped) when spin
or a C compiler is missing."""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# The failed assertion each broken variant must hit (a substring of pan's report), so that a
# variant is caught for the reason it plants, not for another.
DOUBLE = 'holds['                    # took(): a cell handed to two live holders
GIVE = '(v==(10+p))||(v==((30+(2*p))+0))'  # give(): a live holder's own cell is not out (HELD, PRE)
REFUSED = ' ok '                     # give(): a live holder's give of its own cell was refused
LOST = '(state[c]==0)&&hint[c]'      # the end check: a cell not in the pool with its bit
ONE_WIN = 'wins==1'                  # grid_give_race.pml: not exactly one give won
FREED = '(ghost[k]==0)||'             # bitclaim.pml: reclaim freed a live holder's cell
IN_USE = 'incs==0'                    # grid_ack.pml: a cache emptied while its owner used it


def probe_numbers():
    """P_NAME -> number, from grid.pml's #defines (the probe's assertion shows the number)."""
    with open(os.path.join(HERE, 'grid.pml')) as f:
        return {m.group(1): m.group(2) for m in re.finditer(r'^#define (P_\w+) (\d+)', f.read(), re.M)}


def probe(name, what, defines=(), search='bfs'):
    n = probe_numbers()[name]
    return ('grid.pml', [f'-DPROBE={name}'] + list(defines), f'probe&&({n}=={n})', search,
            f'reached: {what}')


# The bounds where, before layout 6, a dead thief's drained entry went out twice (holder 1
# refilled two cells, holder 0 stole one and died mid-drain, holder 1 took it from the pool,
# then popped it blind). Since layout 6 a refill's entry is popped with a look at its state.
STALE_BOUNDS = ['-DCAP=2', '-DREFILL2=1', '-DOPS=3', '-DOPS0=1']

# (model, defines, expected assertion or None for a sound run, search, what it shows).
# search: 'bfs' finds the short counterexamples of most variants and probes sooner; 'dfs' for
# the sound runs and the variants whose bug breadth first reaches late.
RUNS = [
    ('grid.pml', [], None, 'dfs', 'take/give/refill/flush/steal/reclaim, holder 0 killed anywhere'),
    ('grid.pml', ['-DBROKEN_CLAIM'], DOUBLE, 'bfs', 'claim by clearing the bit, then tag'),
    ('grid.pml', ['-DBROKEN_RECLAIM'], GIVE, 'bfs', 'reclaim racing a live holder'),
    ('grid.pml', ['-DBROKEN_STEAL', '-DREFILL2=1', '-DCAP=2'], (DOUBLE, REFUSED), 'dfs',
     'owner ignores the steal flag (a cell out and in the cache: handed out twice, or its give refused)'),
    ('grid.pml', ['-DBROKEN_FLUSH'], LOST, 'dfs', 'the give flush sets the bit before the state'),
    ('grid.pml', ['-DBROKEN_PRE_RECLAIM'], LOST, 'bfs',
     "reclaim leaves a dead holder's refilled cells (PRE)"),
    ('grid.pml', ['-DBROKEN_ABOVE_N', '-DREFILL2=1', '-DCAP=2'], REFUSED, 'bfs',
     "the give's not-out check of a refill's cell ignores the cache's count"),
    ('grid.pml', ['-DGROUP=1', '-DREFILL2=1', '-DCAP=2', '-DBROKEN_GROUP'], GIVE, 'bfs',
     "the group claim checks only the first cell's state"),
    probe('P_REFILL', "holder 0's refill from the pool"),
    probe('P_FLUSH', "holder 0's give flush, between the state store and the bit"),
    probe('P_STEAL', 'holder 0 steals a cell, between the state CAS and the bit'),
    probe('P_DIRECT', 'a take straight from the pool (a thief on its cache)'),
    probe('P_RECLAIM', "reclaim takes back a dead holder's cell"),
    probe('P_REPAIR', 'reclaim sets the missing bit of a pool cell'),
    probe('P_THIEF', 'reclaim clears the steal flag a dead thief left'),
    probe('P_EXIT', "holder 0's exit flush, between the state store and the bit"),
    probe('P_RESET', 'a refill puts back a stale bit whose cell came back meanwhile'),
    probe('P_STALE', 'holder 1 enters its STALE slot and drops an entry a dead thief drained'),
    probe('P_GROUP', "holder 0's refill claims both cells with one exchange",
          ['-DGROUP=1', '-DREFILL2=1', '-DCAP=2']),
    probe('P_UNGROUP', 'a group exchange finds a cell not free and claims one at a time',
          ['-DGROUP=1', '-DREFILL2=1', '-DCAP=2']),
    ('grid_give_race.pml', [], None, 'dfs', 'two concurrent gives of one cell: exactly one wins'),
    ('grid_give_race.pml', ['-DBROKEN_GIVE'], ONE_WIN, 'bfs', 'give without the atomic check'),
    ('grid_ack.pml', [], None, 'dfs',
     "TSO: a thief robs another process's owner after its ack, or once it is seen asleep"),
    ('grid_ack.pml', ['-DFENCE'], None, 'dfs', 'TSO: the same after membarrier instead'),
    ('grid_ack.pml', ['-DBROKEN_NO_ACK'], IN_USE, 'bfs', 'TSO: the thief waits for neither'),
    ('grid_ack.pml', ['-DBROKEN_TOKEN'], IN_USE, 'bfs', 'TSO: both steals use one token'),
    ('grid_ack.pml', ['-DBROKEN_PARKED'], IN_USE, 'bfs',
     "TSO: 'asleep' read from the program's place, not from an empty store buffer"),
    ('grid_ack.pml', ['-DPROBE_DRAIN'], 'probe&&', 'bfs',
     'reached: a drain after an ack, the owner having used its cache'),
    # a design not built (docs/GRID.md): the claim by the bitmap; its sound run is in --long
    ('bitclaim.pml', ['-DBROKEN_NO_RECHECK'], FREED, 'dfs', 'design: orphans without the recheck'),
    ('bitclaim.pml', ['-DBROKEN_EARLY_READ'], FREED, 'dfs',
     'design: the state and bit read before the holders are known dead'),
    ('bitclaim.pml', ['-DBROKEN_NO_INTENT'], FREED, 'dfs', 'design: claims and flushes without intents'),
]
LONG = [  # the longest first: the runs go one per core
    ('bitclaim.pml', [], None, 'dfs',
     'design (not built): the claim by the bitmap, intents, orphans; holders killed anywhere'),
    ('grid.pml', ['-DGROUP=1', '-DREFILL2=1', '-DCAP=2'], None, 'dfs',
     "caches of 2, refills of two cells, the group claim (src/cas_group.h)"),
    ('grid.pml', ['-DOPS=3'], None, 'dfs', '3 operations each'),
    ('grid.pml', STALE_BOUNDS, None, 'dfs',
     'the bounds of the BROKEN_STALE variant (caches of 2, refills of two, 3 operations)'),
    ('grid.pml', ['-DNC=3'], None, 'dfs', 'three cells'),
    ('grid.pml', ['-DCAP=2', '-DREFILL2=1'], None, 'dfs', 'caches of 2, refills of two cells'),
    ('grid.pml', ['-DCAP=2'], None, 'dfs', 'caches of 2 (no give finds its cache full)'),
    probe('P_POP', "the fast path's pop, at 3 operations", ['-DOPS=3'], 'dfs'),
]


def run(cc, model, defines, expect, search, what):
    """One spin run; returns (ok, line to print, pan's output when it matters)."""
    name = f'{model} {" ".join(defines) or "(sound)"}: {what}'
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(HERE, model)
        r = subprocess.run(['spin'] + defines + ['-a', src], cwd=d, capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(os.path.join(d, 'pan.c')):
            return False, f'FAIL {name}: spin -a: {r.stdout}{r.stderr}', ''
        bfs = ['-DBFS'] if search == 'bfs' else []
        r = subprocess.run([cc, '-O2', '-DSAFETY', '-DCOLLAPSE'] + bfs + ['-o', 'pan', 'pan.c'],
                           cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            return False, f'FAIL {name}: cc: {r.stderr}', ''
        t0 = time.monotonic()
        r = subprocess.run(['./pan', '-m2000000'], cwd=d, capture_output=True, text=True)
        secs = time.monotonic() - t0
        out = r.stdout + r.stderr
        m = re.search(r'errors: (\d+)', out)
        if not m:
            return False, f'FAIL {name}: no result from pan', out
        errors = int(m.group(1))
        states = re.search(r'([\d.e+]+) states, stored', out)
        states = str(int(float(states.group(1)))) if states else '?'  # pan writes 1.2e+08 past 1e8
        if 'max search depth too small' in out:
            return False, f'FAIL {name}: search depth too small', out
        if expect is None:
            ok = errors == 0
            verdict = 'no error' if ok else 'ERROR'
        else:
            failed = re.search(r'assertion violated(.*)', out)
            wants = expect if isinstance(expect, tuple) else (expect,)
            ok = errors > 0 and failed is not None and any(w in failed.group(1) + ' ' for w in wants)
            if ok:
                verdict = 'probe caught' if 'probe' in wants[0] else 'error found, as planted'
            elif errors == 0:
                verdict = ('PROBE NOT REACHED' if 'probe' in wants[0]
                           else 'NO ERROR FOUND in the broken variant')
            else:
                verdict = (f'an error other than the expected one (wanted {expect!r}): '
                           f'{failed.group(0) if failed else "not an assertion"}')
        line = f'{"ok" if ok else "FAIL"} {name}: {verdict} ({states} states, {secs:.1f} s)'
        return ok, line, '' if ok else out


def main_runs(cc, runs):
    # One run per core (each is one single-threaded pan); printed in the list's order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as ex:
        results = list(ex.map(lambda r: run(cc, *r), runs))
    for ok, line, out in results:
        print(line, file=sys.stderr)
        if out:
            print(out, file=sys.stderr)
    return all(ok for ok, _, _ in results)


def main():
    spin = shutil.which('spin')
    cc = shutil.which(os.environ.get('CC', 'cc')) or shutil.which('gcc')
    if not spin or not cc:
        print('skipped: spin or a C compiler is missing (apt-get install spin)', file=sys.stderr)
        return 77
    runs = (LONG if '--long' in sys.argv else []) + RUNS
    return 0 if main_runs(cc, runs) else 1


if __name__ == '__main__':
    sys.exit(main())
