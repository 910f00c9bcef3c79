#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library's ABI is exactly its public API. Compares the dynamic symbols that
libunimem.so defines (nm -D --defined-only) with the functions the public headers
declare UNIMEM_API (handwritten and generated): no internal name leaks, no public name
missing; every export carries a version node of src/unimem.map; SONAME libunimem.so.N
with N the soversion; in libunimem.a every global is public or internally prefixed.
TAP on stdout.

Usage: check_symbols.py SOURCE_ROOT BUILD_ROOT SOVERSION VERSION PENDING_FILE"""

import glob
import json
import os
import re
import subprocess
import sys

# Prefix of internal names shared between files of src/ (CONVENTIONS.md: a distinct
# prefix, never exported).
INTERNAL_PREFIXES = ('umi_', '__odr_asan')  # ASan's one-definition-rule markers of umi_ globals

src_root, build_root, soversion, version, pending_file = sys.argv[1:6]
n = 0
failed = False


def tap(good, what, detail=(), skip=None):
    global n, failed
    n += 1
    if skip:
        print(f'ok {n} - {what} # SKIP {skip}')
    elif good:
        print(f'ok {n} - {what}')
    else:
        failed = True
        print(f'not ok {n} - {what}')
    for line in detail:
        print(f'#   {line}', file=sys.stderr)


def declared_api():
    """Names declared UNIMEM_API in include/unimem/*.h of the source and build trees."""
    names = {}
    for d in (os.path.join(src_root, 'include', 'unimem'),
              os.path.join(build_root, 'include', 'unimem')):
        for path in sorted(glob.glob(os.path.join(d, '*.h'))):
            text = open(path, encoding='utf-8').read()
            text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
            text = re.sub(r'//[^\n]*', ' ', text)
            text = re.sub(r'\\\n', ' ', text)
            text = re.sub(r'^\s*#[^\n]*', ' ', text, flags=re.M)  # the macro's own #define
            for m in re.finditer(r'\bUNIMEM_API\b([^;{(]*)[;({]', text):
                # an array's bound (`name[N]`) is not its name
                ids = re.findall(r'[A-Za-z_]\w*', re.sub(r'\[[^\]]*\]', ' ', m.group(1)))
                if ids:
                    names.setdefault(ids[-1], os.path.relpath(path, build_root
                                                              if path.startswith(build_root)
                                                              else src_root))
    return names


def nm(args, path):
    out = subprocess.run(['nm'] + args + [path], capture_output=True, text=True, check=True)
    syms = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[-2]) == 1:
            syms.append((parts[-2], parts[-1]))
    return syms


def library_files():
    with open(os.path.join(build_root, 'meson-info', 'intro-targets.json'),
              encoding='utf-8') as f:
        targets = json.load(f)
    found = {}
    for t in targets:
        if t['name'] == 'unimem' and not t.get('subproject'):
            found[t['type']] = t['filename'][0]
    return found.get('shared library'), found.get('static library')


api = declared_api()
pending = set()
with open(pending_file, encoding='utf-8') as f:
    for line in f:
        line = line.split('#', 1)[0].strip()
        if line:
            pending.add(line)
version_nodes = set(re.findall(r'^\s*([A-Za-z_][\w.]*)\s*\{',
                               open(os.path.join(src_root, 'src', 'unimem.map')).read(), re.M))
shared, static = library_files()

print('1..7')
tap(all(name.startswith('unimem_') for name in api) and len(api) > 0,
    f'the public headers declare {len(api)} UNIMEM_API names, all unimem_*',
    [f'{k} ({v})' for k, v in api.items() if not k.startswith('unimem_')])

if not shared:
    for what in ('exported == declared', 'no public name missing', 'pending names',
                 'version nodes', 'SONAME'):
        tap(True, what, skip='no shared library in this build (default_library=static)')
else:
    dyn = nm(['-D', '--defined-only'], shared)
    exported = {}
    for kind, sym in dyn:
        name, _, ver = sym.partition('@')
        if kind == 'A' and name in version_nodes:
            continue  # the version node itself
        exported[name] = ver.lstrip('@')
    leaks = sorted(set(exported) - set(api))
    tap(not leaks, f'every one of the {len(exported)} exported symbols is declared UNIMEM_API',
        [f'exported but not public: {s}' for s in leaks])
    missing = sorted(set(api) - set(exported) - pending)
    tap(not missing, 'every UNIMEM_API name is exported',
        [f'declared in {api[s]} but not exported: {s}' for s in missing])
    waiting = sorted(pending & set(api) - set(exported))
    stale = sorted(pending - (set(api) - set(exported)))
    if stale:
        tap(False, 'tests/consumers/abi/pending.txt lists only names still missing',
            [f'{s}: {"exported now" if s in exported else "not declared"}: '
             'delete its line from pending.txt' for s in stale])
    elif waiting:
        tap(True, 'declared but not implemented yet: ' + ' '.join(waiting),
            skip='pending (tests/consumers/abi/pending.txt)')
    else:
        tap(True, 'no UNIMEM_API name pending')
    unversioned = sorted(s for s, v in exported.items() if v not in version_nodes)
    tap(not unversioned,
        f'every export carries a version node of src/unimem.map ({" ".join(sorted(version_nodes))})',
        [f'{s}: version {exported[s] or "none"}' for s in unversioned])
    dyn_section = subprocess.run(['readelf', '-d', shared], capture_output=True, text=True,
                                 check=True).stdout
    soname = re.search(r'\(SONAME\).*\[(.*)\]', dyn_section)
    soname = soname.group(1) if soname else None
    d = os.path.dirname(shared)
    detail = []
    if soname != f'libunimem.so.{soversion}':
        detail.append(f'SONAME {soname}, expected libunimem.so.{soversion}')
    if os.path.basename(shared) != f'libunimem.so.{version}':
        detail.append(f'file {os.path.basename(shared)}, expected libunimem.so.{version}')
    for link in (f'libunimem.so.{soversion}', 'libunimem.so'):
        p = os.path.join(d, link)
        if not os.path.exists(p) or not os.path.samefile(p, shared):
            detail.append(f'{link} does not lead to {os.path.basename(shared)}')
    tap(not detail, f'SONAME libunimem.so.{soversion}, file libunimem.so.{version}, '
        f'links libunimem.so.{soversion} and libunimem.so', detail)

if not static:
    tap(True, 'static archive names', skip='no static library in this build')
else:
    bad = sorted({name for kind, name in nm(['-g', '--defined-only'], static)
                  if kind not in 'Uw' and name not in api
                  and not name.startswith(INTERNAL_PREFIXES)})
    tap(not bad, 'libunimem.a defines only public names and internal '
        + '/'.join(INTERNAL_PREFIXES) + ' names as globals',
        [f'global in libunimem.a: {s} (make it static, or prefix it '
         f'{INTERNAL_PREFIXES[0]})' for s in bad])

sys.exit(1 if failed else 0)
