"""A small GPT-style language model (vocabulary 50 304, tied input/output embeddings) trained a few steps
on CPU, its output layer and loss either PyTorch's (``F.linear`` + ``F.cross_entropy``: the logits exist)
or ``xentcpp.torch.linear_cross_entropy`` (no logits): the losses step by step, the step time and the
peak memory of each.

Run from the repository root (a minute or two on 2 cores)::

    python benchmarks/linear/gpt_head.py                 # 6 steps of 8 x 128 tokens, both heads
    python benchmarks/linear/gpt_head.py --steps 3 --batch 2 --context 64 --embed 64   # a smoke run

Each head trains in its own fresh process from the same seed (same weights, same batches, AdamW), with
2 threads. Reported per head: the loss of every step, the median step time over the steps after the
first, and the peak RSS growth over those steps (``VmHWM`` after them minus the RSS before them). The
two runs differ only in how the last layer and the loss are computed, so their losses agree to float32
rounding (printed: the largest relative difference). Nothing is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the xentbench package (thread settings)

import argparse
import json
import statistics
import subprocess
import time
from typing import Any

import xentbench  # sets every library's thread count before NumPy is imported
from xentbench.memory import reset_peak_rss, rss_bytes

__all__ = ["main"]

VOCAB = 50304


def build_model(args: argparse.Namespace) -> Any:
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(args.embed), nn.LayerNorm(args.embed)
            self.attn = nn.MultiheadAttention(args.embed, args.heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(args.embed, 4 * args.embed), nn.GELU(),
                                     nn.Linear(4 * args.embed, args.embed))
            mask = torch.triu(torch.ones(args.context, args.context, dtype=torch.bool), diagonal=1)
            self.register_buffer("mask", mask)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=self.mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, args.embed)
            self.positions = nn.Embedding(args.context, args.embed)
            self.blocks = nn.Sequential(*[Block() for _ in range(args.layers)])
            self.ln = nn.LayerNorm(args.embed)

        def hidden(self, idx: torch.Tensor) -> torch.Tensor:
            x = self.tokens(idx) + self.positions(torch.arange(idx.shape[1]))
            return self.ln(self.blocks(x))

    torch.manual_seed(0)
    model = GPT()
    for module in model.modules():  # GPT-2's initialisation: N(0, 0.02) weights, zero biases
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    return model


def batches(args: argparse.Namespace) -> list[tuple[Any, Any]]:
    """Token sequences with structure to learn (each token mostly determines the next), and their shifts."""
    import torch

    gen = torch.Generator().manual_seed(1)
    successor = torch.randint(0, VOCAB, (VOCAB,), generator=gen)
    out = []
    for _ in range(args.steps):
        seq = torch.empty(args.batch, args.context + 1, dtype=torch.long)
        seq[:, 0] = torch.randint(0, VOCAB, (args.batch,), generator=gen)
        for t in range(args.context):
            noise = torch.randint(0, VOCAB, (args.batch,), generator=gen)
            keep = torch.rand(args.batch, generator=gen) < 0.8
            seq[:, t + 1] = torch.where(keep, successor[seq[:, t]], noise)
        out.append((seq[:, :-1], seq[:, 1:]))
    return out


def child(head: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    import xentcpp.torch as xt

    torch.set_num_threads(xentbench.THREADS)
    model = build_model(args)
    data = batches(args)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses, times = [], []
    before = None
    for step, (idx, targets) in enumerate(data):
        if step == 1:  # the first step allocates the optimiser's state: measure the steps after it
            reset_peak_rss()
            before = rss_bytes("VmRSS")
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        h = model.hidden(idx)
        weight = model.tokens.weight  # tied: the output layer is the token embedding
        if head == "xentcpp":
            loss = xt.linear_cross_entropy(h, weight, targets)
        else:
            loss = F.cross_entropy(F.linear(h, weight).flatten(0, 1), targets.flatten())
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    peak = rss_bytes("VmHWM")
    growth = None if peak is None or before is None else (peak - before) / 2**20
    return {"head": head, "losses": losses, "times": times,
            "median_step_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
            "peak_growth_mib": growth}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--child", choices=("torch", "xentcpp"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--embed", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    forwarded = [f"--{k}={getattr(args, k)}" for k in ("steps", "batch", "context", "embed", "layers", "heads")]
    runs = {}
    for head in ("torch", "xentcpp"):
        done = subprocess.run([sys.executable, __file__, "--child", head, *forwarded], capture_output=True,
                              text=True, check=True)
        runs[head] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, theirs = runs["xentcpp"], runs["torch"]
    tokens = args.batch * args.context
    print(f"GPT: vocabulary {VOCAB}, {args.layers} layers of {args.embed}, {tokens} tokens a step, "
          f"{xentbench.THREADS} threads; logits of one step: {tokens * VOCAB * 4 / 2**20:.0f} MiB")
    print("| step | F.linear + F.cross_entropy | xentcpp.torch.linear_cross_entropy | relative difference |")
    print("|---|---|---|---|")
    for i, (a, b) in enumerate(zip(theirs["losses"], ours["losses"])):
        print(f"| {i + 1} | {a:.6f} | {b:.6f} | {abs(a - b) / abs(a):.1e} |")
    for name, r in (("F.linear + F.cross_entropy", theirs), ("xentcpp", ours)):
        growth = "n/a" if r["peak_growth_mib"] is None else f"{r['peak_growth_mib']:.0f} MiB"
        print(f"{name}: median step {r['median_step_s']:.3f} s, peak RSS growth over the steps {growth}")
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
