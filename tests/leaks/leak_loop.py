"""A loop of xentcpp calls, raised errors included, for a leak check under valgrind memcheck.

Run by scripts/run_tests.sh as
``PYTHONMALLOC=malloc valgrind --leak-check=full --suppressions=tests/leaks/python.supp ... python
tests/leaks/leak_loop.py``: every call below goes through the extension (the C++ fast path, the
general path, and _core directly), and every error is raised from C++ or pybind11 while arrays are
held, so that a reference or a buffer dropped on an error path shows up as memory lost. The loop
repeats each case ``rounds`` times (the argument, 40 by default): a leak per call is then ``rounds``
times larger than anything the interpreter itself keeps at exit, and memcheck reports it as
definitely lost.
"""

from __future__ import annotations

import sys

import numpy as np

import xentcpp as xc
from xentcpp import _core


def _raises(exc: type[BaseException], func, *args, **kwargs) -> None:
    try:
        func(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{func.__name__} did not raise {exc.__name__}")


def one_round(rng: np.random.Generator) -> None:
    x = rng.standard_normal((6, 40)).astype(np.float32)
    y = rng.integers(0, 40, 6)
    probs = np.full_like(x, 1 / 40)
    w = rng.random(40).astype(np.float32) + 0.5
    for reduction in ("none", "sum", "mean"):
        xc.cross_entropy(x, y, reduction=reduction)  # the C++ fast path
        xc.cross_entropy_value_and_grad(x, y, reduction=reduction, out=np.empty_like(x))
        xc.cross_entropy_grad(x.astype(np.float64), y, reduction=reduction, weight=w)  # the general path
        xc.cross_entropy_value_and_grad(x, probs, reduction=reduction, label_smoothing=0.1)
    xc.cross_entropy(x.astype(np.float16).T, y, axis=0)  # converted copies
    xc.cross_entropy(rng.standard_normal((2, 5, 3)), rng.integers(0, 5, (2, 3)), axis=1)
    xc.cross_entropy(np.empty((0, 40), np.float32), np.empty(0, np.int64), reduction="none")
    xc.cross_entropy_value_and_grad(x.astype(np.float16), y, z_loss=1e-4, softcap=30.0, return_z_loss=True)
    # The building blocks, each through its binding.
    xc.log_softmax(x, axis=0)
    xc.softmax(x, out=np.empty_like(x))
    xc.logsumexp(x.astype(np.float64), axis=-1)
    xc.nll_loss_grad(xc.log_softmax(x), y, weight=w, reduction="none")
    xc.binary_cross_entropy_with_logits_grad(x, probs, pos_weight=w)
    xc.kl_div(xc.softmax(x), probs, base=2.0)
    # Shards of the class axis: records, their merge, the loss and a shard's gradient from them.
    left = xc.cross_entropy_partials(x[:, :25], y, class_start=0, num_classes=40, weight=w, label_smoothing=0.1)
    right = xc.cross_entropy_partials(x[:, 25:], y, class_start=25, num_classes=40, weight=w, label_smoothing=0.1,
                                      softcap=30.0)
    rows = xc.merge_partials(left, right)
    xc.cross_entropy_from_partials(rows, y, num_classes=40, weight=w, label_smoothing=0.1, reduction="none")
    xc.cross_entropy_grad_from_partials(x[:, 25:], y, rows, class_start=25, num_classes=40, z_loss=1e-3)
    # Results of 4 MiB and more: their buffers go back to the cache, which keeps one and frees the rest.
    large = rng.standard_normal((1024, 1030)).astype(np.float32)
    xc.cross_entropy_grad(large, rng.integers(0, 1030, 1024))
    xc.softmax(large[:, :1029])  # another size: frees the kept buffer
    xc.empty_cache()

    # linear_cross_entropy: chunks, every gradient, the filter, per-row upstream gradients.
    layer = rng.standard_normal((40, 8)).astype(np.float32)
    hidden = rng.standard_normal((6, 8)).astype(np.float32)
    xc.linear_cross_entropy_value_and_grad(hidden, layer, y, linear_bias=w, chunk_size=4, z_loss=1e-4,
                                           filter_eps=1e-3)
    xc.linear_cross_entropy(hidden.astype(np.float16), layer, y, reduction="none", chunk_size=5, return_z_loss=True)
    _core.linear_cross_entropy(hidden, layer, y, reduction="none", d_weight=np.empty_like(layer),
                               grad_output_rows=np.ones(6, np.float32))

    bad = y.copy()
    bad[3] = 40
    _raises(IndexError, xc.cross_entropy, x, bad)  # label check in C++, on the fast path
    _raises(IndexError, xc.cross_entropy_grad, x, bad, weight=w)  # ... and on the general path
    _raises(IndexError, xc.cross_entropy_value_and_grad, x, bad, out=x.copy())
    _raises(TypeError, xc.cross_entropy, x.astype(complex), y)
    _raises(ValueError, xc.cross_entropy, x, y, label_smoothing=float("nan"))
    _raises(ValueError, xc.cross_entropy_grad, x, y, out=x[:, :-1])
    _raises(IndexError, xc.nll_loss, x, bad)
    _raises(ValueError, xc.softmax, x, out=np.empty((6, 41), np.float32))
    _raises(ValueError, xc.binary_cross_entropy_with_logits, x, probs[:, :-1])
    _raises(IndexError, xc.cross_entropy_partials, x, bad, class_start=0, num_classes=40)
    _raises(ValueError, xc.cross_entropy_from_partials, left, y, num_classes=40)  # a shard missing
    _raises(IndexError, xc.cross_entropy_grad_from_partials, x[:, 25:], bad, rows, class_start=25, num_classes=40)
    # _core directly: the binding refuses a wrong dtype or type, the core bad options, a read-only gradient.
    _raises(ValueError, _core.cross_entropy, x.astype(np.float64), y.astype(np.int32))
    _raises(TypeError, _core.cross_entropy, x, "not an array")
    _raises(ValueError, _core.cross_entropy, x, y, label_smoothing=2.0)
    frozen = np.empty_like(x)
    frozen.flags.writeable = False
    _raises(ValueError, _core.cross_entropy, x, y, grad=frozen)
    _raises(IndexError, xc.linear_cross_entropy_value_and_grad, hidden, layer, bad, chunk_size=2)
    _raises(ValueError, _core.linear_cross_entropy, hidden, layer, y, label_smoothing=2.0,
            d_input=np.empty_like(hidden))
    _raises(ValueError, _core.linear_cross_entropy, hidden, layer[:, :-1], y)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40  # read here: pytest's doctest collection imports this file
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        one_round(rng)
    print(f"leak loop: {rounds} rounds done")


if __name__ == "__main__":
    main()
