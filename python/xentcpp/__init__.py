"""xentcpp: fast, exact softmax cross-entropy (loss and gradient) for NumPy arrays.

The loss is ``logsumexp(x) - x[y]`` computed with the row maximum subtracted, in C++ kernels that
read NumPy arrays without copying them and release the GIL.
"""

from ._config import __version__, get_num_threads, set_num_threads, show_config, threads
from ._core import simd_target
from ._cross_entropy import cross_entropy, cross_entropy_grad, cross_entropy_value_and_grad

__all__ = ["__version__", "cross_entropy", "cross_entropy_grad", "cross_entropy_value_and_grad", "simd_target"]
__all__ += ["get_num_threads", "set_num_threads", "show_config", "threads"]

simd_target()  # fail at import, not at the first call, when XENTCPP_SIMD names no runnable target
