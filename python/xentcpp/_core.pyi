"""Type stub for the C++ extension xentcpp._core (private: use the functions of xentcpp)."""

import enum
from typing import Any, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Float = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]
# float16, or ml_dtypes' bfloat16 (whose scalar type NumPy's stubs do not know).
_Storage = Union[_Float, npt.NDArray[np.float16], npt.NDArray[np.generic]]

def cross_entropy(
    input: _Storage,
    target: Union[npt.NDArray[np.int64], _Storage],
    *,
    weight: Optional[_Float] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    from_logits: bool = True,
    epsilon: float = 1e-7,
    z_loss: float = 0.0,
    softcap: float = 0.0,
    row_losses: Optional[_Float] = None,
    row_z_losses: Optional[_Float] = None,
    grad: Optional[_Storage] = None,
    grad_output: float = 1.0,
    grad_output_rows: Optional[_Float] = None,
    row_mask: Optional[npt.NDArray[np.bool_]] = None,
) -> Tuple[float, float]:
    """Totals ``(loss, z_loss)`` (returned), per-row losses and z-losses (into ``row_losses`` and
    ``row_z_losses``) and gradient (into ``grad``) of C-contiguous ``(rows, classes)`` input of float16,
    bfloat16, float32 or float64. Probability targets and ``grad`` have the input's dtype; ``weight``,
    per-row buffers and ``grad_output_rows`` the compute dtype (float32 for half precision); labels
    int64; ``row_mask`` one bool per row (False: the row counts for nothing). ``softcap`` 0 means none.
    Errors: ValueError for dtypes, sizes and options, IndexError for a label out of range."""

def simd_target() -> str:
    """The SIMD target the kernels run on: 'avx512', 'avx2' or 'baseline'."""

def simd_target_supported(name: str) -> bool:
    """Whether this build and CPU can run the named SIMD target."""

class Want(enum.Enum):
    """What :func:`fast` returns."""

    loss = 0
    grad = 1
    value_and_grad = 2

def fast(
    input: object, target: object, want: Want, reduction: object, ignore_index: object, label_smoothing: object,
    grad_output: float,
    out: object = None,
) -> Optional[object]:
    """The common call checked in C++: the loss, the gradient, or (loss, gradient); None when the
    arguments are not a 2-D C-contiguous float32/float64 input with C-contiguous int64 labels, a known
    reduction, an int ignore_index, a float label_smoothing in [0, 1], and an out that is None, the
    input, or a writeable C-contiguous array of its shape and dtype overlapping no argument."""

# The benchmark's roofline: passes over memory with the kernels' threads and no arithmetic.
def read_probe(data: npt.NDArray[Any]) -> int:
    """The bitwise OR of every byte of a C-contiguous array (ValueError if it is not)."""

def copy_probe(dst: npt.NDArray[Any], src: npt.NDArray[Any]) -> None:
    """Copies src's bytes into dst: both C-contiguous, same size, not overlapping, dst writeable (else ValueError)."""

# Result arrays and the buffer kept for reuse (csrc/python/buffer_cache.cpp; public in xentcpp._buffer_cache).
def empty(dtype: npt.DTypeLike, shape: Tuple[int, ...]) -> npt.NDArray[Any]:
    """A new uninitialised C-contiguous array; from 4 MiB on, its buffer is kept for reuse when it dies."""

def empty_cache() -> int:
    """Frees the idle buffer kept for reuse; returns its size in bytes (0 when there was none)."""

def set_cache_limit(limit: int) -> int:
    """Sets the largest buffer kept for reuse, in bytes (0: none); returns the previous limit."""

def cache_limit() -> int:
    """The largest buffer kept for reuse, in bytes."""

def cached_bytes() -> int:
    """The size of the idle buffer kept for reuse, in bytes."""

# Build and runtime facts and the thread count (csrc/python/config.cpp; public in xentcpp._config).
def compiler() -> str:
    """The compiler that built the extension, with its version."""

def openmp() -> dict[str, Any]:
    """enabled, version (yyyymm), library (the runtime's file or None), max_threads, processors."""

def get_num_threads() -> int:
    """omp_get_max_threads() of the calling thread (1 without OpenMP)."""

def set_num_threads(n: int) -> None:
    """omp_set_num_threads(n) for the calling thread; n >= 1, checked by the caller."""

def simd_target_compiled(name: str) -> bool:
    """Whether this build includes the named SIMD target."""

class SoftmaxOp(enum.Enum):
    """Which of the softmax family :func:`softmax_family` computes."""

    logsumexp = 0
    softmax = 1
    log_softmax = 2

def softmax_family(
    input: _Float, outer: int, classes: int, inner: int, op: SoftmaxOp, out: _Float
) -> None:
    """logsumexp, softmax or log_softmax (op) of a C-contiguous (outer, classes, inner) block into out."""

