#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summary of bench/grid_ab.sh's runs: for each tree and Grid pattern, the median over the
runs of each run's median (ns per operation per thread) of the checked give, give_unchecked
and DPDK's rte_mempool, and the runs' ratios rte_mempool / give_unchecked (median and
range; above 1: the Grid is faster). Producer/consumer also lists every run's unchecked
time, since it has modes by process.
    python3 bench/grid_ab.py DIR TAG ..."""
import glob
import json
import os
import re
import statistics
import sys

from grid_table import parse_json

CHECKED = 'unimem Grid, generated (checked give)'
UNCHECKED = 'unimem Grid, generated, give_unchecked'


def runs_of(d, tag):
    files = glob.glob(os.path.join(d, f'{tag}-*.json'))
    files.sort(key=lambda f: int(re.findall(r'-(\d+)\.json$', f)[0]))
    out = []
    for f in files:
        try:
            doc = json.load(open(f))
        except (OSError, ValueError):
            continue  # a run that died left nothing readable
        out.append(parse_json(doc))
    return out


def med(xs):
    return statistics.median(xs) if xs else float('nan')


def main(d, tags):
    for tag in tags:
        runs = runs_of(d, tag)
        print(f'== {tag}: {len(runs)} runs')
        ids = []
        for r in runs:
            ids += [i for i in r if i not in ids]
        print('| pattern | checked / unchecked / rte_mempool ns | rte_mempool ÷ unchecked (range) |')
        print('|---|---|---:|')
        for gid in ids:
            title = next(r[gid]['title'] for r in runs if gid in r)
            got = [r[gid]['rows'] for r in runs if gid in r]
            mp = next((n for rows in got for n in rows if 'rte_mempool' in n), None)
            ck = [x[CHECKED] for x in got if CHECKED in x]
            un = [x[UNCHECKED] for x in got if UNCHECKED in x]
            dp = [x[mp] for x in got if mp in x]
            ratios = [x[mp] / x[UNCHECKED] for x in got if mp in x and UNCHECKED in x]
            ratio = (f'{med(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})' if ratios
                     else 'no rte_mempool row')
            print(f'| {title} | {med(ck):.1f} / {med(un):.1f} / {med(dp):.1f} | {ratio} |')
            if gid == 'grid_pc':
                pc = ' '.join(f'{v:.1f}' for v in un)
                print(f'|  (unchecked, each run) | {pc} | |')
        print()


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
