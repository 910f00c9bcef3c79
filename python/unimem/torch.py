# SPDX-License-Identifier: MIT
"""unimem for PyTorch: ``load_file`` is ``safetensors.torch.load_file`` (same signature,
same result), streamed from disk into GPU memory through a small pinned staging ring.

    import unimem.torch
    state = unimem.torch.load_file("model.safetensors", device="cuda")
    state = unimem.torch.load_file("checkpoint_dir/model.safetensors.index.json", device=0)

The tensors of one load are views of one uint8 buffer that PyTorch allocated (each at a
256-byte aligned address in it): its memory is freed when the last of them is gone.
"""

import torch

from . import WEIGHTS_CPU, Weights

__all__ = ['load_file', 'load_metadata', 'TORCH_DTYPES']

# Bytes of the staging ring the last load_file of this process used (for benchmarks).
last_staging = 0

# safetensors name -> torch dtype (None where this PyTorch has no such type).
TORCH_DTYPES = {
    'BOOL': torch.bool, 'U8': torch.uint8, 'I8': torch.int8, 'I16': torch.int16,
    'I32': torch.int32, 'I64': torch.int64, 'F16': torch.float16, 'BF16': torch.bfloat16,
    'F32': torch.float32, 'F64': torch.float64,
    'U16': getattr(torch, 'uint16', None), 'U32': getattr(torch, 'uint32', None),
    'U64': getattr(torch, 'uint64', None),
    'F8_E4M3': getattr(torch, 'float8_e4m3fn', None),
    'F8_E5M2': getattr(torch, 'float8_e5m2', None),
}


def _device(device):
    if isinstance(device, int):
        return torch.device('cuda', device)
    dev = torch.device(device)
    if dev.type == 'cuda' and dev.index is None:
        dev = torch.device('cuda', torch.cuda.current_device())
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f'unimem.torch.load_file: device {device!r}: cpu or cuda only')
    return dev


def load_file(filename, device='cpu'):
    """Load a safetensors checkpoint (a .safetensors file, a model.safetensors.index.json,
    or a directory holding one) as a dict name -> torch.Tensor on `device` ("cpu",
    "cuda", "cuda:N", or an int N), in the order of the names, as
    safetensors.torch.load_file returns it. Raises unimem.UnimemError (an OSError) for a
    missing or malformed file, TypeError for a dtype this PyTorch lacks."""
    global last_staging
    dev = _device(device)
    with Weights(filename) as w:
        for name, dtype, _, _, _ in w.tensors:
            if TORCH_DTYPES.get(dtype) is None:
                raise TypeError(f'{filename}: tensor {name!r}: dtype {dtype} has no torch type '
                                f'in torch {torch.__version__}')
        # 256 bytes more, to start the buffer at a multiple of 256 (CPU tensors are only
        # 64-byte aligned): every tensor is then 256-byte aligned in memory.
        whole = torch.empty(w.nbytes + 256, dtype=torch.uint8, device=dev)
        buf = whole[-whole.data_ptr() % 256:]
        if dev.type == 'cuda':
            # The allocator may hand out memory that kernels queued on the current stream
            # still use; unimem writes from streams of its own.
            torch.cuda.current_stream(dev).synchronize()
            w.upload(dev.index, buf.data_ptr(), w.nbytes)
        else:
            w.upload(WEIGHTS_CPU, buf.data_ptr(), w.nbytes)
        last_staging = w.staging
        out = {}
        for name, dtype, shape, offset, nbytes in sorted(w.tensors):
            tdt = TORCH_DTYPES[dtype]
            if nbytes == 0:
                out[name] = torch.empty(shape, dtype=tdt, device=dev)
            else:
                out[name] = buf[offset:offset + nbytes].view(tdt).view(shape)
        return out


def load_metadata(filename):
    """The checkpoint's "__metadata__" (of its first shard for an index), as a dict."""
    with Weights(filename) as w:
        return dict(w.metadata)