def nll_loss(
    log_probs: _Float,
    labels: npt.NDArray[np.int64],
    *,
    weight: Optional[_Float] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    row_losses: Optional[_Float] = None,
    grad: Optional[_Float] = None,
    grad_output: float = 1.0,
    grad_output_rows: Optional[_Float] = None,
) -> float:
    """PyTorch's NLL of (rows, classes) log-probabilities: the reduced loss; per-row losses and gradient when asked."""

def bce_with_logits(
    input: _Float,
    target: _Float,
    *,
    weight: Optional[_Float] = None,
    class_weight: Optional[_Float] = None,
    pos_weight: Optional[_Float] = None,
    reduction: str = "mean",
    losses: Optional[_Float] = None,
    grad: Optional[_Float] = None,
    grad_output: float = 1.0,
    grad_output_elements: Optional[_Float] = None,
) -> float:
    """Binary cross-entropy with logits of (rows, classes) arrays; per-element losses and gradient when asked."""

def information(p: _Float, q: Optional[_Float] = None, *, out: _Float) -> None:
    """Per-row entropy of p (q None) or KL(p || q), in nats, into out."""

# Cross-entropy from blocks of classes (csrc/python/partials.cpp; public in xentcpp._partials).
partial_dtype: np.dtype[np.void]

def row_partials(
    input: _Float,
    target: Union[npt.NDArray[np.int64], _Float],
    *,
    class_start: int,
    classes: int,
    weight: Optional[_Float] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    softcap: float = 0.0,
    row_mask: Optional[npt.NDArray[np.bool_]] = None,
    out: npt.NDArray[np.void],
) -> None:
    """One record per row of a (rows, width) block of classes [class_start, class_start + width) into out."""

def merge_partials(a: npt.NDArray[np.void], b: npt.NDArray[np.void], out: npt.NDArray[np.void]) -> None:
    """out = the merge of the records a and b, row by row (out may be a or b)."""

def loss_from_partials(
    partials: npt.NDArray[np.void],
    labels: Optional[npt.NDArray[np.int64]] = None,
    *,
    classes: int,
    weight: Optional[npt.NDArray[np.float64]] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    row_mask: Optional[npt.NDArray[np.bool_]] = None,
    row_losses: Optional[npt.NDArray[np.float64]] = None,
    row_z_losses: Optional[npt.NDArray[np.float64]] = None,
) -> Tuple[float, float, float, float, float, float]:
    """The sums (loss, z_loss, nll, smooth, weight, rows) of merged records; per-row losses when asked."""

def count_targets(
    labels: npt.NDArray[np.int64],
    *,
    classes: int,
    weight: Optional[npt.NDArray[np.float64]] = None,
    ignore_index: int = -100,
    row_mask: Optional[npt.NDArray[np.bool_]] = None,
) -> Tuple[float, float]:
    """The mean's denominators (summed w[y], counted rows) of class-index targets; IndexError for a bad label."""

def grad_from_partials(
    input: _Float,
    target: Union[npt.NDArray[np.int64], _Float],
    partials: npt.NDArray[np.void],
    *,
    class_start: int,
    classes: int,
    weight: Optional[_Float] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float = 0.0,
    row_mask: Optional[npt.NDArray[np.bool_]] = None,
    scale: float = 1.0,
    z_scale: float = 1.0,
    scale_rows: Optional[npt.NDArray[np.float64]] = None,
    zero_weight_mean: bool = False,
    grad: _Float,
) -> None:
    """The gradient of a block from the rows' merged records, into grad."""

# linear_cross_entropy (csrc/python/linear.cpp; public in xentcpp._linear).
def linear_cross_entropy(
    input: _Float,
    weight: _Float,
    labels: npt.NDArray[np.int64],
    *,
    bias: Optional[_Float] = None,
    class_weight: Optional[_Float] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    z_loss: float = 0.0,
    softcap: float = 0.0,
    chunk_rows: int = 0,
    workspace_bytes: int = ...,
    filter_eps: float = 0.0,
    row_losses: Optional[_Float] = None,
    row_z_losses: Optional[_Float] = None,
    d_input: Optional[_Float] = None,
    d_weight: Optional[_Float] = None,
    d_bias: Optional[_Float] = None,
    grad_output: float = 1.0,
    grad_output_rows: Optional[_Float] = None,
) -> Tuple[float, float]:
    """Totals ``(loss, z_loss)`` of the cross-entropy of ``input @ weight.T + bias`` (C-contiguous, all of one
    dtype, float32 or float64; labels int64), per-row losses and z-losses into the buffers given, and the
    gradients into those of ``d_input``, ``d_weight`` and ``d_bias`` given. ``chunk_rows`` 0: from
    ``workspace_bytes``. Errors: ValueError for dtypes, sizes and options, IndexError for a label out of range."""

def linear_chunk_rows(
    rows: int, classes: int, element_bytes: int, chunk_rows: int = 0, workspace_bytes: int = ...
) -> int:
    """The rows of linear_cross_entropy's chunks for this shape and these settings."""

def blas() -> dict[str, Any]:
    """The BLAS of linear_cross_entropy: name, config, core, library (its file or None), threads."""
