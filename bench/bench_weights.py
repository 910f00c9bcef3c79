#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loading a safetensors checkpoint to where it is used (issue 16), every path side by
side from one run, each in a fresh process, warm (the files in the page cache) and cold
(evicted with posix_fadvise(DONTNEED) first), medians:

  safetensors_cuda    safetensors.torch.load_file(f, device="cuda"), shard by shard
  safetensors_pin     load_file(f) + .pin_memory() + .cuda()
  unimem_cuda         unimem.torch.load_file(path, device="cuda")  (the streaming path)
  read_pinned         read() of each file into pinned memory (no GPU step)
  safetensors_cpu     safetensors.torch.load_file(f)               (hosts without a GPU)
  unimem_cpu          unimem.torch.load_file(path, device="cpu")
  read                read() of each file into memory
ceilings:
  raw_odirect         the files read with O_DIRECT, 8 threads x 16 MiB, into one aligned
                      buffer each (the storage's speed; no page cache, no GPU)
  raw_odirect_12x4    the same, 12 threads x 4 MiB (unimem's own pattern); the cold
                      comparison takes the faster of the two
  h2d_pinned          torch pinned -> device copies of the same bytes, 1 GiB at a time

Each child imports torch and initialises CUDA before its clock starts (the same for every
path); the time is the load alone, the GPU synchronised. Peak RSS: the growth of the
child's ru_maxrss over the load. Rows whose module or device is missing say skipped.

    python3 bench/bench_weights.py [--reps 3] [--json out.json] PATH ...
    python3 bench/bench_weights.py --make 512          # a synthetic 3-shard checkpoint
PATH: a .safetensors file, a model.safetensors.index.json, or a directory holding one.
UNIMEM_FFI_LIBRARY and PYTHONPATH pick the unimem under test (the installed one
otherwise)."""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def shard_files(path):
    """The checkpoint's files."""
    if os.path.isdir(path):
        ix = os.path.join(path, 'model.safetensors.index.json')
        path = ix if os.path.exists(ix) else os.path.join(path, 'model.safetensors')
    if path.endswith('.json'):
        with open(path) as f:
            names = sorted(set(json.load(f)['weight_map'].values()))
        return [os.path.join(os.path.dirname(path), n) for n in names]
    return [path]


def evict(files):
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(files):
    for f in files:
        with open(f, 'rb', buffering=0) as fh:
            while fh.read(64 << 20):
                pass


# ---------------------------------------------------------------- child side

def child(kind, path, device):
    import resource
    files = shard_files(path)
    total = sum(os.path.getsize(f) for f in files)
    if kind == 'raw_odirect':
        return raw_odirect(files, total)
    if kind == 'raw_odirect_12x4':
        return raw_odirect(files, total, threads=12, block=4 << 20)
    import torch
    cuda = device.startswith('cuda')
    if cuda:
        if not torch.cuda.is_available():
            return {'skip': 'no CUDA device'}
        torch.zeros(1, device=device)
        torch.cuda.synchronize()
    if kind.startswith('safetensors'):
        try:
            import safetensors.torch as st
        except ImportError:
            return {'skip': 'safetensors is not installed'}
    if kind.startswith('unimem'):
        import unimem.torch
    if kind == 'read_pinned' and not cuda:
        return {'skip': 'pinned memory needs CUDA'}
    staging = 0
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if kind == 'safetensors_cuda' or kind == 'safetensors_cpu':
        out = {}
        for f in files:
            out.update(st.load_file(f, device=device))
    elif kind == 'safetensors_pin':
        out = {}
        for f in files:
            out.update({k: v.pin_memory().to(device, non_blocking=True)
                        for k, v in st.load_file(f).items()})
    elif kind in ('unimem_cuda', 'unimem_cpu'):
        out = unimem.torch.load_file(path, device=device)
    elif kind in ('read_pinned', 'read'):
        out = []
        for f in files:
            buf = torch.empty(os.path.getsize(f), dtype=torch.uint8, pin_memory=cuda)
            with open(f, 'rb', buffering=0) as fh:
                mv, got = memoryview(buf.numpy()), 0
                while got < len(mv):
                    n = fh.readinto(mv[got:])
                    if not n:
                        raise IOError('short read')
                    got += n
            out.append(buf)
    elif kind == 'h2d_pinned':
        chunk = min(total, 1 << 30)
        src = torch.empty(chunk, dtype=torch.uint8, pin_memory=True)
        dst = torch.empty(total, dtype=torch.uint8, device=device)
        src.fill_(1)
        torch.cuda.synchronize()
        r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        for at in range(0, total, chunk):
            n = min(chunk, total - at)
            dst[at:at + n].copy_(src[:n], non_blocking=True)
        out = dst
    else:
        raise SystemExit('unknown path ' + kind)
    if cuda:
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if kind.startswith('unimem'):
        staging = unimem.torch.last_staging
    del out
    return {'s': t1 - t0, 'bytes': total, 'rss': (r1 - r0) * 1024, 'staging': staging}


def raw_odirect(files, total, threads=8, block=16 << 20):
    import mmap
    import threading
    jobs = [(f, off) for f in files for off in range(0, os.path.getsize(f), block)]
    lock = threading.Lock()
    err = []

    def worker():
        buf = mmap.mmap(-1, block)
        fds = {}
        try:
            while True:
                with lock:
                    if not jobs:
                        return
                    f, off = jobs.pop(0)
                if f not in fds:
                    fds[f] = os.open(f, os.O_RDONLY | os.O_DIRECT)
                n = os.preadv(fds[f], [buf], off)
                if n <= 0:
                    raise IOError('short read')
        except OSError as e:
            err.append(e)
        finally:
            for fd in fds.values():
                os.close(fd)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t1 = time.perf_counter()
    if err:
        return {'skip': 'O_DIRECT: %s' % err[0]}
    return {'s': t1 - t0, 'bytes': total, 'rss': 0, 'staging': 0}


# ---------------------------------------------------------------- parent side

def run_child(kind, path, device, timeout=900):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', kind, path,
                        device], capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        return {'skip': 'failed: ' + (r.stderr.strip().splitlines() or ['?'])[-1][:120]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def make_checkpoint(mib, where):
    """A 3-shard checkpoint of about `mib` MiB: bf16 matrices of odd shapes, an index."""
    import random
    rng = random.Random(1)
    per = (mib << 20) // 3
    weight_map = {}
    for s in range(3):
        name = 'model-%05d-of-00003.safetensors' % (s + 1)
        tensors, at, k = {}, 0, 0
        while at < per:
            rows = 1000 + rng.randrange(3000)
            cols = min(4099, max(1, (per - at) // (2 * rows))) or 1
            n = rows * cols * 2
            tensors['layers.%d.%d.weight' % (s, k)] = ('BF16', [rows, cols], at, at + n)
            at += n
            k += 1
        header = {'__metadata__': {'format': 'pt'}}
        for t, (dt, shape, a, b) in tensors.items():
            header[t] = {'dtype': dt, 'shape': shape, 'data_offsets': [a, b]}
            weight_map[t] = name
        text = json.dumps(header).encode()
        text += b' ' * (-len(text) % 8)
        with open(os.path.join(where, name), 'wb') as f:
            f.write(struct.pack('<Q', len(text)) + text)
            left = at
            block = os.urandom(1 << 20)
            while left:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
    ix = os.path.join(where, 'model.safetensors.index.json')
    with open(ix, 'w') as f:
        json.dump({'metadata': {}, 'weight_map': weight_map}, f)
    return ix


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('paths', nargs='*')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--make', type=int, metavar='MIB', help='write a synthetic checkpoint')
    ap.add_argument('--no-cold', action='store_true')
    ap.add_argument('--rows', help='comma-separated paths to run (default: all)')
    ap.add_argument('--json')
    ap.add_argument('--child', nargs=3, metavar=('PATH_KIND', 'FILE', 'DEVICE'))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(*a.child)))
        return 0
    tmp = None
    paths = list(a.paths)
    if a.make or not paths:
        tmp = tempfile.TemporaryDirectory(prefix='unimem-bench-weights-', dir='/var/tmp')
        paths.append(make_checkpoint(a.make or 256, tmp.name))
    has_cuda = subprocess.run([sys.executable, '-c', 'import torch,sys; '
                               'sys.exit(0 if torch.cuda.is_available() else 1)'],
                              capture_output=True).returncode == 0
    dev = 'cuda' if has_cuda else 'cpu'
    rows = (['safetensors_cuda', 'safetensors_pin', 'unimem_cuda', 'read_pinned'] if has_cuda
            else ['safetensors_cpu', 'unimem_cpu', 'read'])
    ceilings = ['raw_odirect', 'raw_odirect_12x4'] + (['h2d_pinned'] if has_cuda else [])
    if a.rows:
        keep = a.rows.split(',')
        rows = [r for r in rows if r in keep]
        ceilings = [r for r in ceilings if r in keep]
    results = []
    for path in paths:
        files = shard_files(path)
        total = sum(os.path.getsize(f) for f in files)
        print('\n### %s: %d file(s), %.3f GB, device %s, medians of %d\n'
              % (path, len(files), total / 1e9, dev, a.reps))
        table = {}
        for kind in rows + ceilings:
            rec = {'path': kind, 'file': path, 'bytes': total}
            for mode in ('warm', 'cold'):
                if mode == 'cold' and (a.no_cold or kind == 'h2d_pinned'):
                    continue
                times, rss, staging, skip = [], [], 0, None
                for _ in range(a.reps if not kind.startswith('raw') or mode == 'cold' else 1):
                    (warm if mode == 'warm' else evict)(files)
                    r = run_child(kind, path, dev)
                    if 'skip' in r:
                        skip = r['skip']
                        break
                    times.append(r['s'])
                    rss.append(r['rss'])
                    staging = r['staging']
                if skip:
                    rec[mode] = {'skip': skip}
                else:
                    rec[mode] = {'s': statistics.median(times), 'all': times,
                                 'rss': max(rss), 'staging': staging}
            table[kind] = rec
            results.append(rec)

        # The ratios are to the first rival measured (safetensors where it is installed).
        rival = next((k for k in rows if 's' in table[k].get('warm', {})), rows[0])
        print('| path | warm s | warm GB/s | warm vs %s | cold s | cold GB/s | cold vs %s | '
              'peak RSS growth MiB (ring MiB) |' % (rival, rival))
        print('|---|---:|---:|---:|---:|---:|---:|---:|')

        def cell(kind, mode):
            m = table[kind].get(mode)
            if m is None:
                return ['', '', '']
            if 'skip' in m:
                return ['skipped: ' + m['skip'], '', '']
            ref = table[rival].get(mode, {})
            ratio = ('%.2fx' % (ref['s'] / m['s'])) if 's' in ref else ''
            return ['%.3f' % m['s'], '%.2f' % (total / m['s'] / 1e9), ratio]
        for kind in rows + ceilings:
            w, c = cell(kind, 'warm'), cell(kind, 'cold')
            m = table[kind].get('warm', {})
            rss = ('%.0f (%.0f)' % (m['rss'] / 2**20, m['staging'] / 2**20)
                   if 'rss' in m and kind.startswith('unimem') else
                   ('%.0f' % (m['rss'] / 2**20) if 'rss' in m and not kind.startswith('raw') else ''))
            name = kind + (' (ceiling)' if kind in ceilings else '')
            print('| %s | %s | %s |' % (name, ' | '.join(w + c), rss))
        u = table.get('unimem_cuda') or table.get('unimem_cpu')
        raws = [table[k]['cold'] for k in ('raw_odirect', 'raw_odirect_12x4')
                if 's' in table.get(k, {}).get('cold', {})]
        if u and 's' in u.get('cold', {}) and raws:
            best = min(r['s'] for r in raws)
            print('\nunimem cold vs the faster raw O_DIRECT read: %.2fx' % (best / u['cold']['s']))
        if u and 'rss' in u.get('warm', {}):
            print('unimem peak RSS growth %.0f MiB, ring + 64 MiB = %.0f MiB' % (
                u['warm']['rss'] / 2**20, (u['warm']['staging'] + (64 << 20)) / 2**20))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
