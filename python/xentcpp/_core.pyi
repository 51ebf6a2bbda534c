"""Type stub for the C++ extension xentcpp._core (private: use the functions of xentcpp)."""

from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Float = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]

def cross_entropy(
    input: _Float,
    target: Union[npt.NDArray[np.int64], _Float],
    *,
    weight: Optional[_Float] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    from_logits: bool = True,
    epsilon: float = 1e-7,
    row_losses: Optional[_Float] = None,
    grad: Optional[_Float] = None,
    grad_output: float = 1.0,
    grad_output_rows: Optional[_Float] = None,
) -> float:
    """Loss (returned), per-row losses (into ``row_losses``) and gradient (into ``grad``) of C-contiguous
    ``(rows, classes)`` input; every array of the input's dtype, labels int64. Errors: ValueError for
    sizes and options, IndexError for a label out of range."""

def simd_target() -> str:
    """The SIMD target the kernels run on: 'avx512', 'avx2' or 'baseline'."""

def simd_target_supported(name: str) -> bool:
    """Whether this build and CPU can run the named SIMD target."""

def fast(
    input: object, target: object, want: int, reduction: object, ignore_index: object, label_smoothing: object,
    grad_output: float,
    out: object = None,
) -> Optional[object]:
    """The common call checked in C++: want 0 = loss, 1 = gradient, 2 = (loss, gradient); None when the
    arguments are not a 2-D C-contiguous float32/float64 input with C-contiguous int64 labels, a known
    reduction, an int ignore_index, a float label_smoothing in [0, 1], and an out that is None, the
    input, or a writeable C-contiguous array of its shape and dtype overlapping no argument."""

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
