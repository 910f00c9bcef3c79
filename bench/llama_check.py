#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""On a GPU machine with transformers and safetensors (issue 16):

    llama_check.py make DIR [LAYERS]   a random-weight Llama-shaped model (bf16, about
                                       1.5 GB at 12 layers) saved with save_pretrained
                                       in 3 shards + model.safetensors.index.json
    llama_check.py check DIR           every tensor of unimem.torch.load_file(DIR,
                                       "cuda") bit-exact against safetensors'; logits of
                                       the model on those weights bit-exact against the
                                       same model loaded by from_pretrained
    llama_check.py big FILE GIB        one safetensors file of GIB GiB (bf16), written
                                       with safetensors.torch.save_file
Prints one line per check, "ok"/"FAIL"; exits 1 on a failure."""

import json
import os
import sys

import torch


def config(layers):
    from transformers import LlamaConfig
    return LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=layers,
                       num_attention_heads=16, num_key_value_heads=16, vocab_size=32000,
                       max_position_embeddings=2048, tie_word_embeddings=False,
                       torch_dtype='bfloat16')


def make(where, layers=12):
    from transformers import LlamaForCausalLM
    torch.manual_seed(0)
    with torch.device('cuda'):
        model = LlamaForCausalLM(config(layers)).to(torch.bfloat16)
    model.save_pretrained(where, max_shard_size='600MB', safe_serialization=True)
    n = len(json.load(open(os.path.join(where, 'model.safetensors.index.json')))['weight_map'])
    size = sum(os.path.getsize(os.path.join(where, f)) for f in os.listdir(where)
               if f.endswith('.safetensors'))
    print('made %s: %d tensors, %.3f GB, %d shards' % (where, n, size / 1e9,
          len([f for f in os.listdir(where) if f.endswith('.safetensors')])))


def check(where):
    import safetensors.torch as st
    import unimem.torch
    from transformers import LlamaForCausalLM
    ok = True
    got = unimem.torch.load_file(where, device='cuda')
    ref = {}
    for f in sorted(os.listdir(where)):
        if f.endswith('.safetensors'):
            ref.update(st.load_file(os.path.join(where, f), device='cuda'))
    same = set(got) == set(ref) and all(
        got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape and
        torch.equal(got[k].view(torch.uint8) if got[k].dtype != torch.bool else got[k],
                    ref[k].view(torch.uint8) if ref[k].dtype != torch.bool else ref[k])
        for k in ref)
    print('%s every tensor bit-exact against safetensors.torch.load_file (%d tensors)'
          % ('ok' if same else 'FAIL', len(ref)))
    ok &= same
    a = LlamaForCausalLM.from_pretrained(where, torch_dtype=torch.bfloat16).cuda().eval()
    # b: the same model, its parameters then replaced by unimem's tensors themselves
    # (assign=True: b computes on the memory unimem wrote, not on a copy). Built the way
    # from_pretrained builds it, so that non-persistent buffers (rotary inv_freq, float32)
    # are the same; the parameters are zeroed first, so none can be left over.
    b = LlamaForCausalLM.from_pretrained(where, torch_dtype=torch.bfloat16).cuda().eval()
    with torch.no_grad():
        for p in b.parameters():
            p.zero_()
    b.load_state_dict(got, strict=True, assign=True)
    owned = all(p.data_ptr() == got[n].data_ptr() for n, p in b.named_parameters())
    print('%s the model runs on the loaded tensors themselves' % ('ok' if owned else 'FAIL'))
    ok &= owned
    ids = torch.randint(0, a.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.no_grad():
        la, lb = a(ids).logits, b(ids).logits
    same = torch.equal(la, lb)
    print('%s logits bit-exact: from_pretrained vs load_state_dict(unimem.torch.load_file) '
          '(shape %s, max |diff| %g)' % ('ok' if same else 'FAIL', tuple(la.shape),
                                         (la.float() - lb.float()).abs().max().item()))
    ok &= same
    return ok


def big(path, gib):
    import safetensors.torch as st
    n = 16
    per = (gib << 30) // n // 2
    rows = 4096
    ts = {}
    g = torch.Generator(device='cuda').manual_seed(2)
    for i in range(n):
        cols = per // rows + (i % 3)  # odd sizes
        ts['w%02d' % i] = torch.randn(rows, cols, generator=g, device='cuda',
                                      dtype=torch.bfloat16).cpu()
    st.save_file(ts, path, metadata={'format': 'pt'})
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())
    print('made %s: %.3f GB' % (path, os.path.getsize(path) / 1e9))


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'make':
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 12)
    elif cmd == 'check':
        sys.exit(0 if check(sys.argv[2]) else 1)
    elif cmd == 'big':
        big(sys.argv[2], int(sys.argv[3]))
