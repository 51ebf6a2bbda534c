"""Cross-entropy of rows whose classes are split into shards (a vocabulary split across arrays, processes
or machines): per-row partial statistics of each shard, their exact merge, and the loss and each shard's
gradient from the merged statistics. The C++ core's ``xentcpp/partials.hpp``; ``xentcpp.dask`` runs
them on Dask arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _core, _validation

__all__ = [
    "cross_entropy_from_partials",
    "cross_entropy_grad_from_partials",
    "cross_entropy_partials",
    "merge_partials",
]

#: The record of one row over a shard of classes (``RowPartial`` in ``xentcpp/partials.hpp``): 64 bytes.
PARTIALS_DTYPE: np.dtype = np.dtype(_core.partial_dtype)

_ALGEBRA = """\
    A shard of classes ``B`` of a row ``x`` gives ``m = max_B x``, ``s = sum_B exp(x - m)``, the target
    logit ``x[y]`` when ``y`` lies in ``B``, and (with label smoothing or probability targets)
    ``d = sum_B v (x - m)`` and ``M = sum_B v``, with ``v = w`` (class weights) or ``v = w t'``
    (smoothed probability targets). Two shards merge exactly::

        m = max(m1, m2)
        s = s1 exp(m1 - m) + s2 exp(m2 - m)
        d = d1 + M1 (m1 - m) + d2 + M2 (m2 - m),   M = M1 + M2

    and once every shard of a row is merged, ``lse = m + log(s)`` gives the row's loss exactly as
    :func:`xentcpp.cross_entropy` does (``log(s)`` taken as ``log1p(s - 1)`` with the max's own 1 counted
    apart, so a confident row keeps every digit)."""


class Options(NamedTuple):
    """The options that shape a split row's statistics, loss and gradient, checked."""

    num_classes: int
    weight: Optional[np.ndarray]  # num_classes entries, float64 (exact for float32 logits' weights)
    ignore_index: int
    label_smoothing: float
    z_loss: float
    softcap: float  # 0.0: none

    def weight_as(self, dtype: np.dtype) -> Optional[np.ndarray]:
        """The class weights in the logits' dtype (as the whole-row path rounds them)."""
        return None if self.weight is None else self.weight.astype(dtype, copy=False)


class Sums(NamedTuple):
    """What the reductions of a batch are made of (``PartialSums``); sums over different rows add up field by field."""

    loss: float  # the cross-entropy terms
    z_loss: float
    nll: float  # sum of w[y] (lse - x[y]), and of (1 / C) sum_c w[c] (lse - x[c]): the terms a mean
    smooth: float  # over weights summing to zero divides apart, as PyTorch does
    weight: float  # the mean's denominator
    rows: float  # the rows that count (the z-loss mean's denominator)


class Scales(NamedTuple):
    """How each row's gradient is scaled (``PartialScales``)."""

    scale: float
    z_scale: float
    rows: Optional[np.ndarray]  # per-row upstream gradients (float64), or None
    zero_weight_mean: bool


def make_options(
    num_classes: Any, weight: Any, ignore_index: Any, label_smoothing: Any, z_loss: Any, softcap: Any
) -> Options:
    """Checks the options (TypeError, ValueError) as :func:`xentcpp.cross_entropy` does."""
    classes = _validation._int64(num_classes, "num_classes")
    if classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {classes}")
    smoothing, z, cap = _validation.logit_options(label_smoothing, z_loss, softcap)
    w = _validation.class_weights(weight, classes, np.dtype(np.float64))
    if w is not None and not np.isfinite(w).all():
        raise ValueError("weight must be finite for every class (no NaN, no +-inf)")
    return Options(classes, w, _validation._int64(ignore_index, "ignore_index"), smoothing, z, cap)


def compute_float(x: np.ndarray) -> np.ndarray:
    """Logits or probabilities as the core takes them: float32 or float64 (half precision is
    computed in float32), native byte order, C-contiguous and aligned; a view when it already is one."""
    dtype = np.dtype(np.float32) if _validation.is_half(x.dtype) else x.dtype.newbyteorder("=")
    return np.require(x, dtype=dtype, requirements=["C", "A"])


def partials_of(
    x: np.ndarray, target: np.ndarray, class_start: int, options: Options, row_mask: Optional[np.ndarray]
) -> np.ndarray:
    """The records of a checked ``(rows, width)`` shard: ``target`` int64 labels ``(rows,)`` or probabilities
    of the shard's shape and dtype."""
    out = np.empty(x.shape[0], dtype=PARTIALS_DTYPE)
    _core.row_partials(
        x, target, class_start=class_start, classes=options.num_classes, weight=options.weight_as(x.dtype),
        ignore_index=options.ignore_index, label_smoothing=options.label_smoothing, softcap=options.softcap,
        row_mask=row_mask, out=out,
    )
    return out


def merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The row-by-row merge of two C-contiguous record arrays of one shape."""
    out = np.empty(a.shape, dtype=PARTIALS_DTYPE)
    _core.merge_partials(a, b, out)
    return out


def sums_of(
    records: np.ndarray, labels: Optional[np.ndarray], options: Options, row_mask: Optional[np.ndarray],
    row_losses: Optional[np.ndarray] = None, row_z_losses: Optional[np.ndarray] = None,
) -> Sums:
    """The sums of merged records (flat), with per-row losses (float64) into ``row_losses`` when given."""
    return Sums(*_core.loss_from_partials(
        records, labels, classes=options.num_classes, weight=options.weight, ignore_index=options.ignore_index,
        label_smoothing=options.label_smoothing, z_loss=options.z_loss, row_mask=row_mask, row_losses=row_losses,
        row_z_losses=row_z_losses,
    ))


def denominators(labels: Optional[np.ndarray], rows: int, options: Options, row_mask: Optional[np.ndarray]) -> Sums:
    """The mean's denominators of some rows (labels checked), without any logits: the ``weight`` and
    ``rows`` of :class:`Sums`, the other fields 0."""
    if labels is None:
        kept = float(rows if row_mask is None else np.count_nonzero(row_mask))
        return Sums(0.0, 0.0, 0.0, 0.0, kept, kept)
    weight, counted = _core.count_targets(
        labels, classes=options.num_classes, weight=options.weight, ignore_index=options.ignore_index,
        row_mask=row_mask,
    )
    return Sums(0.0, 0.0, 0.0, 0.0, weight, counted)


def grad_of(
    x: np.ndarray, target: np.ndarray, records: np.ndarray, class_start: int, options: Options,
    row_mask: Optional[np.ndarray], scales: Scales,
) -> np.ndarray:
    """The gradient of a checked ``(rows, width)`` shard from its rows' merged records."""
    grad = np.empty_like(x)
    _core.grad_from_partials(
        x, target, records, class_start=class_start, classes=options.num_classes, weight=options.weight_as(x.dtype),
        ignore_index=options.ignore_index, label_smoothing=options.label_smoothing, z_loss=options.z_loss,
        softcap=options.softcap, row_mask=row_mask, scale=scales.scale, z_scale=scales.z_scale,
        scale_rows=scales.rows, zero_weight_mean=scales.zero_weight_mean, grad=grad,
    )
    return grad


