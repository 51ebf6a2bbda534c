"""What ``filter_eps`` (the opt-in gradient filter of ``linear_cross_entropy_value_and_grad``) saves and
what it costs in accuracy, on a head that looks trained.

The head: ``N`` tokens, ``V`` classes ordered by frequency (as a BPE vocabulary roughly is), logits =
a Zipf prior ``-prior * log(1 + rank)`` (the bias) plus ``h @ w.T`` with ``N(0, signal**2)`` entries,
so that most of each row's probability sits on a few classes and the rare classes are unlikely for
every row; labels drawn from the model's own softmax (a calibrated model). The defaults (prior 2,
signal 2) give rows of 1.7 nats of entropy, top-1 probability 0.55 (``--prior 1.5``: 2.9 nats, 0.40).
Per ``filter_eps``: the share of the logit gradient's stripes (chunk rows x 512 classes) whose
probabilities are all below it (computed here in NumPy), the time of the call over the unfiltered
one (medians of ``--reps`` interleaved calls in this process), and the error of ``d_input`` and
``d_weight`` relative to the unfiltered result (largest entry error over the largest entry, and
Frobenius norms). The loss and ``d_bias`` are exact whatever ``filter_eps``.

Run from the repository root::

    python benchmarks/linear/filter_eps.py [--n 2048 --h 512 --v 32000 --reps 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the xentbench package (thread settings)

import argparse
import statistics
import time

import xentbench  # sets every library's thread count before NumPy is imported

import numpy as np  # isort: skip
import xentcpp as xc  # isort: skip
from xentcpp import _core  # isort: skip

__all__ = ["main"]


def trained_head(n: int, h: int, v: int, prior: float, signal: float,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((n, h), dtype=np.float32)
    weight = rng.standard_normal((v, h), dtype=np.float32) * np.float32(signal / np.sqrt(h))
    bias = (-prior * np.log1p(np.arange(v))).astype(np.float32)
    logits = hidden @ weight.T + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(v, p=row / row.sum()) for row in p.astype(np.float64)])
    return hidden, weight, bias, labels


def skipped_share(hidden, weight, bias, labels, eps: float) -> float:
    """Share of the (chunk rows x 512 classes) stripes whose probabilities are all below eps and hold no target."""
    n, v = hidden.shape[0], weight.shape[0]
    chunk = _core.linear_chunk_rows(n, v, 4)
    skipped = total = 0
    for r in range(0, n, chunk):
        logits = hidden[r:r + chunk] @ weight.T + bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(p)), labels[r:r + chunk]] = 1.0
        for c in range(0, v, 512):
            total += 1
            skipped += bool(np.all(p[:, c:c + 512] < eps))
    return skipped / total


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--h", type=int, default=512)
    parser.add_argument("--v", type=int, default=32000)
    parser.add_argument("--prior", type=float, default=2.0)
    parser.add_argument("--signal", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--eps", default="1e-7,1e-6,1e-5,1e-4,1e-3")
    args = parser.parse_args()
    xc.set_num_threads(xentbench.THREADS)
    hidden, weight, bias, labels = trained_head(args.n, args.h, args.v, args.prior, args.signal)
    exact_loss, exact = xc.linear_cross_entropy_value_and_grad(hidden, weight, labels, linear_bias=bias)
    epsilons = [float(e) for e in args.eps.split(",")]
    times: dict[float, list[float]] = {e: [] for e in [0.0, *epsilons]}
    results = {}
    for _ in range(args.reps):
        for eps in times:
            start = time.perf_counter()
            loss, grads = xc.linear_cross_entropy_value_and_grad(hidden, weight, labels, linear_bias=bias,
                                                                 filter_eps=eps)
            times[eps].append(time.perf_counter() - start)
            results[eps] = (loss, grads)
    base = statistics.median(times[0.0])
    print(f"head: N={args.n}, H={args.h}, V={args.v}, prior {args.prior}, signal {args.signal}, float32, "
          f"{xentbench.THREADS} threads; unfiltered {base:.3f} s; loss {exact_loss:.4f}")
    print("| filter_eps | stripes skipped | time / unfiltered | d_input max err / max | d_input Frobenius | "
          "d_weight max err / max | d_weight Frobenius |")
    print("|---|---|---|---|---|---|---|")
    for eps in epsilons:
        loss, grads = results[eps]
        assert loss == exact_loss and np.array_equal(grads[2], exact[2])  # the loss and d_bias are exact
        cells = []
        for got, want in zip(grads[:2], exact[:2]):
            err = got.astype(np.float64) - want
            cells.append(f"{np.max(np.abs(err)) / np.max(np.abs(want)):.1e}")
            cells.append(f"{np.linalg.norm(err) / np.linalg.norm(want):.1e}")
        share = skipped_share(hidden, weight, bias, labels, eps)
        print(f"| {eps:g} | {share:.0%} | {statistics.median(times[eps]) / base:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
