"""xentcpp._core's memory probes, the benchmark's roofline: values, and the arrays they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from xentcpp import _core


@pytest.mark.parametrize("nbytes", [0, 1, 63, 4096 + 5, (1 << 20) + 3, 3 << 20])
def test_read_probe_is_the_or_of_every_byte(nbytes):
    data = np.zeros(nbytes, np.uint8)
    assert _core.read_probe(data) == 0
    for at in {0, nbytes // 2, nbytes - 1} if nbytes else set():
        data[at] = 1 << (at % 8)
        assert _core.read_probe(data) == 1 << (at % 8)
        data[at] = 0


def test_read_probe_takes_any_dtype_and_shape_as_bytes():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert _core.read_probe(x) == np.bitwise_or.reduce(x.view(np.uint8).ravel())


@pytest.mark.parametrize("nbytes", [0, 10, (1 << 20) + 3, 3 << 20])
def test_copy_probe_copies_every_byte(nbytes):
    src = np.random.default_rng(0).integers(0, 256, nbytes, dtype=np.uint8)
    dst = np.zeros_like(src)
    _core.copy_probe(dst, src)
    np.testing.assert_array_equal(dst, src)


def test_probes_refuse_what_they_cannot_take():
    a = np.zeros(64, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.read_probe(a[::2])
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.copy_probe(np.zeros(32, np.float32), a[::2])
    with pytest.raises(ValueError, match="same number of bytes"):
        _core.copy_probe(np.zeros(10, np.float32), a)
    read_only = np.zeros(64, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.copy_probe(read_only, a)
    with pytest.raises(ValueError, match="overlap"):
        _core.copy_probe(a[1:33], a[:32])
    assert not a.any()
