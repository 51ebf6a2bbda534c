"""Train on real data with NumPy and xentcpp: softmax regression and a one-hidden-layer MLP on
scikit-learn's bundled 8x8 digits (1 797 images, 10 classes, no download), compared with
``sklearn.linear_model.LogisticRegression`` on the same split.

xentcpp gives the loss and d(loss)/d(logits) in one fused call; the rest of the backward pass (a
matrix product or two) is plain NumPy.

Run: python examples/train_digits.py          (needs: pip install ".[examples]")
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from progress import Progress
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import xentcpp as xc


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(seed: int = 0) -> Data:
    """The digits, split 70/30 (stratified), features standardised on the training part (float32)."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return Data(scaler.transform(x_train).astype(np.float32), y_train.astype(np.int64),
                scaler.transform(x_test).astype(np.float32), y_test.astype(np.int64))


class Softmax:
    """Softmax regression: ``logits = x @ w + b``, from zero (the loss is convex: no seed needed; ``rng``
    is taken so that both models are built alike)."""

    def __init__(self, features: int, classes: int, rng: np.random.Generator) -> None:
        self.params = [np.zeros((features, classes), np.float32), np.zeros(classes, np.float32)]

    def logits(self, x: np.ndarray) -> np.ndarray:
        w, b = self.params
        return x @ w + b

    def grads(self, x: np.ndarray, dlogits: np.ndarray) -> list[np.ndarray]:
        return [x.T @ dlogits, dlogits.sum(axis=0)]


class MLP:
    """One hidden ReLU layer: ``logits = relu(x @ w1 + b1) @ w2 + b2``, He-initialised."""

    def __init__(self, features: int, classes: int, rng: np.random.Generator, hidden: int = 128) -> None:
        w1 = rng.standard_normal((features, hidden)) * np.sqrt(2.0 / features)
        w2 = rng.standard_normal((hidden, classes)) * np.sqrt(2.0 / hidden)
        self.params = [w1.astype(np.float32), np.zeros(hidden, np.float32),
                       w2.astype(np.float32), np.zeros(classes, np.float32)]
        self.hidden = np.empty(0, np.float32)

    def logits(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2 = self.params
        self.hidden = np.maximum(x @ w1 + b1, 0.0)  # kept for the backward pass
        return self.hidden @ w2 + b2

    def grads(self, x: np.ndarray, dlogits: np.ndarray) -> list[np.ndarray]:
        w2 = self.params[2]
        dhidden = (dlogits @ w2.T) * (self.hidden > 0)
        return [x.T @ dhidden, dhidden.sum(axis=0), self.hidden.T @ dlogits, dlogits.sum(axis=0)]


def accuracy(model: Softmax | MLP, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.logits(x).argmax(axis=1) == y))


def train(model: Softmax | MLP, data: Data, *, epochs: int, lr: float, batch: int, weight_decay: float,
          rng: np.random.Generator, label: str) -> list[float]:
    """Mini-batch SGD with momentum 0.9; returns the mean training loss of each epoch."""
    velocity = [np.zeros_like(p) for p in model.params]
    bar = Progress(epochs, label=label)
    history = []
    n = len(data.y_train)
    for _ in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb = data.x_train[idx]
            # The fused call: the mean loss of the batch and its gradient with respect to the logits.
            loss, dlogits = xc.cross_entropy_value_and_grad(model.logits(xb), data.y_train[idx])
            total += loss * len(idx)
            for p, g, v in zip(model.params, model.grads(xb, dlogits), velocity):
                v *= 0.9
                v -= lr * (g + weight_decay * p)
                p += v
        history.append(total / n)
        bar.update(info=f"loss {history[-1]:.4f}  test acc {accuracy(model, data.x_test, data.y_test):.4f}")
    return history


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="training epochs per model (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="split and initialisation seed")
    args = parser.parse_args(argv)

    data = load(args.seed)
    print(f"digits: {len(data.y_train)} training and {len(data.y_test)} test images, "
          f"{data.x_train.shape[1]} features, 10 classes")
    reference = LogisticRegression(max_iter=2000).fit(data.x_train, data.y_train)
    results = {"logistic_regression": float(reference.score(data.x_test, data.y_test))}
    features, classes = data.x_train.shape[1], 10
    for name, model in (("softmax", Softmax(features, classes, np.random.default_rng(args.seed))),
                        ("mlp", MLP(features, classes, np.random.default_rng(args.seed)))):
        history = train(model, data, epochs=args.epochs, lr=0.05, batch=32, weight_decay=1e-3,
                        rng=np.random.default_rng(args.seed + 1), label=f"{name:>8}")
        results[name] = accuracy(model, data.x_test, data.y_test)
        results[f"{name}_final_loss"] = history[-1]

    print(f"test accuracy: LogisticRegression {results['logistic_regression']:.4f}, "
          f"softmax regression {results['softmax']:.4f}, MLP {results['mlp']:.4f}")
    return results


if __name__ == "__main__":
    main()
