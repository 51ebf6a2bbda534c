"""What this build of xentcpp is and runs on (``show_config``, ``__version__``), and its thread count.

Threads: the kernels run on OpenMP, whose thread count is a per-thread setting (the ``nthreads-var``
internal control variable). ``set_num_threads``, ``threads`` and ``threadpoolctl.threadpool_limits``
all set it for calls made from the *calling* Python thread; other threads keep the process default
(``OMP_NUM_THREADS``, else one thread per processor). Results are bitwise identical whatever the count.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from . import _core

__all__ = ["__version__", "get_num_threads", "set_num_threads", "show_config", "threads"]

_TARGETS = ("avx512", "avx2", "baseline")
# _OPENMP (the specification's date, yyyymm) -> its version number.
_OPENMP_VERSIONS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5", 201811: "5.0",
                    202011: "5.1", 202111: "5.2", 202411: "6.0"}


def _version() -> str:
    """The installed distribution's version when this file belongs to it, else the version compiled into
    ``_core`` (a build imported from a source or build tree, where the metadata may be another copy's)."""
    try:
        dist = metadata.distribution("xentcpp")
        installed = Path(str(dist.locate_file("xentcpp/__init__.py"))).resolve()
        if installed == Path(__file__).parent.resolve() / "__init__.py":
            return dist.version
    except metadata.PackageNotFoundError:
        pass
    return _core.__version__


__version__ = _version()


def get_num_threads() -> int:
    """The number of threads a call from this Python thread may use.

    Returns
    -------
    int
        OpenMP's ``omp_get_max_threads()`` for the calling thread (1 in a build without OpenMP).
        Calls below 65 536 elements use one thread whatever it says.

    Examples
    --------
    >>> import xentcpp as xc
    >>> xc.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Sets the number of threads for calls made from this Python thread.

    OpenMP keeps the count per thread, so other Python threads are not affected; this is what
    ``threadpoolctl.threadpool_limits`` sets too. Results do not depend on it.

    Parameters
    ----------
    n : int
        At least 1. In a build without OpenMP every call runs on one thread and ``n`` is only checked.

    Raises
    ------
    TypeError
        ``n`` is not an integer.
    ValueError
        ``n`` is less than 1.

    Examples
    --------
    >>> import xentcpp as xc
    >>> previous = xc.get_num_threads()
    >>> xc.set_num_threads(1)
    >>> xc.get_num_threads()
    1
    >>> xc.set_num_threads(previous)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"the number of threads must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    _core.set_num_threads(min(int(n), 2**31 - 1))


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Within the ``with`` block, calls from this Python thread use ``n`` threads; the previous count is
    restored on exit, also on an exception.

    Parameters
    ----------
    n : int
        As :func:`set_num_threads`.

    Examples
    --------
    >>> import xentcpp as xc
    >>> with xc.threads(1):
    ...     xc.get_num_threads()
    1
    """
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        _core.set_num_threads(previous)


def _info() -> dict[str, Any]:
    forced = os.environ.get("XENTCPP_SIMD") or None
    return {
        "xentcpp": {"version": __version__, "location": str(Path(__file__).parent)},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "platform": sys.platform, "machine": platform.machine()},
        "numpy": {"version": np.__version__},
        "compiler": {"name": _core.compiler(), "standard": "C++17"},
        "simd": {
            "in_use": _core.simd_target(),
            "forced_by_XENTCPP_SIMD": forced,
            "compiled": [t for t in _TARGETS if _core.simd_target_compiled(t)],
            "cpu_supports": [t for t in _TARGETS if _core.simd_target_supported(t)],
        },
        "openmp": _core.openmp(),
        "blas": _core.blas(),
        "memory": {"cache_limit": _core.cache_limit(), "cached_bytes": _core.cached_bytes()},
    }


def _format(info: dict[str, Any]) -> str:
    simd, omp = info["simd"], info["openmp"]
    forced = f" (forced by XENTCPP_SIMD={simd['forced_by_XENTCPP_SIMD']})" if simd["forced_by_XENTCPP_SIMD"] else ""
    if omp["enabled"]:
        version = f"{_OPENMP_VERSIONS.get(omp['version'], '?')} ({omp['version']})"
        threads_line = (f"OpenMP {version}, {omp['library'] or 'runtime file unknown'}; "
                        f"{omp['max_threads']} threads for calls from this thread, {omp['processors']} processors")
    else:
        threads_line = "no OpenMP: one thread"
    blas = info["blas"]
    blas_line = (f"{blas['config']}, {blas['library'] or 'library file unknown'}; {blas['threads']} threads "
                 "for other callers (linear_cross_entropy: one per GEMM tile, on xentcpp's threads)")
    rows = [
        ("python", f"{info['python']['version']} ({info['python']['implementation']}, "
                   f"{info['python']['platform']}, {info['python']['machine']})"),
        ("numpy", info["numpy"]["version"]),
        ("compiler", f"{info['compiler']['name']}, {info['compiler']['standard']}"),
        ("simd in use", simd["in_use"] + forced),
        ("simd compiled", ", ".join(simd["compiled"])),
        ("simd this CPU", ", ".join(simd["cpu_supports"])),
        ("threads", threads_line),
        ("blas", blas_line),
        ("buffer cache", f"{info['memory']['cached_bytes'] / 2**20:g} MiB kept, "
                         f"limit {info['memory']['cache_limit'] / 2**20:g} MiB (xentcpp.empty_cache)"),
        ("location", info["xentcpp"]["location"]),
    ]
    return "\n".join([f"xentcpp {info['xentcpp']['version']}"] + [f"  {k:<14}{v}" for k, v in rows])


@overload
def show_config(mode: Literal["stdout"] = ...) -> None: ...
@overload
def show_config(mode: Literal["dicts"]) -> dict[str, Any]: ...


def show_config(mode: str = "stdout") -> dict[str, Any] | None:
    """Prints (or returns) what this build is and runs on: versions, compiler, SIMD targets (compiled,
    runnable here, in use), the OpenMP runtime with its thread count, the BLAS of
    :func:`linear_cross_entropy` with its own thread count, and the buffer kept for reuse, as
    ``numpy.show_config``.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default "stdout"
        ``"stdout"`` prints a summary; ``"dicts"`` returns it as nested dicts instead.

    Returns
    -------
    dict or None
        With ``mode="dicts"``: keys ``xentcpp``, ``python``, ``numpy``, ``compiler``, ``simd``, ``openmp``,
        ``blas`` (``name``, ``config``, ``core``, ``library``, ``threads``) and ``memory`` (the buffer kept
        for reuse: ``cache_limit`` and ``cached_bytes``).

    Raises
    ------
    ValueError
        An unknown ``mode``.

    Examples
    --------
    >>> import xentcpp as xc
    >>> info = xc.show_config("dicts")
    >>> info["simd"]["in_use"] == xc.simd_target()
    True
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    info = _info()
    if mode == "dicts":
        return info
    print(_format(info))
    return None
