#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The project's performance targets, judged on one `unimem bench --json` run.

The command prints measurements only; this script holds the team's pass/fail thresholds
(the targets of the COMPASS issues) and prints, for each, the value in that run, the limit,
and whether it is met.

Usage: bench/targets.py [--json] [--strict] [FILE]
  FILE      the output of `unimem bench --json` (default, or '-': stdin), e.g.
            build/tools/unimem bench --quick --json -q | bench/targets.py
  --json    print the targets as a JSON array instead of the table
  --strict  exit 1 when a measured target is missed (default: 0 whenever the input is good)
Exit status 2: the input is not a `unimem bench --json` run.
"""

import json
import math
import re
import sys

NAN = float('nan')

# Row names, as `unimem bench` prints them.
BLOCK_PINNED = 'unimem_block_open (pinned)'
BLOCK_UNPINNED = 'unimem_block_open UNPINNED (lazy)'
TAPE_TAKE = 'unimem_tape_take (thread-safe)'
TAPE_OWNED = 'unimem_tape_take_owned (one owner)'
TAPE_CHUNK = 'unimem_tape_chunk_take (per thread)'
THREADS_CHUNK = 'unimem_tape_chunk_take (per-thread chunk)'
GLIBC = 'glibc malloc+free'
OTHER_MALLOCS = ('jemalloc malloc+free', 'mimalloc mi_malloc+mi_free',
                 'tcmalloc tc_malloc+tc_free')
GRID = 'unimem_grid_take + give (generic)'
GRID_GEN = 'unimem Grid, generated (checked give)'
GRID_UNCHECKED = 'unimem Grid, generated, give_unchecked'
MEMPOOL = 'DPDK rte_mempool + per-thread cache'
CROSSBEAM = 'crossbeam ArrayQueue (its algorithm in C)'
# Issue 15's patterns: (group id, what).
GRID_PATTERNS = (('grid_pairs', '1 thread'), ('grid_pairs_4k', '1 thread, 4 KiB cells'),
                 ('grid_2t', '2 threads, 4096 cells'), ('grid_2t_4k', '2 threads, 256 x 4 KiB'),
                 ('grid_pc', 'producer/consumer'))


class Run:
    def __init__(self, doc):
        if not isinstance(doc, dict) or doc.get('tool') != 'unimem bench' or \
                not isinstance(doc.get('groups'), list):
            raise ValueError('not the output of `unimem bench --json`')
        self.groups = {g['id']: g for g in doc['groups']}

    def group(self, gid):
        return self.groups.get(gid)

    @staticmethod
    def row(g, name):
        for r in g.get('rows', []):
            if r['name'] == name:
                return r
        return None

    def med(self, g, name, metric='time'):
        """Median of a row's metric; NaN when the row is absent or skipped."""
        r = self.row(g, name)
        if r is None or r.get('skipped'):
            return NAN
        v = r.get('metrics', {}).get(metric, {}).get('median')
        return NAN if v is None else float(v)

    def ratio(self, g, name, metric='time'):
        """This row / the group's base row, as the command computed it."""
        r = self.row(g, name)
        if r is None or r.get('skipped'):
            return NAN
        v = r.get('ratio', {}).get(metric)
        return NAN if v is None else float(v)


def target(out, what, value, at_most, limit, unit, note=None):
    out.append({'what': what, 'value': value, 'at_most': at_most, 'limit': limit,
                'unit': unit, 'known': math.isfinite(value), 'note': note or ''})


def met(t):
    return t['known'] and (t['value'] <= t['limit'] if t['at_most'] else t['value'] >= t['limit'])


