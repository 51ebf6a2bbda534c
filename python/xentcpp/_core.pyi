"""Type stub for the C++ extension xentcpp._core (private: use the functions of xentcpp)."""

from typing import Optional, Union

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
