#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Model-check the Grid's protocol with spin (tests/model/README.md).

Each run: spin -a MODEL (with -D defines), cc pan.c, ./pan; the sound models must give
`errors: 0` over their whole state space, the broken variants must give an error (spin finds
the bug the variant plants). Usage: check_models.py [--long] (--long adds the larger bounds).
Exit 77 (skipped) when spin or a C compiler is missing."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# (model, defines, expect an error, what it shows)
RUNS = [
    ('grid.pml', [], False, 'take/give/refill/flush/steal/reclaim, holder 0 killed anywhere'),
    ('grid.pml', ['-DBROKEN_CLAIM'], True, 'claim by clearing the bit, then tag: lost or doubled'),
    ('grid.pml', ['-DBROKEN_RECLAIM'], True, 'reclaim racing a live holder'),
    ('grid.pml', ['-DBROKEN_STEAL', '-DREFILL2=1'], True, 'owner ignores the steal flag'),
    ('grid_give_race.pml', [], False, 'two concurrent gives of one cell: exactly one wins'),
    ('grid_give_race.pml', ['-DBROKEN_GIVE'], True, 'give without the atomic check'),
]
LONG = [
    ('grid.pml', ['-DREFILL2=1'], False, 'refills of two cells'),
    ('grid.pml', ['-DNC=3'], False, 'three cells'),
]


def run(cc, model, defines, expect_error, what):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(HERE, model)
        r = subprocess.run(['spin'] + defines + ['-a', src], cwd=d, capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(os.path.join(d, 'pan.c')):
            print(f'FAIL {model} {defines}: spin -a: {r.stdout}{r.stderr}', file=sys.stderr)
            return False
        # Breadth first finds the short counterexamples of most broken variants sooner.
        bfs = ['-DBFS'] if expect_error and 'BROKEN_STEAL' not in ' '.join(defines) else []
        r = subprocess.run([cc, '-O2', '-DSAFETY', '-DCOLLAPSE'] + bfs + ['-o', 'pan', 'pan.c'], cwd=d,
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f'FAIL {model} {defines}: cc: {r.stderr}', file=sys.stderr)
            return False
        r = subprocess.run(['./pan', '-m2000000'], cwd=d, capture_output=True, text=True)
        out = r.stdout + r.stderr
        m = re.search(r'errors: (\d+)', out)
        if not m:
            print(f'FAIL {model} {defines}: no result from pan:\n{out}', file=sys.stderr)
            return False
        errors = int(m.group(1))
        states = re.search(r'(\d+) states, stored', out)
        if 'max search depth too small' in out:
            print(f'FAIL {model} {defines}: search depth too small', file=sys.stderr)
            return False
        ok = errors > 0 if expect_error else errors == 0
        verdict = 'error found, as planted' if expect_error else 'no error'
        if not ok:
            verdict = 'NO ERROR FOUND in the broken variant' if expect_error else 'ERROR'
        print(f'{"ok" if ok else "FAIL"} {model} {" ".join(defines) or "(sound)"}: {what}: '
              f'{verdict} ({states.group(1) if states else "?"} states)', file=sys.stderr)
        if not ok and not expect_error:
            print(out, file=sys.stderr)
        return ok


def main():
    spin = shutil.which('spin')
    cc = shutil.which(os.environ.get('CC', 'cc')) or shutil.which('gcc')
    if not spin or not cc:
        print('skipped: spin or a C compiler is missing (apt-get install spin)', file=sys.stderr)
        return 77
    runs = RUNS + (LONG if '--long' in sys.argv else [])
    results = [run(cc, *r) for r in runs]
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