def evaluate(run):
    out = []
    for mib in (16, 256):
        g = run.group(f'block_open_{mib}mib')
        if g is None:
            continue
        target(out, f'pinned {mib} MiB open / anchor open', run.ratio(g, BLOCK_PINNED, 'open'),
               True, 1.2, 'x')
        target(out, f'pinned {mib} MiB open+close / anchor open+close',
               run.ratio(g, BLOCK_PINNED, 'open+close'), True, 1.2, 'x',
               'the stated target is for open; close is shown beside it')
        if mib == 16:
            target(out, 'unpinned 16 MiB open', run.med(g, BLOCK_UNPINNED, 'open') * 1000, True,
                   50, 'us')
    tp = run.group('tape_take')
    if tp is not None:
        target(out, 'thread-safe take (unimem_tape_take)', run.med(tp, TAPE_TAKE), True, 2.2,
               'ns')
        target(out, 'single-owner take (unimem_tape_take_owned)', run.med(tp, TAPE_OWNED), True,
               1.2, 'ns')
        target(out, 'single-owner take (unimem_tape_chunk_take)', run.med(tp, TAPE_CHUNK), True,
               1.2, 'ns')
        target(out, 'glibc malloc+free / thread-safe take', run.ratio(tp, GLIBC), False, 5, 'x')
        best = None
        for name in OTHER_MALLOCS:
            v = run.med(tp, name)
            if math.isfinite(v) and (best is None or v < run.med(tp, best)):
                best = name
        note = 'no other malloc installed: glibc stands in' if best is None else None
        best = best or GLIBC
        target(out, f'best installed malloc ({best}) / thread-safe take', run.ratio(tp, best),
               False, 2.5, 'x', note)
        target(out, f'best installed malloc ({best}) / chunk take',
               run.med(tp, best) / run.med(tp, TAPE_CHUNK), False, 2.5, 'x', note)
    tw = run.group('tape_take_2threads')
    if tw is not None:
        target(out, '2 threads on one Tape, per take per thread (chunks)',
               run.med(tw, THREADS_CHUNK), True, 5, 'ns')
    cl = run.group('clear')
    if cl is not None:
        first = cl['rows'][0]['name'] if cl.get('rows') else ''
        target(out, 'Tape clear', run.med(cl, first), True, 0.3, 'ns')
    gr = run.group('grid_pairs') or run.group('grid')
    if gr is not None:
        r = run.row(gr, GRID)
        target(out, 'Grid take+give, one thread', run.med(gr, GRID), True, 5, 'ns',
               'the Grid is not in this build' if r is None or r.get('skipped') else None)
    # Issue 15: against the checked give (the default) and against give_unchecked (the
    # explicitly named give without the locked instruction, which the issue allows).
    for gid, what in GRID_PATTERNS:
        g = run.group(gid)
        if g is None:
            continue
        r = run.row(g, MEMPOOL)
        dpdk_note = 'DPDK is not in this build' if r is None or r.get('skipped') else None
        unchecked = run.ratio(g, GRID_UNCHECKED)
        target(out, f'Grid {what}: rte_mempool / generated Grid', run.ratio(g, MEMPOOL), False,
               1.0, 'x', dpdk_note)
        target(out, f'Grid {what}: rte_mempool / Grid give_unchecked',
               run.ratio(g, MEMPOOL) / unchecked if unchecked else NAN, False, 1.0, 'x', dpdk_note)
        target(out, f'Grid {what}: crossbeam / generated Grid', run.ratio(g, CROSSBEAM), False,
               2.0, 'x')
        target(out, f'Grid {what}: crossbeam / Grid give_unchecked',
               run.ratio(g, CROSSBEAM) / unchecked if unchecked else NAN, False, 2.0, 'x')
    gn, g1 = run.group('grid_nt'), run.group('grid_pairs')
    if gn is not None and g1 is not None:
        m = re.match(r'Grid: (\d+) threads', gn.get('title', ''))
        n = int(m.group(1)) if m else 0
        t1, tn = run.med(g1, GRID_GEN), run.med(gn, GRID_GEN)
        target(out, f'Grid {n} threads: throughput / one thread\'s', n * t1 / tn if n and tn
               else NAN, False, 12, 'x')
    gp = run.group('grid_procs')
    if gp is not None:
        target(out, 'Grid take+give, 2 processes / 2 threads of one process',
               run.ratio(gp, '2 processes'), True, 1.5, 'x')
    gc = run.group('grid_reclaim')
    if gc is not None:
        target(out, 'Grid reclaim of 100,000 cells of a killed process',
               run.med(gc, 'unimem_grid_reclaim, 100,000 cells'), True, 1.0, 'ms')
    rd = run.group('read_bandwidth')
    if rd is not None:
        first = rd['rows'][0]['name'] if rd.get('rows') else ''
        target(out, 'Block read bandwidth / malloc', run.ratio(rd, first), False, 0.97, 'x')
    return out


def fmt_num(v):
    """As the command formats its numbers."""
    if not math.isfinite(v):
        return '-'
    if v >= 100:
        return '%.0f' % v
    if v >= 10:
        return '%.1f' % v
    if v >= 1:
        return '%.2f' % v
    return '%.3f' % v


def print_table(targets, f=sys.stdout):
    print('Targets (this run)', file=f)
    for t in targets:
        verdict = 'not measured' if not t['known'] else 'met' if met(t) else 'MISSED'
        line = '  %-62s %8s %-2s  (%s %s)  %s' % (t['what'], fmt_num(t['value']), t['unit'],
                                                 '<=' if t['at_most'] else '>=',
                                                 fmt_num(t['limit']), verdict)
        if t['known'] and not met(t):
            gap = t['value'] / t['limit'] if t['at_most'] else t['limit'] / t['value']
            line += ', gap %.2fx' % gap
        if t['note']:
            line += '  [%s]' % t['note']
        print(line, file=f)


def as_json(targets):
    out = []
    for t in targets:
        d = {'what': t['what'], 'value': t['value'] if t['known'] else None,
             'unit': t['unit'], 'compare': '<=' if t['at_most'] else '>=',
             'limit': t['limit'], 'met': met(t) if t['known'] else None}
        if t['note']:
            d['note'] = t['note']
        out.append(d)
    return out


def main(argv):
    args = argv[1:]
    want_json = '--json' in args
    strict = '--strict' in args
    files = [a for a in args if a not in ('--json', '--strict')]
    if len(files) > 1 or any(a.startswith('--') for a in files):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = files[0] if files else '-'
    try:
        if path == '-':
            doc = json.load(sys.stdin)
        else:
            with open(path, encoding='utf-8') as f:
                doc = json.load(f)
        targets = evaluate(Run(doc))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        print(f'targets.py: {path}: {e}', file=sys.stderr)
        return 2
    if want_json:
        json.dump(as_json(targets), sys.stdout, indent=2)
        print()
    else:
        print_table(targets)
    missed = any(t['known'] and not met(t) for t in targets)
    return 1 if strict and missed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
