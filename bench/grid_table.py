#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 15's Grid table from runs of `unimem bench --only grid` (text or --json files):
ns per operation per thread, the median of each run's median, with the runs' range, and
each rival's ratio to the generated Grid (above 1: the Grid is faster).
    python3 bench/grid_table.py run1.txt run2.txt ...   (or .json files)"""
import json
import re
import statistics
import sys

PATTERNS = ['grid', 'grid_pairs', 'grid_pairs_4k', 'grid_2t', 'grid_2t_4k', 'grid_pc', 'grid_nt']
BASE = 'unimem Grid, generated (checked give)'


def parse_text(text):
    groups, gid, title = {}, None, None
    ids = {'1 thread, bursts': 'grid', '1 thread, take+give pairs': 'grid_pairs',
           '1 thread, take+give pairs, 4 KiB cells': 'grid_pairs_4k',
           '2 threads, 4096-cell pool': 'grid_2t', '2 threads, 256 x 4 KiB pool': 'grid_2t_4k',
           'producer/consumer (cells cross threads)': 'grid_pc'}
    for line in text.splitlines():
        m = re.match(r'^Grid: (.*?)  \[', line)
        if m:
            title = m.group(1)
            gid = ids.get(title) or ('grid_nt' if re.match(r'\d+ threads', title) else None)
            if gid:
                groups[gid] = {'title': 'Grid: ' + title, 'rows': {}}
            continue
        if not line.strip() or not gid:
            if not line.startswith('  '):
                gid = None
            continue
        m = re.match(r'^  (\S.*?)\s+([0-9.]+) \(([0-9.]+)\.\.([0-9.]+)\)', line)
        if m:
            groups[gid]['rows'][m.group(1)] = float(m.group(2))
    return groups


def parse_json(doc):
    groups = {}
    for g in doc['groups']:
        if g['id'] in PATTERNS:
            groups[g['id']] = {'title': g['title'], 'rows': {
                r['name']: r['metrics']['time']['median'] for r in g['rows']
                if not r.get('skipped')}}
    return groups


def main(paths):
    runs = []
    for p in paths:
        text = open(p).read()
        runs.append(parse_json(json.loads(text)) if text.lstrip().startswith('{') else parse_text(text))
    pats = [p for p in PATTERNS if any(p in r for r in runs)]
    names = []
    for r in runs:
        for p in pats:
            for n in r.get(p, {}).get('rows', {}):
                if n not in names:
                    names.append(n)
    titles = [next(r[p]['title'] for r in runs if p in r)[6:] for p in pats]
    print('| contender | ' + ' | '.join(titles) + ' |')
    print('|---|' + '---:|' * len(pats))
    for n in names:
        cells = []
        for p in pats:
            vals = [r[p]['rows'][n] for r in runs if p in r and n in r[p]['rows']]
            base = [r[p]['rows'][BASE] for r in runs if p in r and BASE in r[p]['rows'] and n in r[p]['rows']]
            if not vals:
                cells.append('—')
                continue
            med = statistics.median(vals)
            rng = f' ({min(vals):.3g}–{max(vals):.3g})' if len(vals) > 1 else ''
            ratio = '' if n == BASE or not base else \
                f' **{statistics.median(v / b for v, b in zip(vals, base)):.2f}×**'
            cells.append(f'{med:.3g}{rng}{ratio}')
        print(f'| {n} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main(sys.argv[1:])
