"""xentcpp: fast, exact softmax cross-entropy (loss and gradient) for NumPy arrays.

The loss is ``logsumexp(x) - x[y]`` computed with the row maximum subtracted, in C++ kernels that
read NumPy arrays without copying them and release the GIL.
"""

# The BLAS that _core links (scipy-openblas32's libscipy_openblas): importing the package loads it, so
# that the extension, imported next, finds it already in the process (SciPy's own way of loading it).
import scipy_openblas32  # type: ignore[import-untyped]  # noqa: F401  # isort: skip

from ._binary import binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad
from ._buffer_cache import empty_cache, set_cache_limit
from ._config import __version__, get_num_threads, set_num_threads, show_config, threads
from ._core import simd_target
from ._cross_entropy import cross_entropy, cross_entropy_grad, cross_entropy_value_and_grad
from ._information import entropy, kl_div
from ._linear import linear_cross_entropy, linear_cross_entropy_value_and_grad
from ._nll import nll_loss, nll_loss_grad
from ._partials import (
    cross_entropy_from_partials,
    cross_entropy_grad_from_partials,
    cross_entropy_partials,
    merge_partials,
)
from ._softmax import log_softmax, logsumexp, softmax

__all__ = [
    "__version__",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "cross_entropy",
    "cross_entropy_from_partials",
    "cross_entropy_grad",
    "cross_entropy_grad_from_partials",
    "cross_entropy_partials",
    "cross_entropy_value_and_grad",
    "empty_cache",
    "entropy",
    "get_num_threads",
    "kl_div",
    "linear_cross_entropy",
    "linear_cross_entropy_value_and_grad",
    "log_softmax",
    "logsumexp",
    "merge_partials",
    "nll_loss",
    "nll_loss_grad",
    "set_cache_limit",
    "set_num_threads",
    "show_config",
    "simd_target",
    "softmax",
    "threads",
]

simd_target()  # fail at import, not at the first call, when XENTCPP_SIMD names no runnable target
