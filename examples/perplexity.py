"""Perplexity of a language model's logits too large for memory: stream them in chunks of tokens,
take per-token losses with ``reduction="none"``, and add them up in float64.

Reads ``--logits`` (a ``(tokens, vocab)`` float32/float64 ``.npy``, memory-mapped) and ``--labels``
(``(tokens,)`` integers, -100 for padding that is not scored); without them, a synthetic model's
logits are made chunk by chunk (never all at once), as an evaluation loop receives them.

Run: python examples/perplexity.py [--tokens 8192 --vocab 32000 --chunk 512]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from progress import Progress

import xentcpp as xc

PAD = -100  # xentcpp's default ignore_index, as PyTorch's


def synthetic_chunk(start: int, stop: int, vocab: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of tokens ``[start, stop)`` of a synthetic model: N(0, 2) logits with the true
    token raised by 10, every 17th token padding. The same tokens come out whatever the chunking."""
    rows = np.arange(start, stop)
    logits = np.empty((stop - start, vocab), np.float32)
    labels = np.empty(stop - start, np.int64)
    for i, row in enumerate(rows):  # one generator per token: chunk boundaries do not change the data
        rng = np.random.default_rng((seed, row))
        logits[i] = rng.standard_normal(vocab, dtype=np.float32) * 2.0
        labels[i] = rng.integers(vocab)
        logits[i, labels[i]] += 10.0
    labels[rows % 17 == 16] = PAD
    return logits, labels


def chunks(args: argparse.Namespace) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray]]]:
    """The number of tokens, and an iterator over (logits, labels) chunks."""
    if args.logits is not None:
        logits = np.load(args.logits, mmap_mode="r")  # read from disk chunk by chunk, not all at once
        labels = np.load(args.labels)
        total = len(labels)
        return total, ((np.asarray(logits[i:i + args.chunk]), labels[i:i + args.chunk])
                       for i in range(0, total, args.chunk))
    total = args.tokens
    return total, (synthetic_chunk(i, min(i + args.chunk, total), args.vocab, args.seed)
                   for i in range(0, total, args.chunk))


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logits", type=Path, help="(tokens, vocab) .npy of logits, memory-mapped")
    parser.add_argument("--labels", type=Path, help="(tokens,) .npy of token ids, -100 for padding")
    parser.add_argument("--tokens", type=int, default=8192, help="synthetic tokens (default 8192)")
    parser.add_argument("--vocab", type=int, default=32000, help="synthetic vocabulary (default 32000)")
    parser.add_argument("--chunk", type=int, default=512, help="tokens per chunk (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    args = parser.parse_args(argv)
    if (args.logits is None) != (args.labels is None):
        parser.error("--logits and --labels go together")

    total, stream = chunks(args)
    bar = Progress(total, label="tokens")
    per_token, nll, scored = [], 0.0, 0
    for logits, labels in stream:
        losses = xc.cross_entropy(logits, labels, reduction="none")  # 0 where labels == PAD
        per_token.append(losses)
        nll += float(np.sum(losses, dtype=np.float64))  # float64: millions of terms keep their digits
        scored += int(np.count_nonzero(labels != PAD))
        bar.update(len(labels), info=f"perplexity {math.exp(nll / max(scored, 1)):.3f}")

    mean = nll / scored if scored else math.nan
    print(f"{scored} scored tokens of {total}: mean loss {mean:.6f} nats, perplexity {math.exp(mean):.4f}")
    return {"perplexity": math.exp(mean), "mean_loss": mean, "scored": scored,
            "losses": np.concatenate(per_token)}


if __name__ == "__main__":
    main()
