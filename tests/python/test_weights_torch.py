#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""unimem.torch.load_file against a reference loader (issue 16), TAP.

    test_weights_torch.py tree LIBUNIMEM_FFI     the package from the source tree
    test_weights_torch.py installed              the package as installed (from anywhere)
    test_weights_torch.py venv SOURCE_ROOT       pip install --no-build-isolation the
                                                 source into a fresh venv, then run
                                                 'installed' there, outside the tree

Files are written here (a small writer: the safetensors format), with odd tensor sizes and
data sections that start 8-byte aligned but not 4096-aligned; the reference is torch
tensors built from the same bytes, and safetensors.torch.load_file where it is installed.
Says skipped (TAP plan 1..0) without PyTorch or in a sanitized build."""

import errno
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

MODE = sys.argv[1] if len(sys.argv) > 1 else 'tree'
HERE = os.path.dirname(os.path.abspath(__file__))

if MODE == 'venv':
    if os.environ.get('UNIMEM_SANITIZE', 'none') not in ('', 'none'):
        # pip builds its own plain library: the plain pass of tests/run-all.sh tests it.
        print('1..0 # SKIP the package is built by pip, not sanitized: tested by the plain build')
        sys.exit(0)  # TAP: the plan 1..0 with SKIP says skipped
    src = os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix='unimem-venv-') as tmp:
        venv = os.path.join(tmp, 'venv')
        env = {k: v for k, v in os.environ.items()
               if k not in ('UNIMEM_FFI_LIBRARY', 'PYTHONPATH', 'LD_LIBRARY_PATH')}
        env['PIP_NO_INDEX'] = '1'
        env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
        steps = [[sys.executable, '-m', 'venv', '--system-site-packages', venv],
                 [os.path.join(venv, 'bin', 'python'), '-m', 'pip', 'install', '-q',
                  '--no-build-isolation', '--no-index', src]]
        for cmd in steps:
            r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if r.returncode:
                print('1..1\nnot ok 1 - %s\n# %s' % (' '.join(cmd[:4]),
                      (r.stdout + r.stderr)[-3000:].replace('\n', '\n# ')))
                sys.exit(1)
        # Outside the tree: a copy of this script in the scratch directory.
        script = os.path.join(tmp, 'check.py')
        with open(__file__) as f, open(script, 'w') as g:
            g.write(f.read())
        r = subprocess.run([os.path.join(venv, 'bin', 'python'), script, 'installed'],
                           cwd=tmp, env=env, capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr[-3000:])
        sys.exit(r.returncode)

try:
    import torch
except ImportError:
    print('1..0 # SKIP PyTorch is not installed')
    sys.exit(0)  # TAP: the plan 1..0 with SKIP says skipped

if MODE == 'tree':
    if os.environ.get('UNIMEM_SANITIZE', 'none') not in ('', 'none'):
        print('1..0 # SKIP a sanitized libunimem cannot be loaded into Python')
        sys.exit(0)  # TAP: the plan 1..0 with SKIP says skipped
    os.environ['UNIMEM_FFI_LIBRARY'] = sys.argv[2]
    sys.path.insert(0, os.path.join(HERE, '..', '..', 'python'))

import unimem  # noqa: E402
import unimem.torch  # noqa: E402

SIZES = {'BOOL': 1, 'U8': 1, 'I8': 1, 'I16': 2, 'F16': 2, 'BF16': 2, 'I32': 4, 'F32': 4,
         'I64': 8, 'F64': 8}
T = unimem.torch.TORCH_DTYPES

n_test = 0
failed = 0


def check(ok, what, detail=''):
    global n_test, failed
    n_test += 1
    print('%s %d - %s' % ('ok' if ok else 'not ok', n_test, what))
    if not ok:
        failed += 1
        if detail:
            print('# ' + str(detail).replace('\n', '\n# '))


def write(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape), in data order, random bytes each. Returns
    name -> (dtype, shape, bytes)."""
    rng = random.Random(path)
    header, data, out = {}, bytearray(), {}
    if metadata is not None:
        header['__metadata__'] = metadata
    for name, dtype, shape in tensors:
        n = SIZES[dtype]
        for d in shape:
            n *= d
        raw = bytes(rng.randrange(2) for _ in range(n)) if dtype == 'BOOL' else \
            rng.randbytes(n)
        header[name] = {'dtype': dtype, 'shape': list(shape),
                        'data_offsets': [len(data), len(data) + n]}
        data += raw
        out[name] = (dtype, tuple(shape), raw)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)  # the data starts 8-byte aligned, not 4096
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + data)
    return out


def reference(tensors):
    ref = {}
    for name, (dtype, shape, raw) in tensors.items():
        if raw:
            ref[name] = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(T[dtype]).view(shape)
        else:
            ref[name] = torch.empty(shape, dtype=T[dtype])
    return ref


