"""The buffer kept for reuse: large results get their buffer back from the cache only once every array
on it has died, the values never depend on what the buffer held before, and the limit holds."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from reference import ref_grad

import xentcpp as xc
from xentcpp import _core

ROWS, CLASSES = 1024, 1030  # 4.02 MiB of float32: above the 4 MiB where results are cached


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts and ends with nothing kept and the default limit."""
    xc.empty_cache()
    limit = _core.cache_limit()
    yield
    xc.set_cache_limit(limit)
    xc.empty_cache()


def problem(rng, scale=1.0):
    x = (scale * rng.standard_normal((ROWS, CLASSES))).astype(np.float32)
    return x, rng.integers(0, CLASSES, ROWS)


def address(a):
    return a.__array_interface__["data"][0]


def test_a_dead_gradient_buffer_is_reused_and_fully_overwritten(rng):
    x1, y1 = problem(rng, scale=30.0)
    x2, y2 = problem(rng)
    first = xc.cross_entropy_grad(x1, y1)
    where = address(first)
    assert where % (2 << 20) == 0 and first.flags.c_contiguous and first.flags.writeable
    del first
    assert _core.cached_bytes() >= ROWS * CLASSES * 4
    second = xc.cross_entropy_grad(x2, y2)
    assert address(second) == where and _core.cached_bytes() == 0
    np.testing.assert_allclose(second, ref_grad(x2.astype(np.float64), y2), rtol=1e-5, atol=1e-9)
    previous = xc.set_cache_limit(0)
    assert previous == 1 << 30
    np.testing.assert_array_equal(second, xc.cross_entropy_grad(x2, y2))  # a fresh buffer, same bits


def test_a_live_array_or_view_keeps_its_buffer(rng):
    x, y = problem(rng)
    first = xc.cross_entropy_grad(x, y)
    kept = first.copy()
    view = first[::3]
    del first
    assert _core.cached_bytes() == 0  # the view still holds it
    second = xc.cross_entropy_value_and_grad(2 * x, y)[1]
    assert address(second) != address(view.base)
    np.testing.assert_array_equal(view, kept[::3])
    del view
    assert _core.cached_bytes() > 0


def test_every_large_result_comes_from_the_cache(rng):
    x, y = problem(rng)
    results = {
        "cross_entropy_grad": lambda: xc.cross_entropy_grad(x, y),
        "value_and_grad": lambda: xc.cross_entropy_value_and_grad(x, y)[1],
        "value_and_grad, class axis 0": lambda: xc.cross_entropy_value_and_grad(x.T.copy(), y, axis=0)[1],
        "nll_loss_grad": lambda: xc.nll_loss_grad(x, y),
        "softmax": lambda: xc.softmax(x),
        "log_softmax": lambda: xc.log_softmax(x),
        "binary losses": lambda: xc.binary_cross_entropy_with_logits(x, x > 0, reduction="none"),
        "binary gradient": lambda: xc.binary_cross_entropy_with_logits_grad(x, x > 0),
    }
    for name, call in results.items():
        xc.empty_cache()
        where = address(call())  # the result dies at once
        assert _core.cached_bytes() > 0, name
        assert address(call()) == where, name


def test_small_results_are_numpys(rng):
    x, y = problem(rng)
    small = xc.cross_entropy_grad(x[:8], y[:8])
    del small
    assert _core.cached_bytes() == 0


def test_a_result_of_another_size_frees_the_kept_buffer(rng):
    x, y = problem(rng)
    double = np.concatenate([x, x])
    g = xc.cross_entropy_grad(double, np.concatenate([y, y]))
    del g
    kept = _core.cached_bytes()
    assert kept >= double.nbytes
    g = xc.cross_entropy_grad(x, y)
    assert _core.cached_bytes() == 0  # at most one buffer beyond the live arrays
    del g
    assert 0 < _core.cached_bytes() < kept


def test_the_limit_and_empty_cache(rng):
    x, y = problem(rng)
    xc.cross_entropy_grad(x, y)  # the result dies at once
    kept = _core.cached_bytes()
    assert xc.show_config("dicts")["memory"] == {"cache_limit": 1 << 30, "cached_bytes": kept}
    assert xc.empty_cache() == kept > 0 and xc.empty_cache() == 0
    xc.set_cache_limit(kept - 1)
    xc.cross_entropy_grad(x, y)
    assert _core.cached_bytes() == 0
    xc.set_cache_limit(kept)
    xc.cross_entropy_grad(x, y)
    assert _core.cached_bytes() == kept
    assert xc.set_cache_limit(kept - 1) == kept and _core.cached_bytes() == 0  # lowering it frees


@pytest.mark.parametrize("bad, error, match", [
    (-1, ValueError, "at least 0"), (1.5, TypeError, "int"), (True, TypeError, "int"), ("1", TypeError, "int"),
])
def test_a_bad_limit_is_refused(bad, error, match):
    limit = _core.cache_limit()
    with pytest.raises(error, match=match):
        xc.set_cache_limit(bad)
    assert _core.cache_limit() == limit


def test_tracemalloc_sees_a_cached_result(rng):
    x, y = problem(rng)
    tracemalloc.start()
    try:
        g = xc.cross_entropy_grad(x, y)
        traced, _ = tracemalloc.get_traced_memory()
        del g
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert traced - after >= x.nbytes
