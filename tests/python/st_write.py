# SPDX-License-Identifier: MIT
"""A small safetensors writer for the tests (the format of huggingface/safetensors):
8-byte little-endian header length, the JSON header padded with spaces to a multiple of
8, then the tensors' bytes, largest element first so that each stays aligned to it."""

import json
import struct

SIZES = {'BOOL': 1, 'U8': 1, 'I8': 1, 'F8_E4M3': 1, 'F8_E5M2': 1, 'U16': 2, 'I16': 2,
         'F16': 2, 'BF16': 2, 'U32': 4, 'I32': 4, 'F32': 4, 'U64': 8, 'I64': 8, 'F64': 8}


def encode(tensors, metadata=None, pad_to=8, order=None):
    """tensors: name -> (dtype, shape, bytes). Returns the file's bytes. `order`: names in
    data order (default: by element size, largest first, then by name)."""
    if order is None:
        order = sorted(tensors, key=lambda n: (-SIZES[tensors[n][0]], n))
    header = {}
    if metadata is not None:
        header['__metadata__'] = metadata
    at = 0
    data = bytearray()
    for name in order:
        dtype, shape, raw = tensors[name]
        header[name] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [at, at + len(raw)]}
        data += raw
        at += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    if pad_to > 1:
        text += b' ' * (-(8 + len(text)) % pad_to)
    return struct.pack('<Q', len(text)) + text + bytes(data)


def write(path, tensors, metadata=None, **kw):
    with open(path, 'wb') as f:
        f.write(encode(tensors, metadata, **kw))
