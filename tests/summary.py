#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count what `meson test` ran, subtest by subtest, from BUILD/meson-logs/testlog.json,
print 'N passed, N failed, N skipped' and exit 1 on any failure (or on no log at all).
Usage: summary.py BUILD_DIR"""

import json
import os
import sys

log = os.path.join(sys.argv[1], 'meson-logs', 'testlog.json')
passed = failed = skipped = 0
try:
    with open(log, encoding='utf-8') as f:
        entries = [json.loads(line) for line in f if line.strip()]
except OSError as e:
    print(f'summary: no test log: {e}', file=sys.stderr)
    print('0 passed, 1 failed')
    sys.exit(1)

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
        # A TAP test whose process failed without a failing line still failed.
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
        print(f'FAILED: {e.get("name")} ({result})', file=sys.stderr)

print(f'{len(entries)} meson tests', file=sys.stderr)
print(f'{passed} passed, {failed} failed, {skipped} skipped')
sys.exit(1 if failed or not entries else 0)
