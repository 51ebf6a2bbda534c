"""A progress bar written by hand for the examples (no tqdm): one line, redrawn in place.

On a terminal the line is redrawn with a carriage return; elsewhere (a pipe, a log file, a test) each
update is its own line, so the output stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``[#########.........]  12/40  30% 1.2s  loss 0.4312`` — call :meth:`update` per step.

    Parameters
    ----------
    total : int
        The number of steps.
    label : str
        Printed before the bar.
    width : int
        Characters in the bar.
    stream : text stream, optional
        Where to draw (default ``sys.stderr``, so that results on stdout stay clean).
    """

    def __init__(self, total: int, label: str = "", width: int = 30, stream: TextIO | None = None) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, got {total}")
        self.total, self.label, self.width = total, label, width
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.start = time.perf_counter()
        self.inplace = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, info: str = "") -> str:
        """The bar as it stands, with ``info`` after it."""
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        digits = len(str(self.total))
        elapsed = time.perf_counter() - self.start
        text = (f"{self.label} [{bar}] {self.done:>{digits}}/{self.total} "
                f"{100 * self.done // self.total:3d}% {elapsed:5.1f}s")
        return f"{text}  {info}" if info else text

    def update(self, steps: int = 1, info: str = "") -> None:
        """Advance by ``steps`` and redraw; ``info`` (say, the current loss) follows the bar."""
        self.done = min(self.total, self.done + steps)
        end = "" if self.inplace and self.done < self.total else "\n"
        prefix = "\r" if self.inplace else ""
        self.stream.write(prefix + self.line(info) + end)
        self.stream.flush()
