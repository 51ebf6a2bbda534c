"""Why classifiers train on cross-entropy rather than squared error, made visible.

1. As the predicted probability p of the true class goes from 0 to 1, cross-entropy's loss -log p and
   its gradient with respect to the logits stay large while the prediction is wrong; squared error on
   the softmax output saturates: its gradient vanishes as p -> 0, exactly where learning is needed.
2. The same model (softmax regression on scikit-learn's digits, from a confidently wrong start) trained
   with the same optimiser under each loss: cross-entropy recovers, squared error crawls.

Saves two PNG plots. Run: python examples/ce_vs_mse.py [--out DIR]   (needs: pip install ".[examples]")
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
from progress import Progress
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import xentcpp as xc


def mse_value_and_grad(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row squared error ``sum_c (softmax(x)_c - onehot_c)^2`` and its gradient w.r.t. the logits
    (back through the softmax Jacobian: ``p * (g - sum(p * g))`` with ``g = 2 (p - onehot)``)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    diff = p.copy()
    diff[np.arange(len(labels)), labels] -= 1.0
    g = 2.0 * diff
    return (diff**2).sum(axis=1), p * (g - (p * g).sum(axis=1, keepdims=True))


def sweep(classes: int = 10, points: int = 400) -> dict[str, np.ndarray]:
    """Loss and gradient norm of both losses for logits ``[z, 0, ..., 0]`` (class 0 true), with z
    chosen so that p(true class) runs over (0, 1)."""
    p = np.linspace(1e-3, 1 - 1e-3, points)
    z = np.log(p * (classes - 1) / (1 - p))  # softmax([z, 0, ...])[0] == p
    logits = np.zeros((points, classes))
    logits[:, 0] = z
    labels = np.zeros(points, np.int64)
    ce, ce_grad = xc.cross_entropy_value_and_grad(logits, labels, reduction="none")
    mse, mse_grad = mse_value_and_grad(logits, labels)
    return {"p": p, "ce": np.asarray(ce), "mse": mse,
            "ce_grad": np.linalg.norm(ce_grad, axis=1), "mse_grad": np.linalg.norm(mse_grad, axis=1)}


def train_curves(epochs: int, lr: float = 0.5, seed: int = 0) -> dict[str, list[float]]:
    """Full-batch gradient descent of softmax regression on the digits under each loss, from the same
    confidently wrong start (every image predicted as the class after its own, at p ~ 0.99); returns the
    training accuracy after each epoch."""
    x, y = load_digits(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((x.shape[1], 10)) * 0.01
    # Least squares for weights that put ~ +7 on the wrong class: far into softmax saturation.
    wrong = np.full((len(y), 10), -0.5)
    wrong[np.arange(len(y)), (y + 1) % 10] = 7.0
    start += np.linalg.lstsq(x, wrong, rcond=None)[0]
    losses = {"cross-entropy": lambda s: xc.cross_entropy_value_and_grad(s, y)[1],
              "squared error": lambda s: mse_value_and_grad(s, y)[1] / len(y)}
    curves: dict[str, list[float]] = {}
    bar = Progress(epochs * len(losses), label="training")
    for name, grad_of in losses.items():
        w = start.copy()
        curves[name] = []
        for _ in range(epochs):
            w -= lr * (x.T @ grad_of(x @ w))
            curves[name].append(float(np.mean((x @ w).argmax(axis=1) == y)))
            bar.update(info=f"{name}: accuracy {curves[name][-1]:.3f}")
    return curves


def plot_sweep(s: dict[str, np.ndarray], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(s["p"], s["ce"], label="cross-entropy  -log p")
    left.plot(s["p"], s["mse"], label="squared error on softmax")
    left.set(xlabel="p(true class)", ylabel="loss", title="Loss", yscale="log")
    right.plot(s["p"], s["ce_grad"], label="cross-entropy")
    right.plot(s["p"], s["mse_grad"], label="squared error")
    right.set(xlabel="p(true class)", ylabel="|d loss / d logits|", title="Gradient norm")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(curves: dict[str, list[float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, accuracy in curves.items():
        ax.plot(range(1, len(accuracy) + 1), accuracy, label=name)
    ax.set(xlabel="epoch (full batch)", ylabel="training accuracy", ylim=(0, 1),
           title="Softmax regression on digits, from a confidently wrong start")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for the PNGs (default .)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs per loss (default 100)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    s = sweep()
    low = int(np.searchsorted(s["p"], 0.01))
    print(f"at p(true) = {s['p'][low]:.3f}: gradient norm cross-entropy {s['ce_grad'][low]:.3f}, "
          f"squared error {s['mse_grad'][low]:.4f}")
    curves = train_curves(args.epochs)
    for name, accuracy in curves.items():
        print(f"{name}: training accuracy {accuracy[-1]:.3f} after {args.epochs} epochs")
    paths = [args.out / "ce_vs_mse_loss_grad.png", args.out / "ce_vs_mse_training.png"]
    plot_sweep(s, paths[0])
    plot_curves(curves, paths[1])
    print("saved " + ", ".join(str(p) for p in paths))
    return {"sweep": s, "curves": curves, "paths": paths}


if __name__ == "__main__":
    main()