def same(a, b):
    """Bit for bit (NaNs in random floats included), dtype, shape, device type."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    a8 = a.detach().cpu().contiguous().view(-1).view(torch.uint8)
    b8 = b.detach().cpu().contiguous().view(-1).view(torch.uint8)
    return torch.equal(a8, b8)


def compare(got, ref, device, what):
    ok = list(got) == sorted(ref)
    bad = [n for n in ref if n not in got or not same(got[n], ref[n]) or
           got[n].device.type != torch.device(device if not isinstance(device, int) else 'cuda').type]
    check(ok and not bad, what, 'order %s; differ: %s' % (list(got), bad))


with tempfile.TemporaryDirectory(prefix='unimem-torch-') as tmp:
    odd = [('embed.weight', 'BF16', (333, 257)), ('flag', 'BOOL', (3,)),
           ('norm.weight', 'F32', (257,)), ('byte', 'U8', (1,)), ('scalar', 'F64', ()),
           ('empty', 'F16', (0, 7)), ('ids', 'I64', (5, 3)), ('h', 'F16', (17, 31, 3)),
           ('i8', 'I8', (9,)), ('i16', 'I16', (11,)), ('i32', 'I32', (13,)),
           ('big', 'F32', (1000, 1037))]
    one = os.path.join(tmp, 'model.safetensors')
    tensors = write(one, odd, {'format': 'pt', 'note': 'odd sizes'})
    ref = reference(tensors)
    devices = ['cpu']
    if torch.cuda.is_available():
        devices += ['cuda', 'cuda:0', 0]
    for dev in devices:
        compare(unimem.torch.load_file(one, device=dev), ref, dev,
                'one file, device=%r: names, dtypes, shapes, bytes' % (dev,))
    check(unimem.torch.load_metadata(one) == {'format': 'pt', 'note': 'odd sizes'},
          'metadata', unimem.torch.load_metadata(one))
    got = unimem.torch.load_file(one)
    check(all(t.data_ptr() % 256 == 0 for t in got.values() if t.numel()),
          'every tensor 256-byte aligned')

    # Shards of an index: one model.
    shard_ts = {}
    shards = {'model-00001-of-00002.safetensors': odd[:5],
              'model-00002-of-00002.safetensors': odd[5:]}
    weight_map = {}
    for fname, ts in shards.items():
        shard_ts.update(write(os.path.join(tmp, fname), ts, {'format': 'pt'}))
        weight_map.update({n: fname for n, _, _ in ts})
    index = os.path.join(tmp, 'model.safetensors.index.json')
    with open(index, 'w') as f:
        json.dump({'metadata': {'total_size': 1}, 'weight_map': weight_map}, f)
    sref = reference(shard_ts)
    for dev in devices[:2]:
        compare(unimem.torch.load_file(index, device=dev), sref, dev,
                'index of 2 shards, device=%r' % (dev,))
        compare(unimem.torch.load_file(tmp, device=dev), sref, dev,
                'a directory holding the index, device=%r' % (dev,))

    try:
        import safetensors.torch as st
    except ImportError:
        st = None
    if st is None:
        print('# safetensors is not installed: the comparison with it is skipped')
    else:
        for dev in devices[:2]:
            compare(unimem.torch.load_file(one, device=dev), st.load_file(one, device=dev),
                    dev, 'the same as safetensors.torch.load_file, device=%r' % (dev,))

    # Errors: clear OSErrors with the errno.
    def raises(fn, code, what):
        try:
            fn()
        except OSError as e:
            check(e.errno == code, what, e)
            return
        check(False, what, 'no error')
    raises(lambda: unimem.torch.load_file(os.path.join(tmp, 'none.safetensors')),
           errno.ENOENT, 'a missing file: ENOENT')
    bad = os.path.join(tmp, 'bad.safetensors')
    with open(one, 'rb') as f:
        whole = f.read()
    with open(bad, 'wb') as f:
        f.write(whole[:len(whole) // 2])
    raises(lambda: unimem.torch.load_file(bad), errno.EBADMSG, 'a short file: EBADMSG')
    os.remove(os.path.join(tmp, 'model-00002-of-00002.safetensors'))
    raises(lambda: unimem.torch.load_file(index), errno.ENOENT, 'a shard missing: ENOENT')

    if MODE == 'installed':
        pkg = os.path.dirname(os.path.abspath(unimem.__file__))
        libs = os.listdir(pkg)
        check(any(n.startswith('libunimem-ffi.so.') for n in libs) and
              any(n.startswith('libunimem.so.') for n in libs),
              'the shared libraries are inside the installed package', libs)
        check(os.path.abspath(unimem.__file__).startswith(sys.prefix) and
              'UNIMEM_FFI_LIBRARY' not in os.environ,
              'imported from the venv, no path given', (unimem.__file__, sys.prefix))

print('1..%d' % n_test)
sys.exit(1 if failed else 0)
