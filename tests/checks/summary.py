#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count what `meson test` ran, subtest by subtest, from BUILD/meson-logs/testlog.json of
each build directory given, print each directory's count (stderr), then 'N passed, N failed,
N skipped' of all of them last, and exit 1 on any failure (or where a log is missing).
Usage: summary.py BUILD_DIR..."""

import json
import os
import sys


def count(build):
    """(passed, failed, skipped, tests) of one build directory's last `meson test`."""
    log = os.path.join(build, 'meson-logs', 'testlog.json')
    passed = failed = skipped = 0
    try:
        with open(log, encoding='utf-8') as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        print(f'summary: {build}: no test log: {e}', file=sys.stderr)
        return 0, 1, 0, 0

    for e in entries:
        result = e.get('result')
        lines = (e.get('stdout') or '').splitlines()
        tap = [line for line in lines if line.startswith(('ok', 'not ok'))]
        if tap:
            for line in tap:
                if '# SKIP' in line or '# skip' in line:
                    skipped += 1
                elif line.startswith('ok'):
                    passed += 1
                else:
                    failed += 1
            # A TAP test whose process failed without a failing line still failed (a
            # sanitizer report at a Criterion child's exit, say).
            if result not in ('OK', 'SKIP', 'EXPECTEDFAIL') and not any(
                    line.startswith('not ok') for line in tap):
                failed += 1
        elif result == 'SKIP':
            skipped += 1
        elif result in ('OK', 'EXPECTEDFAIL'):
            passed += 1
        else:
            failed += 1
        if result not in ('OK', 'SKIP', 'EXPECTEDFAIL'):
            print(f'FAILED: {build}: {e.get("name")} ({result})', file=sys.stderr)
    if not entries:
        failed += 1
    return passed, failed, skipped, len(entries)


total = [0, 0, 0]
for build in sys.argv[1:] or ['build']:
    p, f, s, n = count(build)
    print(f'{build}: {n} meson tests, {p} passed, {f} failed, {s} skipped', file=sys.stderr)
    total = [total[0] + p, total[1] + f, total[2] + s]
print(f'{total[0]} passed, {total[1]} failed, {total[2]} skipped')
sys.exit(1 if total[1] else 0)
