#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The unimem command: `info` and `bench --quick --json` run and print well-formed output;
bench/targets.py judges the targets on a `--json` run (the command itself has none).

Usage: test_cli.py UNIMEM VERSION TARGETS_PY. The numbers are not checked (they belong to the
machine), only the shape. Prints to stderr only; exits 0 (pass) or 1 (fail).
"""

import json
import math
import os
import shutil
import subprocess
import sys



def has_pkg(name):
    """Whether pkg-config knows `name` (a package the build may have used)."""
    if not shutil.which('pkg-config'):
        return False
    return subprocess.run(['pkg-config', '--exists', name]).returncode == 0

def run(exe, *args, timeout=600):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def is_number_or_null(v):
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                         and math.isfinite(v))


def test_info_text(exe, version):
    rc, out, err = run(exe, 'info')
    check(rc == 0, f'unimem info: exit {rc}: {err}')
    for word in ('backend', 'page size', 'huge pages', 'RLIMIT_MEMLOCK', 'pinning', 'GPU',
                 'pool types', 'block types', version):
        check(word in out, f'unimem info: no "{word}" in:\n{out}')


def test_info_json(exe, version):
    rc, out, err = run(exe, 'info', '--json')
    check(rc == 0, f'unimem info --json: exit {rc}: {err}')
    d = json.loads(out)
    check(d['version'] == version, f"version {d['version']} != {version}")
    check(isinstance(d['page_size'], int) and d['page_size'] >= 4096, 'page_size')
    for key in ('backend', 'machine', 'huge_pages', 'memlock', 'gpu', 'pool_types',
                'block_types'):
        check(key in d, f'info --json: no "{key}"')
    check(isinstance(d['huge_pages']['shmem_huge_pages_off'], bool), 'shmem_huge_pages_off')
    check(isinstance(d['memlock']['default_16mib_block_pins'], bool), 'pins')
    check(isinstance(d['gpu']['count'], int) and d['gpu']['count'] >= 0, 'gpu count')
    check(all(isinstance(x, str) for x in d['pool_types']), 'pool_types')
    check(all(isinstance(x, str) for x in d['block_types']), 'block_types')


def test_bench_json(exe, version):
    rc, out, err = run(exe, 'bench', '--quick', '--json')
    check(rc == 0, f'unimem bench --quick --json: exit {rc}: {err}')
    d = json.loads(out)
    check(d['tool'] == 'unimem bench' and d['mode'] == 'quick', 'tool/mode')
    check(d['version'] == version, 'version')
    check(isinstance(d['machine']['cpus'], int), 'machine')
    ids = [g['id'] for g in d['groups']]
    for want in ('block_open_16mib', 'block_open_256mib', 'tape_take', 'tape_take_2threads',
                 'clear', 'grid', 'grid_pairs', 'grid_pairs_4k', 'grid_2t', 'grid_2t_4k',
                 'grid_pc', 'grid_procs', 'grid_reclaim', 'read_bandwidth', 'write_bandwidth'):
        check(want in ids, f'bench: no group "{want}" in {ids}')
    # Across processes: both rows ran (a fork's child on the pool; a reclaim that gave back
    # every cell of a killed holder, else the row is skipped with a note).
    for gid in ('grid_procs', 'grid_reclaim'):
        g = next(x for x in d['groups'] if x['id'] == gid)
        for r in g['rows']:
            check(not r['skipped'] or 'sanitizer build' in (r.get('note') or ''),
                  f"{gid}: {r['name']} skipped: {r.get('note')}")
    # The Grid's rivals run wherever their packages are (CI installs them all).
    pairs = next(g for g in d['groups'] if g['id'] == 'grid_2t')
    rows = {r['name']: r for r in pairs['rows']}
    for name, present in (('DPDK rte_mempool + per-thread cache', has_pkg('libdpdk')),
                          ('ck_ring MPMC (Concurrency Kit)', os.path.exists('/usr/include/ck_ring.h')),
                          ('unimem Grid, generated (checked give)', True),
                          ('crossbeam ArrayQueue (its algorithm in C)', True)):
        if name not in rows:  # a plugin's row: absent where it was not loaded, saying why
            check(not present or 'sanitizer build' in pairs.get('note', ''),
                  f'grid_2t: no row "{name}" (note: {pairs.get("note")})')
            continue
        note = rows[name].get('note') or ''
        if present and 'sanitizer build' not in note:
            check(not rows[name]['skipped'], f"grid_2t: {name} skipped: {note}")
    for g in d['groups']:
        check(isinstance(g['title'], str) and isinstance(g['unit'], str), g['id'])
        if g['skipped']:
            continue
        check(g['rows'], f"{g['id']}: no rows")
        for r in g['rows']:
            check(isinstance(r['name'], str) and isinstance(r['skipped'], bool), r)
            if r['skipped']:
                check(r.get('note'), f"{g['id']}/{r['name']}: skipped without a note")
                continue
            for name, m in r['metrics'].items():
                for k in ('median', 'min', 'max', 'q1', 'q3'):
                    check(is_number_or_null(m[k]), f"{g['id']}/{r['name']}/{name}/{k}")
                check(m['n'] >= 1, 'n')
                if m['median'] is not None:
                    check(m['min'] <= m['median'] <= m['max'], f"{g['id']}/{r['name']}: order")
            if g['base'] is not None:
                check(all(is_number_or_null(v) for v in r['ratio'].values()), 'ratio')
    check('targets' not in d, 'bench --json: pass/fail targets belong to bench/targets.py')


def test_bench_text_and_usage(exe):
    rc, out, err = run(exe, 'bench', '--quick', '--only', 'clear,tape')
    check(rc == 0, f'bench --quick --only: exit {rc}: {err}')
    check('Tape clear' in out and 'Targets' not in out, out)
    check('Block open' not in out, '--only ignored')
    for bad in (['frobnicate'], ['bench', '--nope'], ['bench', '--only', 'nope'],
                ['info', '--nope'], []):
        rc, out, err = run(exe, *bad)
        check(rc == 2, f'unimem {" ".join(bad)}: exit {rc}, expected 2')
        check(out == '', f'unimem {" ".join(bad)}: usage errors go to stderr')
    rc, out, _ = run(exe, 'help')
    check(rc == 0 and 'usage' in out, 'help')


def targets(script, *args, stdin=None):
    p = subprocess.run([sys.executable, script, *args], input=stdin, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def target_line(out, what):
    lines = [line for line in out.splitlines() if line.strip().startswith(what)]
    check(len(lines) == 1, f'targets: {len(lines)} lines for "{what}" in:\n{out}')
    return lines[0]


def test_targets_of_a_run(exe, script):
    rc, run_json, err = run(exe, 'bench', '--quick', '--json', '-q', '--only', 'clear,grid')
    check(rc == 0, f'bench --quick --json --only clear,grid: exit {rc}: {err}')
    rc, out, err = targets(script, stdin=run_json)
    check(rc == 0, f'targets.py < run: exit {rc}: {err}')
    check(out.startswith('Targets (this run)\n'), out)
    for what in ('Tape clear', 'Grid take+give, one thread',
                 'Grid 2 threads, 4096 cells: rte_mempool / generated Grid'):
        line = target_line(out, what)
        check(line.rstrip().endswith('met') or 'not measured' in line or 'MISSED, gap' in line, line)
    check('Block' not in out and 'take (unimem_tape_take)' not in out,
          f'targets of groups that did not run:\n{out}')
    rc, out, err = targets(script, '--json', '-', stdin=run_json)
    check(rc == 0, f'targets.py --json: exit {rc}: {err}')
    ts = json.loads(out)
    whats = [t['what'] for t in ts]
    check(whats[:2] == ['Tape clear', 'Grid take+give, one thread'], ts)
    check('Grid 2 threads, 4096 cells: rte_mempool / generated Grid' in whats and
          'Grid producer/consumer: crossbeam / generated Grid' in whats, whats)
    for t in ts:
        check(t['compare'] in ('<=', '>=') and t['met'] in (True, False, None), t)
        check(is_number_or_null(t['value']) and is_number_or_null(t['limit']), t)


def hand_made_run():
    """A run whose Tape clear takes 1 ns (target <= 0.3) and whose Grid row is skipped."""
    def row(name, median, skipped=False):
        r = {'name': name, 'skipped': skipped}
        if skipped:
            r['note'] = 'unimem_grid_open failed: out of memory'
        else:
            r['metrics'] = {'time': {'median': median, 'min': median, 'max': median,
                                     'q1': median, 'q3': median, 'n': 1}}
            r['ratio'] = {'time': median / 1.0}
        return r
    return {'tool': 'unimem bench', 'version': '0', 'mode': 'quick', 'groups': [
        {'id': 'clear', 'title': 'Tape clear, per clear', 'unit': 'ns', 'skipped': False,
         'base': 'unimem_tape_clear (inline)',
         'rows': [row('unimem_tape_clear (inline)', 1.0), row('release store of 0', 0.2)]},
        {'id': 'grid', 'title': 'Grid', 'unit': 'ns', 'skipped': False,
         'base': 'unimem_grid_take + give (generic)',
         'rows': [row('unimem_grid_take + give (generic)', 0, skipped=True)]}]}


def test_targets_missed(script):
    doc = json.dumps(hand_made_run())
    rc, out, err = targets(script, stdin=doc)
    check(rc == 0, f'targets.py: exit {rc} without --strict: {err}')
    line = target_line(out, 'Tape clear')
    check('1.00 ns' in line and '(<= 0.300)' in line and 'MISSED, gap 3.33x' in line, line)
    line = target_line(out, 'Grid take+give, one thread')
    check('not measured' in line and '[the Grid is not in this build]' in line, line)
    rc, out, err = targets(script, '--strict', stdin=doc)
    check(rc == 1, f'targets.py --strict on a missed target: exit {rc}, expected 1')
    rc, out, err = targets(script, '--json', stdin=doc)
    ts = {t['what']: t for t in json.loads(out)}
    check(ts['Tape clear']['met'] is False and ts['Tape clear']['value'] == 1.0, ts)
    check(ts['Grid take+give, one thread']['met'] is None, ts)
    for bad in ('{"tool": "something else"}', 'not json'):
        rc, out, err = targets(script, stdin=bad)
        check(rc == 2 and out == '' and 'targets.py' in err, f'bad input {bad!r}: exit {rc}')


def main():
    exe, version, script = sys.argv[1], sys.argv[2], sys.argv[3]
    failed = 0
    tests = [lambda: test_info_text(exe, version), lambda: test_info_json(exe, version),
             lambda: test_bench_json(exe, version), lambda: test_bench_text_and_usage(exe),
             lambda: test_targets_of_a_run(exe, script), lambda: test_targets_missed(script)]
    names = ['info text', 'info --json', 'bench --quick --json', 'bench text and usage',
             'targets of a run', 'targets missed']
    for name, t in zip(names, tests):
        try:
            t()
            print(f'ok: {name}', file=sys.stderr)
        except (AssertionError, KeyError, TypeError, ValueError,
                subprocess.TimeoutExpired) as e:
            failed += 1
            print(f'FAIL: {name}: {type(e).__name__}: {e}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
