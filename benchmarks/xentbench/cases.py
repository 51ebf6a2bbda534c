"""What a run measures: the input shapes (:class:`Case`), the full and quick settings, and the inputs.

A case is one shape and dtype of logits with int64 labels; :data:`FULL` and :data:`QUICK` list the cases
and how long each part of a run may take. :func:`make_inputs` makes the arrays without a temporary of the
logits' size. The names of the implementations and operations, shared by every module, are here too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

IMPLS = ("xentcpp", "numpy", "torch", "jax")
PEERS = IMPLS[1:]
OPS = ("forward", "fused", "fused_out", "fused_cold")
PEER_OPS = OPS[:2]  # the ops every implementation runs; the others are xentcpp's variants of "fused"
OP_LABELS = {"forward": "forward", "fused": "fused", "fused_out": "fused out=", "fused_cold": "fused, cache off"}

__all__ = ["FULL", "IMPLS", "OPS", "OP_LABELS", "PEERS", "PEER_OPS", "QUICK", "Case", "Settings", "make_inputs"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One input shape: ``rows`` x ``classes`` logits of ``dtype`` and ``rows`` int64 labels."""

    rows: int
    classes: int
    dtype: str = "float32"

    @property
    def itemsize(self) -> int:
        """Bytes per logit."""
        return np.dtype(self.dtype).itemsize

    @property
    def label(self) -> str:
        """The shape and dtype, e.g. ``2,000,000×10 float32``."""
        return f"{self.rows:,}×{self.classes:,} {self.dtype}"

    @property
    def short(self) -> str:
        """A compact label for plots, e.g. ``2M×10`` (``f64`` appended for float64)."""
        suffix = "" if self.dtype == "float32" else f"\n{self.dtype.replace('float', 'f')}"
        return f"{_compact(self.rows)}×{_compact(self.classes)}{suffix}"

    @property
    def bytes_logits(self) -> int:
        """Bytes of the logits, ``N*C*itemsize`` (and of the gradient)."""
        return self.rows * self.classes * self.itemsize

    @property
    def bytes_labels(self) -> int:
        """Bytes of the int64 labels, ``N*8``: read too, but not in the roofline."""
        return self.rows * 8


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run measures and how long it may take."""

    cases: tuple[Case, ...]
    rounds: int  # interleaved rounds; the median is reported
    min_sample_s: float  # shortest sample: small shapes get many calls per sample
    budget_s: float  # a peer whose timed rounds would take longer on a shape is skipped there
    bandwidth_bytes: int  # size of each array of the bus probes (several times the last-level cache)
    memory_case: Case
    memory_impls: tuple[str, ...]  # implementations whose memory is measured


FULL = Settings(
    cases=(
        Case(2_000_000, 10), Case(32_768, 1_000), Case(2_048, 32_000), Case(512, 128_256),
        Case(1, 1_000_000), Case(1, 4_000_000), Case(32, 10), Case(4_096, 1_000, "float64"),
    ),
    rounds=9, min_sample_s=0.05, budget_s=60.0, bandwidth_bytes=2**28,
    memory_case=Case(2_048, 32_000), memory_impls=IMPLS,
)
QUICK = Settings(
    cases=(
        Case(200_000, 10), Case(4_096, 1_000), Case(256, 32_000), Case(64, 128_256),
        Case(1, 1_000_000), Case(1, 4_000_000), Case(32, 10), Case(1_024, 1_000, "float64"),
    ),
    rounds=3, min_sample_s=0.01, budget_s=1.5, bandwidth_bytes=2**27,
    memory_case=Case(512, 32_000), memory_impls=("xentcpp",),
)


def _compact(n: int) -> str:
    """``2_000_000`` -> ``2M``, ``4_000`` -> ``4k``; other numbers unchanged."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def make_inputs(case: Case, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal logits and uniform labels, generated in place (no temporary of the logits' size).

    Parameters
    ----------
    case : Case
        The shape and dtype.
    seed : int
        Seed of the generator.

    Returns
    -------
    x : ndarray, shape (rows, classes), C-contiguous
    y : ndarray of int64, shape (rows,)
    """
    rng = np.random.default_rng(seed)
    x = np.empty((case.rows, case.classes), dtype=case.dtype)
    rng.standard_normal(out=x, dtype=x.dtype)
    return x, rng.integers(0, case.classes, case.rows, dtype=np.int64)
