#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NumPy writes into a Block, a torch CUDA tensor viewing the same Block (DLPack kDLCUDA
after unimem_gpu_map) reads it: no copy anywhere (issue 10). TAP on stdout; a short table
of what was seen goes to stderr ('#' lines).

Usage: test_torch_cuda.py LIBUNIMEM_FFI
Exits 77 (skip) without NumPy, PyTorch or a CUDA GPU."""

import datetime
import os
import subprocess
import sys
import tempfile
import traceback

if os.environ.get('UNIMEM_SANITIZE', 'none') not in ('', 'none'):
    print('1..0 # SKIP a sanitized libunimem cannot be loaded into an unsanitized Python')
    sys.exit(0)  # TAP: the plan 1..0 with SKIP says skipped

os.environ['UNIMEM_FFI_LIBRARY'] = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'python'))
sys.path.insert(0, here)

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f'1..0 # SKIP {e}')
    sys.exit(0)  # TAP: the plan 1..0 with SKIP says skipped
import st_write  # noqa: E402
import unimem  # noqa: E402

if not torch.cuda.is_available() or unimem.gpu_count() == 0:
    print('1..0 # SKIP no CUDA GPU')
    sys.exit(0)  # TAP: the plan 1..0 with SKIP says skipped

seen = []
tests = []


def test(fn):
    tests.append(fn)
    return fn


def note(what, value):
    seen.append((what, value))


@test
def numpy_writes_torch_cuda_reads_the_same_pages():
    with unimem.Block(64 << 20) as b:
        off = 1 << 20
        v = b.view(off, 'F32', (1024, 1024))
        a = v.numpy()                                   # writable, host pointer
        a[:] = np.arange(a.size, dtype=np.float32).reshape(a.shape) % 1000
        dev_base = b.gpu_map()                          # for the expected pointer only
        t = torch.from_dlpack(v.to_device('cuda'))      # kDLCUDA, the same pages
        assert t.device.type == 'cuda' and t.device.index == 0, t.device
        assert t.data_ptr() == dev_base + off, (hex(t.data_ptr()), hex(dev_base + off))
        host = a.ctypes.data
        note('host pointer (NumPy)', hex(host))
        note('device pointer (torch)', hex(t.data_ptr()))
        note('device == host (UVA)', t.data_ptr() == host)
        # Read on the GPU: a reduction kernel over the mapped pages.
        s = t.sum(dtype=torch.float64).item()
        want = float(a.sum(dtype=np.float64))
        assert s == want, (s, want)
        note('sum on the GPU / in NumPy', f'{s:.0f} / {want:.0f}')
        assert torch.equal(t[17, :5].cpu(), torch.from_numpy(a[17, :5].copy()))
        # And back: the GPU writes, NumPy sees it with no copy.
        t.mul_(2)
        torch.cuda.synchronize()
        assert a[3, 4] == ((3 * 1024 + 4) % 1000) * 2
        note('GPU write seen by NumPy', True)
        # torch allocated nothing for it.
        note('torch.cuda.memory_allocated', torch.cuda.memory_allocated())
        del t
        b.gpu_unmap()


@test
def host_view_to_torch_cpu_shares_too():
    with unimem.Block(1 << 20) as b:
        v = b.view(4096, 'I64', (100,))
        v.numpy()[:] = 42
        c = torch.from_dlpack(v)
        assert c.device.type == 'cpu' and c.data_ptr() == b.ptr + 4096
        assert int(c.sum()) == 4200


@test
def safetensors_weights_straight_to_gpu_views():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 128)).astype(np.float32)
    x = rng.standard_normal((128,)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'm.safetensors')
        st_write.write(path, {'w': ('F32', w.shape, w.tobytes()),
                              'x': ('F32', x.shape, x.tobytes())})
        lay = unimem.Layout(1 << 20, 1 << 20, 0)
        st = lay.weights.load_safetensors(path)
        tw = torch.from_dlpack(st['w'].to_device())
        tx = torch.from_dlpack(st['x'].to_device())
        y = (tw @ tx).cpu().numpy()
        assert np.allclose(y, w @ x, rtol=1e-4, atol=1e-4)
        note('safetensors -> torch CUDA matmul', 'matches NumPy')
        # The Layout closes; the torch tensors still hold its Block.
        host = st['w'].ptr
        lay.close()
        assert torch.allclose((tw @ tx).cpu(), torch.from_numpy(w @ x), rtol=1e-4, atol=1e-4)
        del tw, tx, st
        torch.cuda.synchronize()
        with open('/proc/self/maps') as f:
            ranges = [[int(x, 16) for x in line.split()[0].split('-')] for line in f]
        still = any(lo <= host < hi for lo, hi in ranges)
        assert not still, 'the last torch tensor did not release the Block'


def aligned_copy(t):
    """A copy of t on the GPU at a 256-aligned address (the caching allocator gives 512
    today; the slice makes it sure)."""
    buf = torch.empty(t.numel() + 128, dtype=t.dtype, device='cuda')
    off = (-buf.data_ptr() % 256) // t.element_size()
    r = buf[off:off + t.numel()].view(t.shape)
    r.copy_(t)
    assert r.data_ptr() % 256 == 0
    return r


@test
def safetensors_bf16_matmul_bit_exact_at_default_alignment():
    # Issue 13: the safetensors library pads headers to 8, so the data often starts at
    # 8 mod 16; cuBLAS picks its kernels by alignment. Loaded at the default placement
    # (every tensor 256-aligned), the matmul on the mapped weights is bit-exact against
    # the same weights in 256-aligned torch memory.
    g = torch.Generator().manual_seed(13)
    x = torch.randn(4096, 1000, generator=g).bfloat16()
    w = torch.randn(4096, 4096, generator=g).bfloat16()
    raw = lambda t: t.contiguous().view(torch.int16).numpy().tobytes()  # noqa: E731
    tensors = {'x': ('BF16', x.shape, raw(x)), 'w': ('BF16', w.shape, raw(w))}
    size = 2 * (4096 * 4096 + 4096 * 1000)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'w.safetensors')
        with open(path, 'wb') as f:
            f.write(st_write.encode_at_8_mod_16(tensors, order=['x', 'w']))
        with unimem.Layout(2 * size + (8 << 20), 1 << 20, 0) as lay:  # both loads
            st = lay.weights.load_safetensors(path)
            tw = torch.from_dlpack(st['w'].to_device())
            tx = torch.from_dlpack(st['x'].to_device())
            assert tw.device.type == 'cuda' and tx.device.type == 'cuda'
            assert tw.data_ptr() % 256 == 0 and tx.data_ptr() % 256 == 0, \
                (hex(tw.data_ptr()), hex(tx.data_ptr()))
            rw, rx = aligned_copy(w.cuda()), aligned_copy(x.cuda())
            assert torch.equal(tw, rw) and torch.equal(tx, rx)
            y, want = tw @ tx, rw @ rx
            torch.cuda.synchronize()
            assert torch.equal(y, want), 'logits differ from the 256-aligned reference'
            note('bf16 4096x4096 @ 4096x1000, default placement', 'bit-exact')
            # For the record only: the opt-out (file placement, 8 mod 16).
            st1 = lay.weights.load_safetensors(path, align=1)
            tw1 = torch.from_dlpack(st1['w'].to_device())
            tx1 = torch.from_dlpack(st1['x'].to_device())
            note('align=1 placement mod 16', tw1.data_ptr() % 16)
            note('align=1 bit-exact', torch.equal(tw1 @ tx1, want))
            del tw, tx, tw1, tx1, y, want
            torch.cuda.synchronize()


@test
def bf16_views_reach_torch():
    with unimem.Block(1 << 16) as b:
        v = b.view(0, 'BF16', (8,))
        np.asarray(b.view(0, 'U16', (8,)))[:] = 0x3f80   # bf16 1.0
        t = torch.from_dlpack(v.to_device())
        assert t.dtype == torch.bfloat16 and float(t.sum()) == 8.0


def main():
    print(f'1..{len(tests)}')
    failed = 0
    for i, fn in enumerate(tests, 1):
        try:
            fn()
            print(f'ok {i} - {fn.__name__}')
        except Exception:  # noqa: BLE001
            failed += 1
            print(f'not ok {i} - {fn.__name__}')
            for line in traceback.format_exc().splitlines():
                print(f'# {line}')
        sys.stdout.flush()
    card = torch.cuda.get_device_name(0)
    try:
        driver = subprocess.run(['nvidia-smi', '--query-gpu=driver_version',
                                 '--format=csv,noheader'], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        driver = '?'
    rows = [('card', card), ('driver', driver), ('torch', torch.__version__),
            ('NumPy', np.__version__), ('date (UTC)',
                                        datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'))]
    rows += seen
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f'# {k:<{width}}  {v}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
