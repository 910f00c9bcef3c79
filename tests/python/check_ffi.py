#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libunimem-ffi exports exactly the unimem_* functions that the fixed public headers
define UNIMEM_INLINE, each under the UNIMEM_FFI_0.2 version node, and nothing else: not
the generated pools and typed accessors (BUILD_INCLUDE), which stay inline for every
consumer so that the export list is the same for every -Dgrids and -Dblock_types.
TAP on stdout. Usage: check_ffi.py SRC_INCLUDE BUILD_INCLUDE LIBUNIMEM_FFI"""

import glob
import os
import re
import subprocess
import sys

src_inc, build_inc, lib = sys.argv[1:4]
NODE = 'UNIMEM_FFI_0.2'
inline = set()
generated = set()
for d in (src_inc, build_inc):
    for path in glob.glob(os.path.join(d, 'unimem', '*.h')):
        text = open(path, encoding='utf-8').read()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
        text = re.sub(r'^\s*#[^\n]*', ' ', text, flags=re.M)
        for m in re.finditer(r'\bUNIMEM_INLINE\b([^;{(]*)\(', text):
            name = re.findall(r'[A-Za-z_]\w*', m.group(1))[-1]
            if name.startswith('unimem_'):
                (inline if d == src_inc else generated).add(name)
out = subprocess.run(['nm', '-D', '--defined-only', lib], capture_output=True, text=True,
                     check=True).stdout
exported = {}
for line in out.splitlines():
    parts = line.split()
    if len(parts) >= 3 and parts[1] != 'A':
        name, _, ver = parts[2].partition('@')
        exported[name] = ver.lstrip('@')
print('1..3')
ok = bool(inline) and 'unimem_tape_take' in inline
print(f'{"ok" if ok else "not ok"} 1 - the headers define {len(inline)} unimem_* inline functions')
extra = sorted(set(exported) - inline)
for s in sorted(set(exported) & generated):
    print(f'# a generated inline function is exported: {s}', file=sys.stderr)
missing = sorted(inline - set(exported))
for s in extra:
    print(f'# exported but not an inline function of the headers: {s}', file=sys.stderr)
for s in missing:
    print(f'# inline in the headers but not exported: {s}', file=sys.stderr)
print(f'{"ok" if not extra and not missing else "not ok"} 2 - libunimem-ffi exports exactly '
      f'them ({len(exported)})')
bad = sorted(s for s, v in exported.items() if v != NODE)
print(f'{"ok" if not bad else "not ok"} 3 - every export carries {NODE}')
sys.exit(1 if extra or missing or bad or not ok else 0)
