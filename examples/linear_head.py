"""Train a language model's output layer with NumPy alone: hidden states in, a ``(vocab, hidden)`` weight
and bias trained by SGD on ``xentcpp.linear_cross_entropy_value_and_grad``, which never makes the
``(tokens, vocab)`` logits.

The corpus is synthetic: each token mostly decides the next one (a fixed successor, 80 % of the time),
and the hidden state of a token is a fixed random embedding of it, so a linear layer can learn the
successor table. Printed: the loss per epoch, the perplexity before and after, and at the start the
same loss computed the unfused way (logits, then ``cross_entropy``) for comparison.

Run: python examples/linear_head.py [--tokens 16384 --vocab 4096 --hidden 128 --epochs 5]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
from progress import Progress

import xentcpp as xc


def corpus(tokens: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A token stream and, for each token, the next one (the label)."""
    rng = np.random.default_rng(seed)
    successor = rng.integers(0, vocab, vocab)
    stream = np.empty(tokens + 1, np.int64)
    stream[0] = rng.integers(vocab)
    noise = rng.integers(0, vocab, tokens)
    keep = rng.random(tokens) < 0.8
    for t in range(tokens):
        stream[t + 1] = successor[stream[t]] if keep[t] else noise[t]
    return stream[:-1], stream[1:]


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=0.5, help="step per token (the loss is summed over a batch)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(1)
    inputs, labels = corpus(args.tokens, args.vocab)
    embedding = rng.standard_normal((args.vocab, args.hidden), dtype=np.float32) / np.float32(math.sqrt(args.hidden))
    hidden = embedding[inputs]  # (tokens, hidden): what the layers below would hand over
    weight = np.zeros((args.vocab, args.hidden), np.float32)
    bias = np.zeros(args.vocab, np.float32)

    first = xc.linear_cross_entropy(hidden, weight, labels, linear_bias=bias)
    unfused = xc.cross_entropy(hidden @ weight.T + bias, labels)
    print(f"initial loss {first:.6f} (unfused: {unfused:.6f}), perplexity {math.exp(first):.0f}")
    bar = Progress(args.epochs, label="epochs")
    loss = first
    for _ in range(args.epochs):
        total = 0.0
        for start in range(0, args.tokens, args.batch):
            rows = slice(start, start + args.batch)
            loss, (_, d_weight, d_bias) = xc.linear_cross_entropy_value_and_grad(
                hidden[rows], weight, labels[rows], linear_bias=bias, reduction="sum")
            weight -= np.float32(args.lr) * d_weight
            bias -= np.float32(args.lr) * d_bias
            total += loss
        loss = total / args.tokens
        bar.update(info=f"loss {loss:.4f}")
    final = xc.linear_cross_entropy(hidden, weight, labels, linear_bias=bias)
    print(f"final loss {final:.6f}, perplexity {math.exp(final):.1f}")
    return {"initial": float(first), "unfused": float(unfused), "final": float(final)}


if __name__ == "__main__":
    main()
