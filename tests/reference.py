"""An independent float64 NumPy reference for xentcpp, written from the formulas of the contract.

Nothing here calls xentcpp. Every row is written as ``loss = sum_c coef[c] * nll[c]`` where
``nll[c]`` is ``lse - x[c]`` (logits) or ``-log(clip(q[c], eps, 1 - eps))`` (probabilities) and
``coef`` holds the weights of the target, smoothing and class weights:

* class index y:   coef = (1 - a) * w[y] * onehot(y) + (a / C) * w
* probabilities t: coef = w * ((1 - a) * t + a / C)

A term whose coefficient is 0 contributes 0 even where ``nll`` is infinite (masked classes).
The gradient with respect to logits is ``s * (p * sum(coef) - coef)`` with ``p = softmax(x)``; with
respect to probabilities it is ``s * coef * (-1 / q)`` inside the clip range and 0 outside it.
``s`` is the row's scale: grad_output (sum), grad_output / denominator (mean, 0 when the
denominator is 0) or grad_output[row] (none). Ignored rows have loss 0 and gradient 0.

Logit options: ``softcap`` c replaces x by ``c * tanh(x / c)`` first (the gradient is multiplied by
``1 - tanh(x / c)**2``); ``z_loss`` λ adds ``λ * lse**2`` to every row that is not ignored, with
gradient ``λ * 2 * lse * p``, and a mean divides that term by the number of such rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["central_difference", "ref_grad", "ref_loss"]


@dataclass
class _Rows:
    x: np.ndarray  # (R, C) float64, class axis last
    coef: np.ndarray  # (R, C) float64
    keep: np.ndarray  # (R,) bool: rows that are not ignored
    denom: float  # denominator of the mean
    batch: tuple  # shape of the per-row losses
    axis: int  # normalised class axis of the input


def _rows(x, target, axis, weight, ignore_index, label_smoothing) -> _Rows:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("reference: 0-d input")
    axis = axis % x.ndim
    xr = np.moveaxis(x, axis, -1)
    batch = xr.shape[:-1]
    n_classes = xr.shape[-1]
    xr = xr.reshape(-1, n_classes)
    n_rows = xr.shape[0]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    a = float(label_smoothing)
    t = np.asarray(target)
    if t.shape == x.shape:  # probability target
        tr = np.moveaxis(t.astype(np.float64), axis, -1).reshape(-1, n_classes)
        coef = w * ((1.0 - a) * tr + a / n_classes)
        keep = np.ones(n_rows, dtype=bool)
        denom = float(n_rows)
    else:  # class indices
        y = t.astype(np.int64).reshape(-1)
        keep = y != ignore_index
        ys = np.where(keep, y, 0)
        coef = np.tile((a / n_classes) * w, (n_rows, 1))
        coef[np.arange(n_rows), ys] += (1.0 - a) * w[ys]
        coef[~keep] = 0.0
        denom = float(np.sum(w[ys][keep]))
    return _Rows(xr, coef, keep, denom, batch, axis)


def _capped(x, softcap):
    """The logits after soft-capping, and d(capped)/dx."""
    if softcap is None:
        return x, np.ones_like(x)
    t = np.tanh(x / softcap)
    return softcap * t, 1.0 - t * t


def _lse(x):
    m = np.max(x, axis=-1)
    return m + np.log(np.sum(np.exp(x - m[:, None]), axis=-1))


def _nll(x, from_logits, epsilon):
    """-log(probability) per class and the softmax (None for probability input)."""
    if from_logits:
        m = np.max(x, axis=-1, keepdims=True)  # NaN propagates through np.max
        z = x - m
        log_s = np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
        return log_s - z, np.exp(z - log_s)
    return -np.log(np.clip(x, epsilon, 1.0 - epsilon)), None


def ref_loss(x, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
             label_smoothing=0.0, from_logits=True, epsilon=1e-7, z_loss=0.0, softcap=None,
             return_z_loss=False):
    """Loss in float64: ndarray of the batch shape for "none", Python float otherwise (z-loss
    included); with return_z_loss, the pair (loss, z-loss term)."""
    with np.errstate(all="ignore"):
        r = _rows(x, target, axis, weight, ignore_index, label_smoothing)
        xs, _ = _capped(r.x, softcap)
        nll, _ = _nll(xs, from_logits, epsilon)
        row = np.sum(np.where(r.coef == 0.0, 0.0, r.coef * nll), axis=-1)
        row[~r.keep] = 0.0
        z_row = np.where(r.keep, z_loss * _lse(xs) ** 2, 0.0) if z_loss else np.zeros_like(row)
        if reduction == "none":
            loss, z = (row + z_row).reshape(r.batch), z_row.reshape(r.batch)
        elif reduction == "sum":
            loss, z = float(np.sum(row + z_row)), float(np.sum(z_row))
        elif reduction == "mean":
            count = float(np.sum(r.keep))
            z = float(np.sum(z_row)) / count if count else float("nan")
            loss = float(np.sum(row)) / r.denom if r.denom != 0.0 else float("nan")
            loss += z if z_loss else 0.0
        else:
            raise ValueError(f"reference: unknown reduction {reduction!r}")
    return (loss, z) if return_z_loss else loss


def ref_grad(x, target, grad_output=1.0, *, axis=-1, weight=None, ignore_index=-100,
             reduction="mean", label_smoothing=0.0, from_logits=True, epsilon=1e-7, z_loss=0.0,
             softcap=None):
    """Analytic gradient in float64, with the shape of ``x``."""
    with np.errstate(all="ignore"):
        r = _rows(x, target, axis, weight, ignore_index, label_smoothing)
        s_z = None
        if reduction == "none":
            s = np.broadcast_to(np.asarray(grad_output, dtype=np.float64), r.batch).reshape(-1)
        elif reduction == "sum":
            s = np.full(r.x.shape[0], float(grad_output))
        elif reduction == "mean":
            scale = float(grad_output) / r.denom if r.denom != 0.0 else 0.0
            s = np.full(r.x.shape[0], scale)
            count = float(np.sum(r.keep))
            s_z = np.full(r.x.shape[0], float(grad_output) / count if count else 0.0)
        else:
            raise ValueError(f"reference: unknown reduction {reduction!r}")
        s_z = s if s_z is None else s_z
        xs, chain = _capped(r.x, softcap)
        _, p = _nll(xs, from_logits, epsilon)
        if from_logits:
            g = s[:, None] * (p * np.sum(r.coef, axis=-1, keepdims=True) - r.coef)
            if z_loss:
                g = g + (s_z * 2.0 * z_loss * _lse(xs))[:, None] * p
            g = g * chain
        else:
            q = r.x
            inside = (q >= epsilon) & (q <= 1.0 - epsilon) & (r.coef != 0.0)
            g = s[:, None] * np.where(inside, -r.coef / np.where(inside, q, 1.0), 0.0)
        g[~r.keep] = 0.0
    shape = np.moveaxis(np.asarray(x, dtype=np.float64), r.axis, -1).shape
    return np.moveaxis(g.reshape(shape), -1, r.axis)


def central_difference(f, x, h=1e-6):
    """Gradient of the scalar function ``f`` at ``x`` by central differences in float64."""
    x = np.array(x, dtype=np.float64)
    g = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp = x.copy()
        xm = x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2.0 * h)
    return g
