"""The four implementations as zero-argument calls: xentcpp, a NumPy reference, PyTorch and JAX/optax.

Each builder takes the logits and labels and returns ``{op: call}``; a call returns the loss or
``(loss, gradient)``. The peers' inputs (``torch.from_numpy`` views, JAX device arrays) are made by the
builder, so the calls time the work only. PyTorch and JAX are optional: their loaders raise ImportError
when missing, and :func:`library_versions` then says ``n/a`` with the reason.
"""

from __future__ import annotations

import functools
import gc
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

import xentcpp as xc
from xentcpp import _core

from . import THREADS

Call = Callable[[], Any]

__all__ = ["FACTORIES", "Call", "free_peer_caches", "library_versions", "numpy_forward",
           "numpy_value_and_grad", "simd_target"]


def xentcpp_calls(x: np.ndarray, y: np.ndarray) -> dict[str, Call]:
    """xentcpp's mean loss; fused loss + new gradient; the same into a pre-faulted ``out``; and the same
    with the buffer cache off, so that every gradient is a fresh allocation (as the peers' are)."""
    out = np.empty_like(x)
    out.fill(0)

    def fused_cache_off() -> Any:
        # _core's setter, not xc.set_cache_limit: no argument checks, whose time would count on small shapes.
        previous = _core.set_cache_limit(0)  # frees the buffer the last call's gradient left
        try:
            return xc.cross_entropy_value_and_grad(x, y)
        finally:
            _core.set_cache_limit(previous)

    return {
        "forward": lambda: xc.cross_entropy(x, y),
        "fused": lambda: xc.cross_entropy_value_and_grad(x, y),
        "fused_out": lambda: xc.cross_entropy_value_and_grad(x, y, out=out),
        "fused_cold": fused_cache_off,
    }


def numpy_forward(x: np.ndarray, y: np.ndarray) -> float:
    """Mean of ``logsumexp(x) - x[y]`` over rows, the stable way (one temporary of ``x``'s size).

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Logits.
    y : ndarray of int64, shape (N,)
        Class indices.

    Returns
    -------
    float
        ``mean_i(log(sum_c exp(x_ic - m_i)) - (x_iy - m_i))`` with ``m_i = max_c x_ic``.
    """
    shifted = x - x.max(axis=1, keepdims=True)
    picked = shifted[np.arange(len(y)), y]
    sums = np.exp(shifted, out=shifted).sum(axis=1)
    return float(np.mean(np.log(sums) - picked))


def numpy_value_and_grad(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """:func:`numpy_forward` and its gradient ``(softmax(x) - onehot(y)) / N``, sharing one buffer.

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Logits.
    y : ndarray of int64, shape (N,)
        Class indices.

    Returns
    -------
    loss : float
    grad : ndarray, shape (N, C), of ``x``'s dtype
    """
    rows = np.arange(len(y))
    grad = x - x.max(axis=1, keepdims=True)
    picked = grad[rows, y]
    sums = np.exp(grad, out=grad).sum(axis=1)
    loss = float(np.mean(np.log(sums) - picked))
    grad *= (1.0 / (sums * len(y))).astype(x.dtype)[:, None]
    grad[rows, y] -= x.dtype.type(1.0 / len(y))
    return loss, grad


def numpy_calls(x: np.ndarray, y: np.ndarray) -> dict[str, Call]:
    """The NumPy reference, forward and fused."""
    return {"forward": lambda: numpy_forward(x, y), "fused": lambda: numpy_value_and_grad(x, y)}


@functools.cache
def load_torch() -> SimpleNamespace:
    """Imports PyTorch (raises ImportError when missing) and gives it ``THREADS`` threads."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(THREADS)
    except RuntimeError:  # already set, or parallel work already started
        pass
    return SimpleNamespace(torch=torch, F=F, version=torch.__version__)


def torch_calls(x: np.ndarray, y: np.ndarray) -> dict[str, Call]:
    """``F.cross_entropy`` under ``no_grad``, and forward + ``backward()`` into a fresh ``x.grad``."""
    t = load_torch()
    xt, yt = t.torch.from_numpy(x), t.torch.from_numpy(y)
    xg = t.torch.from_numpy(x).requires_grad_(True)

    def forward() -> Any:
        with t.torch.no_grad():
            return t.F.cross_entropy(xt, yt)

    def fused() -> Any:
        xg.grad = None
        loss = t.F.cross_entropy(xg, yt)
        loss.backward()
        return loss.detach(), xg.grad

    return {"forward": forward, "fused": fused}


@functools.cache
def load_jax() -> SimpleNamespace:
    """Imports JAX and optax (raises ImportError when missing), enables float64, jits the two functions."""
    import jax
    import optax  # type: ignore[import-untyped, unused-ignore]

    jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call, unused-ignore]
    if jax.default_backend() != "cpu":
        raise ImportError(f"JAX runs on {jax.default_backend()}, not the CPU")

    def mean_loss(x: Any, y: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(x, y).mean()

    version = f"{jax.__version__} (optax {optax.__version__})"
    return SimpleNamespace(jax=jax, forward=jax.jit(mean_loss),
                           fused=jax.jit(jax.value_and_grad(mean_loss)), version=version)


def jax_calls(x: np.ndarray, y: np.ndarray) -> dict[str, Call]:
    """Jitted optax mean loss, and jitted ``value_and_grad`` of it, on device arrays made here."""
    j = load_jax()
    xj, yj = j.jax.device_put(x), j.jax.device_put(y)
    j.jax.block_until_ready((xj, yj))
    return {
        "forward": lambda: j.forward(xj, yj).block_until_ready(),
        "fused": lambda: j.jax.block_until_ready(j.fused(xj, yj)),
    }


FACTORIES: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, Call]]] = {
    "xentcpp": xentcpp_calls, "numpy": numpy_calls, "torch": torch_calls, "jax": jax_calls,
}
LOADERS: dict[str, Callable[[], SimpleNamespace]] = {"torch": load_torch, "jax": load_jax}


def library_versions() -> dict[str, str]:
    """Version of every implementation, or ``n/a: <reason>`` for a peer that cannot be imported."""
    versions = {"xentcpp": xc.__version__, "numpy": np.__version__}
    for name, loader in LOADERS.items():
        try:
            versions[name] = loader().version
        except Exception as err:  # noqa: BLE001 - an optional peer: any failure to load makes it n/a
            versions[name] = f"n/a: {type(err).__name__}: {err}"
    return versions


def simd_target() -> str:
    """The SIMD target xentcpp's kernels run on (``avx512``, ``avx2``, ``baseline``), or ``unknown``."""
    target = getattr(xc, "simd_target", None)
    return str(target()) if callable(target) else "unknown"


def free_peer_caches() -> None:
    """Drops JAX's compiled executables (one per shape) when JAX was loaded."""
    if load_jax.cache_info().currsize:  # the cache holds only a successful load
        load_jax().jax.clear_caches()
    gc.collect()