def _divide(a: float, b: float) -> float:
    """a / b as IEEE arithmetic gives it (+-inf or NaN for b = 0), as the core's reductions do."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def reduce_sums(sums: Sums, reduction: str, options: Options) -> Tuple[float, float]:
    """The reduced ``(loss, z_loss)`` of a batch from its sums, the z-loss included in the loss, as the
    whole-row path gives them (PyTorch's mean over weights summing to zero included)."""
    loss, z = sums.loss, sums.z_loss
    if reduction == "mean":
        z = _divide(z, sums.rows)
        a = options.label_smoothing
        if sums.rows != 0.0 and sums.weight == 0.0:  # each of the two terms over that zero
            nll, smooth = _divide(sums.nll, 0.0), _divide(sums.smooth, 0.0)
            loss = _divide(loss, 0.0) if a == 0.0 else (1.0 - a) * nll + a * smooth
        else:
            loss = _divide(loss, sums.weight)
    return (loss + z if options.z_loss != 0.0 else loss), z


def scales_for(reduction: str, sums: Sums, grad_output: float, rows: Optional[np.ndarray] = None) -> Scales:
    """The gradient's scales of a batch whose denominators ``sums`` holds, for a scalar upstream gradient
    (or per-row ones, ``rows``, for reduction ``"none"``)."""
    if reduction != "mean":
        return Scales(grad_output, grad_output, rows, False)
    zero_weight_mean = sums.rows != 0.0 and sums.weight == 0.0
    if sums.rows == 0.0:  # a mean over nothing: the gradient is 0
        return Scales(0.0, 0.0, None, False)
    scale = grad_output if zero_weight_mean else grad_output / sums.weight
    return Scales(scale, grad_output / sums.rows, None, zero_weight_mean)


@dataclass
class _Shard:
    """A shard of classes of a call, checked and converted for the core."""

    x: np.ndarray  # (rows, width), float32 or float64
    target: np.ndarray  # int64 (rows,) or like x
    row_mask: Optional[np.ndarray]
    class_start: int
    options: Options
    call: _validation.Call  # the caller's shapes and dtype

    @property
    def labels(self) -> Optional[np.ndarray]:
        return self.target if self.target.ndim == 1 else None

    @property
    def batch_shape(self) -> Tuple[int, ...]:
        return self.call.batch_shape


def _prepare_shard(
    input: Any, target: Any, *, class_start: Any, num_classes: Any, weight: Any, ignore_index: Any,
    label_smoothing: Any, z_loss: Any = 0.0, softcap: Any = None, where: Any = None, reduction: Any = "none",
) -> _Shard:
    options = make_options(num_classes, weight, ignore_index, label_smoothing, z_loss, softcap)
    call = _validation.prepare(
        input, target, axis=-1, weight=None, ignore_index=options.ignore_index, reduction=reduction,
        label_smoothing=options.label_smoothing, from_logits=True, epsilon=1e-7, z_loss=options.z_loss,
        softcap=softcap, where=where,
    )
    start = _validation._int64(class_start, "class_start")
    width = call.input.shape[1]
    if not 0 <= start <= options.num_classes - width:
        raise ValueError(
            f"the shard's classes [{start}, {start + width}) must lie in [0, num_classes) = [0, {options.num_classes})"
        )
    x = compute_float(call.input)
    t = call.target if call.target.ndim == 1 else np.require(call.target, dtype=x.dtype, requirements=["C", "A"])
    return _Shard(x, t, call.options["row_mask"], start, options, call)


def _records(partials: Any, name: str = "partials") -> np.ndarray:
    """``partials`` as C-contiguous records (TypeError for anything but an array of partial records)."""
    if not isinstance(partials, np.ndarray) or partials.dtype != PARTIALS_DTYPE:
        raise TypeError(
            f"{name} must be an array of partial records, as cross_entropy_partials returns, got "
            f"{type(partials).__name__}" + (f" of dtype {partials.dtype}" if isinstance(partials, np.ndarray) else "")
        )
    return np.ascontiguousarray(partials)


def _labels_for(target: Any, batch_shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """Class indices of the records' shape (flat int64), or None (probability targets)."""
    if target is None:
        return None
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.shape != batch_shape:
        raise ValueError(
            f"target has shape {t.shape}; expected class indices of the partials' shape {batch_shape} "
            "(or None for probability targets)"
        )
    return _validation._labels(t)


def cross_entropy_partials(
    input: ArrayLike,
    target: ArrayLike,
    *,
    class_start: int,
    num_classes: int,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[ArrayLike] = None,
) -> np.ndarray:
    """Per-row partial statistics of a shard of classes, to merge with :func:`merge_partials`.

    ``input`` holds the classes ``[class_start, class_start + width)`` of rows that have ``num_classes``
    classes in all (the class axis last). The records of every shard of the rows, merged in any order
    and grouping, give :func:`cross_entropy_from_partials` and :func:`cross_entropy_grad_from_partials`.

{algebra}

    Parameters
    ----------
    input : array_like
        The shard's logits, ``(..., width)``: float16, bfloat16 (computed in float32), float32 or float64.
    target : array_like
        Class indices of the whole class axis, of ``input``'s shape without the last axis (integers in
        ``[0, num_classes)`` or ``ignore_index``), or the shard's columns of probability targets, of
        ``input``'s shape.
    class_start : int
        The first class of the shard.
    num_classes : int
        The number of classes of a whole row.
    weight : array_like of shape (num_classes,), optional
        Class weights of the whole class axis (finite).
    ignore_index : int, default -100
        Rows whose label equals it get an empty record (class-index targets only).
    label_smoothing : float in [0, 1], default 0.0
        As in :func:`xentcpp.cross_entropy`.
    softcap : float > 0, optional
        Logit soft-capping, ``softcap * tanh(x / softcap)``, applied to the shard before its statistics.
    where : array_like of bool, optional
        A row mask, broadcastable to the rows' shape: rows where it is False get an empty record.

    Returns
    -------
    ndarray
        One record per row, of ``input``'s shape without the last axis: a structured array of float64
        fields ``max``, ``at_max``, ``below_max``, ``dot``, ``mass``, ``target_logit`` and int64 fields
        ``classes`` (the classes covered) and ``targets`` (how often the target class is covered).

    Raises
    ------
    TypeError, ValueError
        As :func:`xentcpp.cross_entropy`; also for a shard that does not fit in ``num_classes``.
    IndexError
        A label outside ``[0, num_classes)`` that is not ``ignore_index``.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> x, y = np.array([[2.0, 1.0, 0.1, -1.0]]), np.array([0])
    >>> left = xc.cross_entropy_partials(x[:, :2], y, class_start=0, num_classes=4)
    >>> right = xc.cross_entropy_partials(x[:, 2:], y, class_start=2, num_classes=4)
    >>> whole = xc.merge_partials(left, right)
    >>> xc.cross_entropy_from_partials(whole, y, num_classes=4), xc.cross_entropy(x, y)
    (0.4493, 0.4493)
    """
    shard = _prepare_shard(
        input, target, class_start=class_start, num_classes=num_classes, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, softcap=softcap, where=where,
    )
    try:
        records = partials_of(shard.x, shard.target, shard.class_start, shard.options, shard.row_mask)
    except IndexError as err:
        raise _validation.locate_label_error(err, shard.batch_shape) from None
    return records.reshape(shard.batch_shape)


def merge_partials(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The exact merge of the partial statistics of two shards of classes, row by row.

    Commutative and associative up to float64 rounding, so the shards of a row can be merged in any order
    and grouping (a fixed order gives the same bits every time). A record of rows that were ignored or
    masked, or of a shard of nothing but ``-inf``, merges as nothing.

{algebra}

    Parameters
    ----------
    a, b : ndarray
        Records of the same rows, as :func:`cross_entropy_partials` returns them, of one shape.

    Returns
    -------
    ndarray
        The merged records, of that shape.

    Raises
    ------
    TypeError
        An argument that is not an array of records.
    ValueError
        Shapes that differ.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> y = np.array([1])
    >>> a = xc.cross_entropy_partials([[0.5]], y, class_start=0, num_classes=2)
    >>> b = xc.cross_entropy_partials([[1.5]], y, class_start=1, num_classes=2)
    >>> ab, ba = xc.merge_partials(a, b), xc.merge_partials(b, a)
    >>> float(ab["max"][0]), float(ab["below_max"][0]), int(ab["classes"][0]), int(ab["targets"][0])
    (1.5, 0.36787944117144233, 2, 1)
    >>> bool((ab == ba).all())
    True
    """
    left, right = _records(a, "a"), _records(b, "b")
    if left.shape != right.shape:
        raise ValueError(f"the partials to merge must have one shape, got {left.shape} and {right.shape}")
    return merged(left, right)


def cross_entropy_from_partials(
    partials: np.ndarray,
    target: Optional[ArrayLike] = None,
    *,
    num_classes: int,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    where: Optional[ArrayLike] = None,
    return_z_loss: bool = False,
) -> Any:
    """The cross-entropy of rows from their merged partial statistics, as :func:`xentcpp.cross_entropy`.

    Every row that counts must have the records of all its classes merged, each shard once (``classes``
    equal to ``num_classes``, and the target class covered once): otherwise ValueError.

{algebra}

    Parameters
    ----------
    partials : ndarray
        Merged records, one per row (:func:`merge_partials`).
    target : array_like, optional
        The class indices, of the records' shape; None for probability targets (whose weights and
        smoothing the records hold already).
    num_classes : int
        The number of classes of a row.
    weight, ignore_index, label_smoothing
        As given to :func:`cross_entropy_partials` (for class-index targets).
    reduction : {{"mean", "sum", "none"}}, default "mean"
        As in :func:`xentcpp.cross_entropy`, over the rows given.
    z_loss : float >= 0, default 0.0
        As in :func:`xentcpp.cross_entropy`.
    where : array_like of bool, optional
        The row mask given to :func:`cross_entropy_partials`.
    return_z_loss : bool, default False
        Also return the z-loss term on its own.

    Returns
    -------
    float or ndarray
        A Python float for ``"sum"`` and ``"mean"``; for ``"none"`` a float64 array of the records' shape.
        With ``return_z_loss=True``, a pair ``(loss, z_loss)``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, or records that miss a shard or hold one twice.
    IndexError
        A label outside ``[0, num_classes)`` that is not ``ignore_index``.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> x, y = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]), np.array([0, 1])
    >>> parts = [xc.cross_entropy_partials(x[:, [c]], y, class_start=c, num_classes=3) for c in range(3)]
    >>> whole = xc.merge_partials(xc.merge_partials(parts[0], parts[1]), parts[2])
    >>> xc.cross_entropy_from_partials(whole, y, num_classes=3, reduction="none")
    array([0.41703, 0.22005])
    """
    records = _records(partials)
    batch_shape = records.shape
    labels = _labels_for(target, batch_shape)
    options = make_options(num_classes, weight, ignore_index, label_smoothing, z_loss, None)
    _validation.check_reduction(reduction)
    row_mask = None if where is None else _validation._row_mask(where, batch_shape)
    flat = records.reshape(-1)
    losses = np.empty(flat.shape, np.float64) if reduction == "none" else None
    z_losses = np.empty(flat.shape, np.float64) if reduction == "none" and return_z_loss else None
    try:
        sums = sums_of(flat, labels, options, row_mask, losses, z_losses)
    except (IndexError, ValueError) as err:
        raise _validation.locate_label_error(err, batch_shape) from None
    if losses is not None:
        per_row = losses.reshape(batch_shape)
        return (per_row, z_losses.reshape(batch_shape) if z_losses is not None else None) if return_z_loss else per_row
    loss, z = reduce_sums(sums, reduction, options)
    return (loss, z) if return_z_loss else loss


def cross_entropy_grad_from_partials(
    input: ArrayLike,
    target: ArrayLike,
    partials: np.ndarray,
    grad_output: ArrayLike = 1.0,
    *,
    class_start: int,
    num_classes: int,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[ArrayLike] = None,
) -> np.ndarray:
    """The gradient of the cross-entropy with respect to a shard of classes, from the rows' merged records.

    Each shard needs only its own logits and its rows' merged statistics: ``p = exp((x - m) - log(s))``
    and the row's scale give ``scale * (p * K - v)`` with the target's entry computed in float64, as
    :func:`xentcpp.cross_entropy_grad` computes it for a whole row.

