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


def encode_at_8_mod_16(tensors, metadata=None, order=None):
    """As encode(), with the header padded so that the data starts at 8 mod 16 (what the
    safetensors library writes in most shards: it pads to 8 only)."""
    raw = encode(tensors, metadata, order=order)
    hlen = int.from_bytes(raw[:8], 'little')
    if (8 + hlen) % 16 != 8:
        raw = (hlen + 8).to_bytes(8, 'little') + raw[8:8 + hlen] + b' ' * 8 + raw[8 + hlen:]
    assert (8 + int.from_bytes(raw[:8], 'little')) % 16 == 8
    return raw


def write(path, tensors, metadata=None, **kw):
    with open(path, 'wb') as f:
        f.write(encode(tensors, metadata, **kw))
