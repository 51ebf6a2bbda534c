"""Checked by `mypy --strict` (scripts/run_tests.sh), never run: the result types users' annotations rely on.

The checks sit in a function that nothing calls, so pytest's module import (--doctest-modules) runs none
of them. A `# type: ignore[...]` marks a line that must be rejected: with warn_unused_ignores (part of
--strict) mypy fails if the overloads ever accept it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Tuple, Union

import numpy as np

import xentcpp as xc

if TYPE_CHECKING:
    from typing_extensions import assert_type


def chosen_at_run_time(x: np.ndarray, y: np.ndarray, reduction: str) -> Union[float, np.ndarray]:
    """A plain str gives the union; the caller narrows it."""
    return xc.cross_entropy(x, y, reduction=reduction)


def checks(x: np.ndarray, y: np.ndarray) -> None:
    loss: float = xc.cross_entropy(x, y)
    total: float = xc.cross_entropy(x, y, reduction="sum", label_smoothing=0.1)
    per_row: np.ndarray = xc.cross_entropy(x, y, reduction="none")
    assert_type(xc.cross_entropy(x, y, reduction="mean"), float)
    assert_type(xc.cross_entropy(x, y, reduction="none", weight=[1.0, 2.0, 3.0]), np.ndarray)

    value, grad = xc.cross_entropy_value_and_grad(x, y)
    assert_type(value, float)
    assert_type(grad, np.ndarray)
    rows, grad = xc.cross_entropy_value_and_grad(x, y, reduction="none", out=x)
    assert_type(rows, np.ndarray)
    assert_type(xc.cross_entropy_grad(x, y, 2.0, reduction="sum"), np.ndarray)

    wrong_float: float = xc.cross_entropy(x, y, reduction="none")  # type: ignore[assignment]
    wrong_array: np.ndarray = xc.cross_entropy(x, y)  # type: ignore[assignment]
    unknown_option = xc.cross_entropy(x, y, reduce="mean")  # type: ignore[call-overload]

    with xc.threads(1):
        assert_type(xc.get_num_threads(), int)
    assert_type(xc.show_config("dicts"), dict[str, Any])
    assert_type(xc.show_config(), None)
    print(loss, total, per_row, wrong_float, wrong_array, unknown_option)


def z_loss_checks(x: np.ndarray, y: np.ndarray) -> None:
    pair = xc.cross_entropy(x, y, z_loss=1e-4, return_z_loss=True)
    assert_type(pair, Tuple[float, float])
    rows = xc.cross_entropy(x, y, reduction="none", softcap=30.0, return_z_loss=True)
    assert_type(rows, Tuple[np.ndarray, np.ndarray])
    (loss, z_loss), grad = xc.cross_entropy_value_and_grad(x, y, z_loss=1e-4, return_z_loss=True)
    assert_type(loss, float)
    assert_type(z_loss, float)
    assert_type(grad, np.ndarray)
    plain: float = xc.cross_entropy(x, y, z_loss=1e-4, softcap=30.0)
    wrong: float = xc.cross_entropy(x, y, return_z_loss=True)  # type: ignore[assignment]
    print(plain, wrong)