{algebra}

    Parameters
    ----------
    input, target, class_start, num_classes, weight, ignore_index, label_smoothing, softcap, where
        As given to :func:`cross_entropy_partials` for this shard.
    partials : ndarray
        The rows' merged records (:func:`merge_partials` of every shard).
    grad_output : float or array_like, default 1.0
        The upstream gradient: a scalar, or for ``"none"`` per-row values broadcastable to the rows' shape.
    reduction : {{"mean", "sum", "none"}}, default "mean"
        As in :func:`xentcpp.cross_entropy_grad`; ``"mean"`` divides by the denominator of the rows given
        (for rows split across calls too, pass ``"sum"`` and ``grad_output = 1 / denominator``).
    z_loss : float >= 0, default 0.0
        As in :func:`xentcpp.cross_entropy`.

    Returns
    -------
    ndarray
        The shard's gradient, of ``input``'s shape and dtype.

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`cross_entropy_partials`; also for records that miss a shard or hold one twice.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> x, y = np.array([[0.0, 0.0, 0.0, 0.0]]), np.array([3])
    >>> halves = [xc.cross_entropy_partials(x[:, c:c + 2], y, class_start=c, num_classes=4) for c in (0, 2)]
    >>> whole = xc.merge_partials(*halves)
    >>> xc.cross_entropy_grad_from_partials(x[:, 2:], y, whole, class_start=2, num_classes=4)
    array([[ 0.25, -0.75]])
    """
    shard = _prepare_shard(
        input, target, class_start=class_start, num_classes=num_classes, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap, where=where, reduction=reduction,
    )
    records = _records(partials)
    if records.shape != shard.batch_shape:
        raise ValueError(f"partials has shape {records.shape}; expected the shard's rows, {shard.batch_shape}")
    upstream, per_row = _validation.grad_output_rows(shard.call, grad_output)
    rows = None if per_row is None else per_row.astype(np.float64)
    try:
        sums = denominators(shard.labels, shard.x.shape[0], shard.options, shard.row_mask)
        scales = scales_for(reduction, sums, upstream, rows)
        grad = grad_of(shard.x, shard.target, records.reshape(-1), shard.class_start, shard.options, shard.row_mask,
                       scales)
    except (IndexError, ValueError) as err:
        raise _validation.locate_label_error(err, shard.batch_shape) from None
    return grad.reshape(shard.batch_shape + (shard.x.shape[1],)).astype(shard.call.input_dtype, copy=False)


_DOCUMENTED = (cross_entropy_partials, merge_partials, cross_entropy_from_partials, cross_entropy_grad_from_partials)
for _function in _DOCUMENTED:
    _function.__doc__ = (_function.__doc__ or "").format(algebra=_ALGEBRA)
