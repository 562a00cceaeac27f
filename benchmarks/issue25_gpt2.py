"""A GPT-2-small-shaped model (Hugging Face ``transformers``, built from its config with
random weights: nothing is downloaded) run for a few steps: the program ``cutlens capture``
records in ``benchmarks/gpu_run_issue25.sh``.

    python benchmarks/issue25_gpt2.py [--layers 2] [--batch 8] [--seq 512] [--steps 5]
                                      [--dtype bfloat16] [--eager] [--tiny]

The transformer only (``GPT2Model``, no LM head): its four GEMMs per block (``c_attn``,
``attn.c_proj``, ``c_fc``, ``mlp.c_proj``) are the same in every layer, so two layers show
them all and compile fast. ``--tiny``: a 32-wide model for a CPU dry run.
"""

from __future__ import annotations

import argparse

import torch
from transformers import GPT2Config, GPT2Model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--eager", action="store_true", help="no torch.compile")
    p.add_argument("--tiny", action="store_true", help="n_embd 32, 2 heads (CPU dry run)")
    a = p.parse_args()
    torch.manual_seed(0)
    width = 32 if a.tiny else 768
    cfg = GPT2Config(n_embd=width, n_head=2 if a.tiny else 12, n_layer=a.layers,
                     n_positions=max(1024, a.seq), vocab_size=50257)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = GPT2Model(cfg).to(device=device, dtype=getattr(torch, a.dtype)).eval()
    run = model if a.eager else torch.compile(model)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), device=device)
    with torch.no_grad():
        for _ in range(a.steps):
            run(input_ids=ids)
    if device == "cuda":
        torch.cuda.synchronize()
    print(f"{a.steps} steps of GPT-2 ({a.layers} layers, {width} wide, {a.dtype}) on {device}, "
          f"batch {a.batch} x seq {a.seq}: M = {a.batch * a.seq}")


if __name__ == "__main__":
    main()
