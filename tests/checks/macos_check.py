#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The macOS backend and every public header compile for Apple Silicon with nothing but
clang's own freestanding headers: no SDK, no libc headers.

Usage: macos_check.py SRC_ROOT BUILD_INCLUDE [CLANG]

Runs `clang -target arm64-apple-macos13 -std=c11 -fsyntax-only -nostdlibinc -Wall -Wextra
-Werror` over src/os/darwin/iosurface.c, src/os/darwin/proc.c, src/os/darwin/decls.h and each header of include/unimem/ and
of the build's include/unimem/ (the generated ones), each header in a translation unit of
its own. A canary that includes <stdlib.h> must fail, or the check proves nothing.
Exits 77 (skip) only when no clang is installed."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

FLAGS = ['-target', 'arm64-apple-macos13', '-std=c11', '-fsyntax-only', '-nostdlibinc',
         '-Wall', '-Wextra', '-Werror']


def find_clang(given):
    if given and shutil.which(given):
        return shutil.which(given)
    for name in ['clang'] + [f'clang-{v}' for v in range(30, 13, -1)]:
        path = shutil.which(name)
        if path:
            return path
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src_root, build_inc = sys.argv[1], sys.argv[2]
    clang = find_clang(sys.argv[3] if len(sys.argv) > 3 else None)
    if not clang:
        print('SKIP: no clang installed', file=sys.stderr)
        return 77
    src_inc = os.path.join(src_root, 'include')
    src_dir = os.path.join(src_root, 'src')
    headers = sorted(glob.glob(os.path.join(src_inc, 'unimem', '*.h')) +
                     glob.glob(os.path.join(build_inc, 'unimem', '*.h')))
    names = {os.path.basename(h) for h in headers}
    if not {'types.h', 'grids.h', 'unimem.h'} <= names:
        print(f'generated or public headers missing: {sorted(names)}', file=sys.stderr)
        return 1

    base = [clang] + FLAGS + ['-I', src_inc, '-I', build_inc, '-I', src_dir]
    failed = 0

    def run(what, path, expect_ok=True):
        nonlocal failed
        r = subprocess.run(base + [path], capture_output=True, text=True)
        ok = (r.returncode == 0) == expect_ok
        print(f'{"ok" if ok else "FAILED"}: {what}', file=sys.stderr)
        if not ok:
            print(r.stderr or '(compiled, but must not)', file=sys.stderr)
            failed += 1

    with tempfile.TemporaryDirectory() as tmp:
        def unit(name, text):
            path = os.path.join(tmp, name)
            with open(path, 'w') as f:
                f.write(text)
            return path

        run('canary: <stdlib.h> is out of reach',
            unit('canary.c', '#include <stdlib.h>\n'), expect_ok=False)
        run('src/os/darwin/iosurface.c', os.path.join(src_dir, 'os', 'darwin', 'iosurface.c'))
        run('src/os/darwin/proc.c', os.path.join(src_dir, 'os', 'darwin', 'proc.c'))
        run('src/os/darwin/decls.h on its own',
            unit('decls.c', '#include "os/darwin/decls.h"\n#include "os/darwin/decls.h"\n'))
        for h in headers:
            name = os.path.basename(h)
            run(f'<unimem/{name}> on its own',
                unit(f'use_{name}.c', f'#include <unimem/{name}>\n#include <unimem/{name}>\n'
                     'int unimem_check_;\n'))
    print(f'{clang}: {"all compile" if not failed else f"{failed} failures"}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
