#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every public header compiles on its own: C11 and C++11, warnings as errors, and
freestanding (no libc headers). Usage: check_headers.py SRC_INCLUDE BUILD_INCLUDE"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

src_inc, build_inc = sys.argv[1], sys.argv[2]
headers = sorted({os.path.basename(p) for d in (src_inc, build_inc)
                  for p in glob.glob(os.path.join(d, 'unimem', '*.h'))})
if 'types.h' not in headers or 'grids.h' not in headers:
    sys.exit('generated headers missing from ' + build_inc)

compilers = []
for c, lang, std in (('cc', 'c', 'c11'), ('c++', 'c++', 'c++11'),
                     ('clang', 'c', 'c11'), ('clang++', 'c++', 'c++11')):
    if shutil.which(c):
        compilers.append((c, lang, std))
langs = {lang for _, lang, _ in compilers}
if langs != {'c', 'c++'}:
    sys.exit(f'need a C and a C++ compiler, found: {compilers}')

def builtin_include(cc):
    """The compiler's own freestanding headers (stddef.h, stdint.h, ...)."""
    out = subprocess.run([cc, '-print-file-name=include'], capture_output=True, text=True)
    return out.stdout.strip()

failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for h in headers:
        src = os.path.join(tmp, 'use.c')
        with open(src, 'w') as f:
            f.write(f'#include <unimem/{h}>\n#include <unimem/{h}>\nint unimem_check_;\n')
        for cc, lang, std in compilers:
            base = [cc, '-x', lang, f'-std={std}', '-fsyntax-only', '-Wall', '-Wextra',
                    '-Werror', '-pedantic', '-I', src_inc, '-I', build_inc, src]
            runs = [('hosted', base)]
            # Freestanding: drop every system include directory but the compiler's own.
            if lang == 'c':
                runs.append(('freestanding', base[:1] + ['-ffreestanding', '-nostdinc',
                             '-isystem', builtin_include(cc)] + base[1:]))
            for what, cmd in runs:
                r = subprocess.run(cmd, capture_output=True, text=True)
                status = 'ok' if r.returncode == 0 else 'FAILED'
                print(f'{status}: {h} with {cc} ({std}, {what})', file=sys.stderr)
                if r.returncode:
                    print(r.stderr, file=sys.stderr)
                    failed += 1
print(f'{len(headers)} headers x {len(compilers)} compilers: '
      f'{"all compile" if not failed else f"{failed} failures"}')
sys.exit(1 if failed else 0)
