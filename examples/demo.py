"""A first look at xentcpp: the textbook examples, then the fused loss + gradient timed against a stable
NumPy implementation of the same formulas (medians of interleaved runs, in this process).

Run: python examples/demo.py
"""

from __future__ import annotations

import time

import numpy as np

import xentcpp as xc


def numpy_value_and_grad(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient, the stable way, in plain NumPy."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = float(np.mean(log_sum[:, 0] - shifted[rows, y]))
    grad = np.exp(shifted - log_sum)
    grad[rows, y] -= 1.0
    return loss, grad / len(y)


def median_seconds(functions: dict, repeats: int = 7) -> dict:
    """Runs the functions interleaved, `repeats` rounds, and returns each one's median time."""
    times: dict = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    print(f"xentcpp {xc.__version__}\n")
    print("Textbook examples (probabilities in, from_logits=False):")
    probs = [[0.1, 0.3, 0.6], [0.2, 0.3, 0.5]]
    print(f"  cross_entropy({probs}, [0, 2], reduction='none')")
    print(f"    = {xc.cross_entropy(probs, [0, 2], reduction='none', from_logits=False)}")
    print(f"  one-hot target [[0, 0, 1]] vs [[0.6, 0.2, 0.2]]: "
          f"{xc.cross_entropy([[0.6, 0.2, 0.2]], [[0, 0, 1]], from_logits=False):.7f}")
    print(f"  logits [[2.0, 1.0, 0.1]], class 0: {xc.cross_entropy([[2.0, 1.0, 0.1]], [0]):.7f}\n")

    rows, classes = 4096, 1000
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, classes), dtype=np.float32)
    y = rng.integers(0, classes, rows)
    loss, grad = xc.cross_entropy_value_and_grad(x, y)
    ref_loss, ref_grad = numpy_value_and_grad(x.astype(np.float64), y)
    print(f"Loss + gradient, {rows} x {classes} float32, mean over rows:")
    print(f"  loss {loss:.7f} (float64 NumPy: {ref_loss:.7f}); "
          f"max |grad error| {np.abs(grad - ref_grad).max():.1e}")
    t = median_seconds({
        "xentcpp": lambda: xc.cross_entropy_value_and_grad(x, y),
        "numpy": lambda: numpy_value_and_grad(x, y),
    })
    print(f"  xentcpp {t['xentcpp'] * 1e3:.2f} ms, NumPy {t['numpy'] * 1e3:.2f} ms: "
          f"{t['numpy'] / t['xentcpp']:.1f}x faster (median of 7 interleaved runs)")


if __name__ == "__main__":
    main()
