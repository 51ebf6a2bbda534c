"""Type stub for the C++ extension xentcpp._core (private: use the functions of xentcpp)."""

from typing import Optional, Tuple, Union

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
) -> Tuple[float, float]:
    """Totals ``(loss, z_loss)`` (returned), per-row losses and z-losses (into ``row_losses`` and
    ``row_z_losses``) and gradient (into ``grad``) of C-contiguous ``(rows, classes)`` input of float16,
    bfloat16, float32 or float64. Probability targets and ``grad`` have the input's dtype; ``weight``,
    per-row buffers and ``grad_output_rows`` the compute dtype (float32 for half precision); labels
    int64. ``softcap`` 0 means none. Errors: ValueError for dtypes, sizes and options, IndexError for a
    label out of range."""

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
