#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check docs/ERRORS.md against the headers and the tests:
* every public function (UNIMEM_API declarations, UNIMEM_INLINE definitions, generated ones
  included, typed names folded to _T and Grid pools to _CELLxCOUNT) has a row;
* every test a row names exists: `file::suite::name` is a Criterion Test(suite, name) in that
  file, `file::function` a function defined in that file;
* every row names a test or says it is pending.
Usage: check_errors_table.py ERRORS.md SOURCE_ROOT INCLUDE_DIR...  (exit 1 on a problem)"""

import os
import re
import sys

DECL = re.compile(r'\b(?:UNIMEM_API|UNIMEM_INLINE)\b[^;{(]*?\b(unimem_\w+)\s*\(')
REF = re.compile(r'`([\w./-]+\.\w+)::(\w+)(?:::(\w+))?`')


def public_functions(include_dirs):
    names, types = set(), []
    for d in include_dirs:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith('.h'):
                text = open(os.path.join(d, f), encoding='utf-8').read()
                names.update(DECL.findall(text))
                m = re.search(r'#define UNIMEM_BLOCK_TYPES "([^"]*)"', text)
                if m:
                    types += m.group(1).split()
    folded = set()
    for n in names:
        n = re.sub(r'^unimem_grid_\d+x\d+_', 'unimem_grid_CELLxCOUNT_', n)
        for t in types:
            n = re.sub(r'^(unimem_(?:block_as|block_len|tape_take))_%s(_mut)?$' % t, r'\1_T\2', n)
        folded.add(n)
    return folded


def main():
    table, root, include_dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    problems = []
    documented = set()
    for lineno, line in enumerate(open(table, encoding='utf-8'), 1):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if not line.startswith('|') or len(cells) < 4 or not cells[0].startswith('`unimem_'):
            continue
        documented.add(cells[0].strip('`'))
        proof = cells[-1]
        refs = REF.findall(proof)
        if not refs and 'pending' not in proof:
            problems.append(f'{table}:{lineno}: no test and not pending: {proof!r}')
        for path, a, b in refs:
            full = os.path.join(root, path)
            if not os.path.isfile(full):
                problems.append(f'{table}:{lineno}: no file {path}')
                continue
            text = open(full, encoding='utf-8').read()
            if b:
                pattern = (r'\b(?:Test|ParameterizedTest)\s*\((?:[^,()]*,\s*)?%s\s*,\s*%s\s*[,)]'
                           % (a, b))
                what = f'Test({a}, {b})'
            else:
                pattern = r'^\w[^;=]*\b%s\s*\([^;]*$' % a
                what = f'function {a}'
            if not re.search(pattern, text, re.M):
                problems.append(f'{table}:{lineno}: {path} has no {what}')
    for name in sorted(public_functions(include_dirs) - documented):
        problems.append(f'{table}: public function {name} has no row')
    for p in problems:
        print(p, file=sys.stderr)
    print(f'{len(documented)} functions documented, {len(problems)} problems', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
