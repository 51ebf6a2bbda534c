"""Cross-entropy of Dask arrays, exact for logits chunked along rows and classes alike.

Logits too large for one machine (a corpus of tokens, a vocabulary split across workers) are reduced
chunk by chunk on the scheduler Dask already runs: the local threads, or ``dask.distributed`` on one
machine or many. Each chunk of classes gives per-row partial statistics
(:func:`xentcpp.cross_entropy_partials`); they merge along the class axis in a tree fixed by the
chunking (so the same graph gives the same bits on every run, on any workers); the merged rows give
the loss, a lazy Dask scalar or per-row array, and each chunk's gradient, a Dask array with the
logits' chunks. The results are those of :func:`xentcpp.cross_entropy` on the whole array, to the
rounding of the compute type. :func:`linear_cross_entropy` does the same for a linear layer's output
from a Dask array of its inputs, chunk of rows by chunk of rows, without any logits.

Each task runs the kernels on one thread: Dask runs the tasks in parallel.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

try:
    import dask.array as da
    from dask.delayed import delayed
except ImportError as err:  # pragma: no cover - tested in a subprocess without Dask
    raise ImportError(
        "xentcpp.dask needs Dask's arrays: install them with `pip install \"xentcpp[dask]\"` "
        "(or `pip install \"dask[array]\"`; add `distributed` for a cluster)"
    ) from err

from . import _linear, _partials, _validation
from ._config import threads

__all__ = ["cross_entropy", "cross_entropy_value_and_grad", "linear_cross_entropy"]

_RECORD = _partials.PARTIALS_DTYPE


class _Graph:
    """One call's arrays, checked and chunked alike: logits ``(..., C)`` with the class axis last (at least
    one row axis), targets and row mask chunked as the rows, the options as one graph key."""

    def __init__(
        self, input: Any, target: Any, *, axis: Any, weight: Any, ignore_index: Any, reduction: Any,
        label_smoothing: Any, z_loss: Any, softcap: Any, where: Any,
    ) -> None:
        x = _logits(input)
        self.caller_shape: Tuple[int, ...] = x.shape
        self.input_dtype = x.dtype
        self.axis = _validation.axis_index(axis, x.ndim)
        self.reduction = _validation.check_reduction(reduction)
        t = target if isinstance(target, da.Array) else np.asarray(target)
        probabilities = t.shape == x.shape
        if self.axis != x.ndim - 1:  # the class axis last
            x = da.moveaxis(x, self.axis, -1)
            if probabilities:
                t = da.moveaxis(t, self.axis, -1) if isinstance(t, da.Array) else np.moveaxis(t, self.axis, -1)
        self.one_row = x.ndim == 1  # a single row: computed as one row of a (1, C) array
        if self.one_row:
            x = x[None, :]
            t = t[None] if probabilities else t.reshape(1)
        if x.shape[-1] == 0:
            raise ValueError(f"input has no classes: axis {self.axis} of shape {self.caller_shape} is empty")
        self.batch_shape: Tuple[int, ...] = x.shape[:-1]
        options = _partials.make_options(x.shape[-1], weight, ignore_index, label_smoothing, z_loss, softcap)
        if options.weight is not None:  # rounded to the compute dtype, as the in-memory functions take them
            options = options._replace(weight=options.weight.astype(self.compute_dtype).astype(np.float64))
        self.options = options
        if not probabilities and t.shape != self.batch_shape:
            raise ValueError(
                f"target has shape {np.shape(target)}; expected class indices of shape {self.caller_batch_shape} "
                f"(input's shape without axis {self.axis}) or probabilities of the input's shape {self.caller_shape}"
            )
        _check_target_kind(t.dtype, probabilities, self.options.ignore_index)
        self.probabilities = probabilities
        self.x = x
        self.target = _chunked_like(t, x.chunks if probabilities else x.chunks[:-1])
        self.labels: Optional[da.Array] = None if probabilities else self.target
        self.mask = None if where is None else _row_mask(where, self.caller_batch_shape).reshape(self.batch_shape)
        if self.mask is not None:
            self.mask = self.mask.rechunk(x.chunks[:-1])
        # The options (the class weights with them) as one key of the graph: sent once to each worker
        # that needs them, not once per task.
        self.options_key: Any = delayed(self.options, pure=True, traverse=False) if weight is not None else self.options

    @property
    def caller_batch_shape(self) -> Tuple[int, ...]:
        return self.caller_shape[: self.axis] + self.caller_shape[self.axis + 1 :]

    @property
    def compute_dtype(self) -> np.dtype:
        """That of per-row losses: float32 for half-precision logits."""
        return np.dtype(np.float32) if _validation.is_half(self.input_dtype) else np.dtype(self.input_dtype)

    def chunk_args(self) -> List[Any]:
        """The targets and row mask as arguments of a map_blocks over the logits' chunks: probabilities as
        they are, labels and mask with a class axis of length 1 (broadcast over the chunks of classes)."""
        args: List[Any] = [self.target if self.probabilities else self.target[..., None]]
        if self.mask is not None:
            args.append(self.mask[..., None])
        return args

    def row_args(self) -> List[Any]:
        """The labels and row mask, those there are, as arguments of a map_blocks over the rows' chunks
        (probability targets are not needed there: the records hold their sums)."""
        return [a for a in (self.labels, self.mask) if a is not None]

    def row_flags(self) -> dict[str, Any]:
        return {"options": self.options_key, "labeled": self.labels is not None, "masked": self.mask is not None}

    def partials(self) -> da.Array:
        """Each chunk's records: rows × (chunks of classes), one record per row and chunk."""
        return da.map_blocks(
            _chunk_partials, self.x, *self.chunk_args(), options=self.options_key,
            probabilities=self.probabilities, chunks=self.x.chunks[:-1] + ((1,) * self.x.numblocks[-1],),
            dtype=_RECORD, meta=np.empty((0,) * self.x.ndim, _RECORD),
        )

    def merged(self, split_every: Optional[int]) -> da.Array:
        """Each row's records merged along the class axis, in a tree fixed by the chunking."""
        ndim = self.x.ndim - 1
        return da.reduction(
            self.partials(), chunk=_as_is, combine=_merge_along, aggregate=_merge_along, axis=-1, keepdims=False,
            dtype=_RECORD, split_every=split_every, concatenate=True, meta=np.empty((0,) * ndim, _RECORD),
        )

    def loss(self, merged: da.Array, return_z_loss: bool) -> Any:
        """The loss as the caller asked: per row (a Dask array) or reduced (a 0-d Dask array)."""
        if self.reduction == "none":
            both = da.map_blocks(
                _chunk_losses, merged, *self.row_args(), **self.row_flags(),
                out_dtype=self.compute_dtype, new_axis=merged.ndim,
                chunks=merged.chunks + ((2,),), dtype=self.compute_dtype,
                meta=np.empty((0,) * (merged.ndim + 1), self.compute_dtype),
            )
            loss, z = (self._caller_rows(both[..., k]) for k in (0, 1))
        else:
            sums = _summed_over_row_chunks(
                _chunk_sums, [merged, *self.row_args()], self.x.chunks[:-1], 6, **self.row_flags()
            )
            loss, z = _reduced_pair(sums, self.reduction, self.options_key)
        return (loss, z) if return_z_loss else loss

    def _caller_rows(self, rows: da.Array) -> da.Array:
        return rows.reshape(()) if self.one_row else rows

    def scales(self) -> Any:
        """The gradient's scales: fixed for ``"sum"`` and ``"none"``; for ``"mean"`` a graph key, from the
        labels and weights alone (no logits), so each chunk's gradient waits only for its own rows."""
        if self.reduction != "mean":
            return _partials.scales_for(self.reduction, _partials.Sums(0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 1.0)
        if not self.row_args():  # probability targets, no mask: every row counts
            rows = float(np.prod(self.batch_shape))
            return _partials.scales_for("mean", _partials.Sums(0.0, 0.0, 0.0, 0.0, rows, rows), 1.0)
        row_chunks = self.x.chunks[:-1]
        counts = _summed_over_row_chunks(_chunk_denominators, self.row_args(), row_chunks, 2, **self.row_flags())
        return delayed(_scales_of)(counts)

    def grad(self, merged: da.Array) -> da.Array:
        """Each chunk's gradient from its rows' merged records, with the logits' chunks and dtype."""
        target, *mask = self.chunk_args()
        g = da.map_blocks(
            _chunk_grad, self.x, target, merged[..., None], *mask, options=self.options_key, scales=self.scales(),
            probabilities=self.probabilities, out_dtype=self.input_dtype, dtype=self.input_dtype,
            meta=np.empty((0,) * self.x.ndim, self.input_dtype),
        )
        if self.one_row:
            g = g[0]
        return da.moveaxis(g, -1, self.axis) if self.axis != g.ndim - 1 else g


def _summed_over_row_chunks(
    func: Callable[..., np.ndarray], arrays: Sequence[da.Array], row_chunks: Tuple[Tuple[int, ...], ...], width: int,
    *, replace_last: bool = False, **kwargs: Any,
) -> da.Array:
    """A map over the chunks of rows (chunked ``row_chunks``) giving ``width`` float64 numbers per chunk, summed
    over the chunks (in a fixed tree) into one ``(width,)`` array. The arrays have the rows' axes, and with
    ``replace_last`` one more, in one chunk, that the numbers replace."""
    nb = len(row_chunks)
    axes = {} if replace_last else {"new_axis": nb}
    per_chunk = da.map_blocks(
        func, *arrays, chunks=tuple((1,) * len(c) for c in row_chunks) + ((width,),), dtype=np.float64,
        meta=np.empty((0,) * (nb + 1), np.float64), **axes, **kwargs,
    )
    return per_chunk.sum(axis=tuple(range(nb)))


def _reduced_pair(sums: da.Array, reduction: str, options: Any) -> Tuple[da.Array, da.Array]:
    """The reduced loss and z-loss term (0-d Dask arrays) from a batch's summed Sums."""
    pair = da.map_blocks(
        _reduced, sums, reduction=reduction, options=options, chunks=((2,),), dtype=np.float64,
        meta=np.empty((0,), np.float64),
    )
    return pair[0], pair[1]


def _logits(input: Any) -> da.Array:
    """The logits as a Dask array of a float dtype the core reads, with known chunk sizes."""
    x = input if isinstance(input, da.Array) else da.asarray(input)
    if not ((x.dtype.kind == "f" and x.dtype.itemsize in (2, 4, 8)) or _validation.is_half(x.dtype)):
        raise TypeError(
            f"input must be a float16, bfloat16, float32 or float64 array, got dtype {x.dtype}; "
            "convert it first, e.g. with x.astype(np.float32)"
        )
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension (the class axis), got a 0-d array")
    if any(np.isnan(n) for n in x.shape):
        raise ValueError("input has chunks of unknown size: call compute_chunk_sizes() on it first")
    return x


def _check_target_kind(dtype: np.dtype, probabilities: bool, ignore_index: int) -> None:
    if not probabilities:
        if dtype.kind not in "iu":
            raise TypeError(
                f"class-index targets must be integers, got dtype {dtype}; probability targets must have the "
                "input's shape"
            )
        return
    if dtype.kind not in "biuf" and not _validation.is_half(dtype):
        raise TypeError(f"probability targets must be real numbers, got dtype {dtype}")
    if ignore_index != _validation.DEFAULT_IGNORE_INDEX:
        raise ValueError("ignore_index is only supported for class-index targets, not probability targets")


def _row_mask(where: Any, batch_shape: Tuple[int, ...]) -> da.Array:
    """``where`` as a boolean Dask array of the per-row loss shape (broadcast)."""
    m = where if isinstance(where, da.Array) else np.asarray(where)
    if m.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array (True: the row counts), got dtype {m.dtype}")
    try:
        return da.broadcast_to(m, batch_shape)
    except ValueError:
        raise ValueError(
            f"where of shape {np.shape(where)} does not broadcast to the per-row loss shape {batch_shape} "
            "(the input's shape without the class axis)"
        ) from None


def _chunked_like(a: Any, chunks: Tuple[Tuple[int, ...], ...]) -> da.Array:
    """``a`` (a Dask or NumPy array) as a Dask array with ``chunks``."""
    if isinstance(a, da.Array):
        return a.rechunk(chunks)
    return da.from_array(a, chunks=chunks)


# ---------------------------------------------------------------------------------------------------------
# The tasks: each takes NumPy chunks and runs the core on one thread.

def _location(block_info: Any) -> Tuple[List[int], int]:
    """Where the chunk of logits (the first array argument) starts: per row axis, and its first class."""
    starts = [start for start, _ in block_info[0]["array-location"]]
    return starts[:-1], starts[-1]


def _row_starts(block_info: Any) -> List[int]:
    """Where a chunk of rows (the first array argument, of the rows' shape) starts, per row axis."""
    return [start for start, _ in block_info[0]["array-location"]]


def _chunk_targets(target: np.ndarray, rows_shape: Tuple[int, ...], dtype: np.dtype, probabilities: bool) -> np.ndarray:
    """A chunk's targets as the core takes them: int64 labels (rows,), or probabilities (rows, width) of
    the logits' compute dtype."""
    if probabilities:
        return np.require(target.reshape(-1, target.shape[-1]), dtype=dtype, requirements=["C", "A"])
    return _validation._labels(target.reshape(rows_shape))


def _row_arrays(
    rows: Sequence[np.ndarray], labeled: bool, masked: bool
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The labels (int64) and row mask (bool) among a row task's arrays, flat."""
    labels = _validation._labels(rows[0].reshape(-1)) if labeled else None
    mask = np.ascontiguousarray(rows[-1].reshape(-1)) if masked else None
    return labels, mask


def _chunk_partials(
    x: np.ndarray, target: np.ndarray, *mask: np.ndarray, options: _partials.Options, probabilities: bool,
    block_info: Any = None,
) -> np.ndarray:
    starts, class_start = _location(block_info)
    rows_shape = x.shape[:-1]
    xs = _partials.compute_float(x).reshape(-1, x.shape[-1])
    t = _chunk_targets(target, rows_shape, xs.dtype, probabilities)
    row_mask = np.ascontiguousarray(mask[0].reshape(-1)) if mask else None
    try:
        with threads(1):
            records = _partials.partials_of(xs, t, class_start, options, row_mask)
    except IndexError as err:
        raise _validation.locate_label_error(err, rows_shape, starts) from None
    return records.reshape(rows_shape + (1,))


def _as_is(records: np.ndarray, axis: Any = None, keepdims: bool = True) -> np.ndarray:
    return records


def _merge_along(records: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The records of a row's chunks (the last axis) merged in their order, left to right."""
    total = np.ascontiguousarray(records[..., 0])
    for k in range(1, records.shape[-1]):
        total = _partials.merged(total, np.ascontiguousarray(records[..., k]))
    return total[..., None] if keepdims else total


def _chunk_losses(
    merged: np.ndarray, *rows: np.ndarray, options: _partials.Options, labeled: bool, masked: bool,
    out_dtype: np.dtype, block_info: Any = None,
) -> np.ndarray:
    labels, mask = _row_arrays(rows, labeled, masked)
    losses = np.empty(merged.size, np.float64)
    z = np.empty(merged.size, np.float64)
    try:
        with threads(1):
            _partials.sums_of(merged.reshape(-1), labels, options, mask, losses, z)
    except IndexError as err:
        raise _validation.locate_label_error(err, merged.shape, _row_starts(block_info)) from None
    return np.stack([losses, z], axis=-1).reshape(merged.shape + (2,)).astype(out_dtype)


def _chunk_sums(
    merged: np.ndarray, *rows: np.ndarray, options: _partials.Options, labeled: bool, masked: bool,
    block_info: Any = None,
) -> np.ndarray:
    labels, mask = _row_arrays(rows, labeled, masked)
    try:
        with threads(1):
            sums = _partials.sums_of(merged.reshape(-1), labels, options, mask)
    except IndexError as err:
        raise _validation.locate_label_error(err, merged.shape, _row_starts(block_info)) from None
    return np.array(sums, dtype=np.float64).reshape((1,) * merged.ndim + (6,))


def _reduced(sums: np.ndarray, reduction: str, options: _partials.Options) -> np.ndarray:
    return np.array(_partials.reduce_sums(_partials.Sums(*map(float, sums)), reduction, options))


def _chunk_denominators(
    *rows: np.ndarray, options: _partials.Options, labeled: bool, masked: bool, block_info: Any = None,
) -> np.ndarray:
    labels, mask = _row_arrays(rows, labeled, masked)
    try:
        with threads(1):
            sums = _partials.denominators(labels, rows[0].size, options, mask)
    except IndexError as err:
        raise _validation.locate_label_error(err, rows[0].shape, _row_starts(block_info)) from None
    return np.array([sums.weight, sums.rows], dtype=np.float64).reshape((1,) * rows[0].ndim + (2,))


def _scales_of(counts: np.ndarray) -> _partials.Scales:
    weight, rows = (float(v) for v in counts)
    return _partials.scales_for("mean", _partials.Sums(0.0, 0.0, 0.0, 0.0, weight, rows), 1.0)


def _chunk_grad(
    x: np.ndarray, target: np.ndarray, merged: np.ndarray, *mask: np.ndarray, options: _partials.Options,
    scales: _partials.Scales, probabilities: bool, out_dtype: np.dtype, block_info: Any = None,
) -> np.ndarray:
    starts, class_start = _location(block_info)
    rows_shape = x.shape[:-1]
    xs = _partials.compute_float(x).reshape(-1, x.shape[-1])
    t = _chunk_targets(target, rows_shape, xs.dtype, probabilities)
    row_mask = np.ascontiguousarray(mask[0].reshape(-1)) if mask else None
    try:
        with threads(1):
            records = np.ascontiguousarray(merged).reshape(-1)
            g = _partials.grad_of(xs, t, records, class_start, options, row_mask, scales)
    except IndexError as err:
        raise _validation.locate_label_error(err, rows_shape, starts) from None
    return g.reshape(x.shape).astype(out_dtype, copy=False)


class _Head(NamedTuple):
    """A linear layer's arrays, checked and in the compute dtype: one key of the graph."""

    weight: np.ndarray  # (V, H)
    bias: Optional[np.ndarray]
    class_weight: Optional[np.ndarray]


def _head_rows(
    h: np.ndarray, t: np.ndarray, mask: Sequence[np.ndarray], ignore_index: int
) -> Tuple[np.ndarray, np.ndarray]:
    """A chunk's hidden states ``(rows, H)`` and labels (int64; ``ignore_index`` where the mask is False, so
    that those rows count for nothing and their labels are not read)."""
    labels = _validation._labels(t.reshape(-1))
    if mask:
        labels = np.where(mask[0].reshape(-1), labels, np.int64(ignore_index))
    return h.reshape(-1, h.shape[-1]), labels


def _linear_sums(
    h: np.ndarray, t: np.ndarray, *mask: np.ndarray, head: _Head, options: Dict[str, Any],
    counting: _partials.Options, apart: bool, block_info: Any = None,
) -> np.ndarray:
    """A chunk of rows' Sums; ``apart``: also the two terms a mean over weights summing to zero divides
    apart (two more passes, taken only when such a mean can happen)."""
    rows_shape = h.shape[:-1]
    x, labels = _head_rows(h, t, mask, counting.ignore_index)
    layer = dict(linear_bias=head.bias, weight=head.class_weight, reduction="sum", **options)
    try:
        with threads(1):
            loss, z = _linear.linear_cross_entropy(x, head.weight, labels, return_z_loss=True, **layer)
            nll = smooth = 0.0
            if apart:
                for a in (0.0, 1.0):
                    part = dict(layer, label_smoothing=a, z_loss=0.0)
                    value = _linear.linear_cross_entropy(x, head.weight, labels, **part)
                    nll, smooth = (value, smooth) if a == 0.0 else (nll, value)
            counts = _partials.denominators(labels, x.shape[0], counting, None)
    except IndexError as err:
        raise _validation.locate_label_error(err, rows_shape, _row_starts(block_info)[:-1]) from None
    sums = [loss - z, z, nll, smooth, counts.weight, counts.rows]
    return np.array(sums, dtype=np.float64).reshape((1,) * len(rows_shape) + (6,))


def _linear_rows(
    h: np.ndarray, t: np.ndarray, *mask: np.ndarray, head: _Head, options: Dict[str, Any], ignore_index: int,
    block_info: Any = None,
) -> np.ndarray:
    """A chunk of rows' losses and z-loss terms, ``rows_shape + (2,)``."""
    rows_shape = h.shape[:-1]
    x, labels = _head_rows(h, t, mask, ignore_index)
    try:
        with threads(1):
            losses, z = _linear.linear_cross_entropy(
                x, head.weight, labels, linear_bias=head.bias, weight=head.class_weight, reduction="none",
                return_z_loss=True, **options,
            )
    except IndexError as err:
        raise _validation.locate_label_error(err, rows_shape, _row_starts(block_info)[:-1]) from None
    return np.stack([losses, z], axis=-1).reshape(rows_shape + (2,))


# ---------------------------------------------------------------------------------------------------------
# The public functions.

_PARAMETERS = """\
    input : dask.array.Array or array_like
        Logits, float16, bfloat16 (computed in float32), float32 or float64, chunked in any way along
        any axis (rows, classes or both). A NumPy array becomes one chunk.
    target : dask.array.Array or array_like
        Class indices of ``input``'s shape without ``axis`` (integers), or probabilities of ``input``'s
        shape; rechunked to ``input``'s rows (and classes) when their chunks differ.
    axis : int, default -1
        The class axis.
    weight, ignore_index, reduction, label_smoothing, z_loss, softcap
        As in :func:`xentcpp.cross_entropy`.
    where : dask.array.Array or array_like of bool, optional
        A row mask, broadcastable to the per-row loss shape, as in :func:`xentcpp.cross_entropy`.
    return_z_loss : bool, default False
        Also return the z-loss term on its own (reduced like the loss).
    split_every : int, optional
        How many chunks of classes each merge task takes (Dask's reduction fan-in, 4 by default). Any value
        gives the loss to rounding; a given one gives the same bits on every run."""


def cross_entropy(
    input: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Optional[Any] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[Any] = None,
    return_z_loss: bool = False,
    split_every: Optional[int] = None,
) -> Any:
    """Softmax cross-entropy of Dask arrays, lazily, as :func:`xentcpp.cross_entropy` of the whole array.

    Each chunk of logits is read once: its per-row partial statistics are merged along the class axis in
    a tree fixed by the chunking, then give each row's loss; nothing of the size of the logits is ever
    held but the chunks themselves, so the logits may be far larger than any machine's memory.

    Parameters
    ----------
{parameters}

    Returns
    -------
    dask.array.Array
        A 0-d array for ``"sum"`` and ``"mean"`` (float64); for ``"none"`` one loss per row, of ``input``'s
        shape without ``axis``, in the compute dtype (float32 for half precision), chunked as the rows.
        With ``return_z_loss=True``, a pair ``(loss, z_loss)``. ``.compute()`` (or ``dask.compute`` of
        several at once) runs them on the current scheduler.

    Raises
    ------
    TypeError, ValueError
        As :func:`xentcpp.cross_entropy`, when the graph is built.
    IndexError
        A class index outside ``[0, C)`` that is not ``ignore_index``, when the graph runs: the message
        names the row in ``target``'s indexing.

    Examples
    --------
    >>> import dask.array as da, numpy as np, xentcpp as xc, xentcpp.dask
    >>> x = da.from_array(np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]), chunks=(1, 2))
    >>> loss = xentcpp.dask.cross_entropy(x, np.array([0, 1]))
    >>> float(loss.compute())
    0.3185
    >>> xentcpp.dask.cross_entropy(x, np.array([0, 1]), reduction="none").compute()
    array([0.41703, 0.22005])
    """
    graph = _Graph(
        input, target, axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap, where=where,
    )
    return graph.loss(graph.merged(split_every), bool(return_z_loss))


def cross_entropy_value_and_grad(
    input: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Optional[Any] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[Any] = None,
    return_z_loss: bool = False,
    split_every: Optional[int] = None,
) -> Tuple[Any, da.Array]:
    """:func:`cross_entropy` and its gradient, lazily, as :func:`xentcpp.cross_entropy_value_and_grad`.

    The gradient of each chunk needs only that chunk and its rows' merged statistics (and, for
    ``"mean"``, the denominator, from the targets alone), so it can run as soon as its rows are merged;
    the logits are read twice (once for the statistics, once for the gradient). Computing the loss and
    the gradient together (``dask.compute(loss, grad)``) shares the statistics.

    Parameters
    ----------
{parameters}

    Returns
    -------
    loss : dask.array.Array, or a pair of them
        As :func:`cross_entropy`.
    grad : dask.array.Array
        The gradient of the loss (``"none"``: of each row's own loss), of ``input``'s shape, chunks and
        dtype.

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`cross_entropy`.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np, xentcpp.dask
    >>> x = da.zeros((1, 4), chunks=(1, 2))
    >>> loss, grad = xentcpp.dask.cross_entropy_value_and_grad(x, np.array([3]))
    >>> dask.compute(loss, grad)
    (np.float64(1.3863), array([[ 0.25,  0.25,  0.25, -0.75]]))
    """
    graph = _Graph(
        input, target, axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap, where=where,
    )
    merged = graph.merged(split_every)
    return graph.loss(merged, bool(return_z_loss)), graph.grad(merged)


def linear_cross_entropy(
    input: Any,
    linear_weight: Any,
    target: Any,
    *,
    linear_bias: Optional[Any] = None,
    weight: Optional[Any] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[Any] = None,
    return_z_loss: bool = False,
    chunk_size: Optional[int] = None,
) -> Any:
    """The cross-entropy of a linear layer's output over a Dask array of its inputs, lazily, as
    :func:`xentcpp.linear_cross_entropy`: no logits anywhere.

    Each chunk of rows of ``input`` (hidden states) is one task, :func:`xentcpp.linear_cross_entropy`
    with ``reduction="sum"`` (or ``"none"``), which makes the chunk's logits a few rows at a time in a
    workspace of its own; the sums of the chunks are added in a tree fixed by the chunking and divided
    by the mean's denominator (from the labels). The layer's arrays are one key of the graph, sent once
    to each worker that runs a chunk. Evaluating a language model's output layer over a corpus this way
    never makes its ``(tokens, V)`` logits, in any process.

    Parameters
    ----------
    input : dask.array.Array or array_like
        The layer's input, ``(..., H)``: float16, bfloat16, float32 or float64, chunked in any way along
        its rows (the ``H`` axis is taken whole).
    linear_weight : array_like of shape (V, H)
        The layer's weight, as :func:`xentcpp.linear_cross_entropy` takes it (a NumPy array).
    target : dask.array.Array or array_like of int
        Class indices of ``input``'s shape without its last axis; rechunked to ``input``'s rows.
    linear_bias, weight, ignore_index, reduction, label_smoothing, z_loss, softcap, chunk_size
        As in :func:`xentcpp.linear_cross_entropy` (``chunk_size``: rows per workspace, within each chunk).
    where : dask.array.Array or array_like of bool, optional
        A row mask, broadcastable to the per-row loss shape: rows where it is False count for nothing (as
        ``where=`` of :func:`xentcpp.cross_entropy`).
    return_z_loss : bool, default False
        Also return the z-loss term on its own (reduced like the loss).

    Returns
    -------
    dask.array.Array
        A 0-d array for ``"sum"`` and ``"mean"`` (float64); for ``"none"`` one loss per row, in the
        compute dtype, chunked as the rows. With ``return_z_loss=True``, a pair ``(loss, z_loss)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`xentcpp.linear_cross_entropy`, when the graph is built.
    IndexError
        A class index outside ``[0, V)`` that is not ``ignore_index``, when the graph runs, naming its row.

    Examples
    --------
    >>> import dask.array as da, numpy as np, xentcpp as xc, xentcpp.dask
    >>> h = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> w = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> loss = xentcpp.dask.linear_cross_entropy(da.from_array(h, chunks=2), w, np.array([0, 1, 2]))
    >>> float(loss.compute()), xc.linear_cross_entropy(h, w, [0, 1, 2])
    (0.8460, 0.8460)
    """
    hidden = _logits(input)  # the same checks as logits: a float Dask array with known chunks
    if hidden.shape[-1] == 0:
        raise ValueError(f"input has no features: its last axis is empty (shape {hidden.shape})")
    check = _linear.prepare(
        np.empty((0, hidden.shape[-1]), hidden.dtype), linear_weight, np.empty(0, np.int64), linear_bias=linear_bias,
        weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
        z_loss=z_loss, softcap=softcap, chunk_size=chunk_size,
    )
    classes = check.weight.shape[0]
    head = _Head(check.weight, check.bias, check.options["class_weight"])
    counting = _partials.make_options(classes, head.class_weight, ignore_index, label_smoothing, z_loss, softcap)
    options = dict(ignore_index=counting.ignore_index, label_smoothing=counting.label_smoothing, z_loss=counting.z_loss,
                   softcap=softcap, chunk_size=chunk_size)
    one_row = hidden.ndim == 1
    h = (hidden[None] if one_row else hidden).rechunk({-1: -1})
    batch_shape = h.shape[:-1]
    t = target if isinstance(target, da.Array) else np.asarray(target)
    if t.shape != hidden.shape[:-1]:
        raise ValueError(f"target has shape {t.shape}; expected class indices of shape {hidden.shape[:-1]} (input's "
                         "shape without its last axis)")
    _check_target_kind(t.dtype, False, counting.ignore_index)
    labels = _chunked_like(t.reshape(batch_shape), h.chunks[:-1])[..., None]
    masks = [] if where is None else [
        _row_mask(where, hidden.shape[:-1]).reshape(batch_shape).rechunk(h.chunks[:-1])[..., None]
    ]
    head_key = delayed(head, pure=True, traverse=False)
    if reduction == "none":
        both = da.map_blocks(
            _linear_rows, h, labels, *masks, head=head_key, options=options, ignore_index=counting.ignore_index,
            chunks=h.chunks[:-1] + ((2,),), dtype=check.dtype, meta=np.empty((0,) * h.ndim, check.dtype),
        )
        loss, z = (both[0, k] if one_row else both[..., k] for k in (0, 1))
    else:
        apart = reduction == "mean" and counting.label_smoothing != 0.0 and (
            counting.weight is not None and bool((counting.weight <= 0).any())
        )
        sums = _summed_over_row_chunks(
            _linear_sums, [h, labels, *masks], h.chunks[:-1], 6, replace_last=True, head=head_key, options=options,
            counting=counting, apart=apart,
        )
        loss, z = _reduced_pair(sums, reduction, counting)
    return (loss, z) if return_z_loss else loss


for _function in (cross_entropy, cross_entropy_value_and_grad):
    _function.__doc__ = (_function.__doc__ or "").format(parameters=_PARAMETERS)
