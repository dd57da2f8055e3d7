"""Progress reports for long demo-city runs: the callback type and a plain text bar.

The bar has no dependencies (``rich`` is only installed transitively, so Reppu does not lean on
it). On a terminal it redraws one line in place; into a file or a pipe it writes a line at
most every few seconds and when a run finishes, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``done`` of ``total`` units of work, in a named stage."""


def no_progress(stage: str, done: int, total: int) -> None:
    """A progress callback that reports nothing."""


class TextProgress:
    """A one-line text progress bar, by default on stderr."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        width: int = 30,
        min_interval: float = 0.1,
        log_interval: float = 5.0,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._tty = self._stream.isatty()
        # A terminal can take frequent redraws; a log file gets a line every few seconds.
        self._interval = min_interval if self._tty else log_interval
        self._last = float("-inf")

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if not finished and now - self._last < self._interval:
            return
        self._last = now
        fraction = min(1.0, done / total) if total > 0 else 1.0
        filled = round(fraction * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        line = f"{stage:<24} [{bar}] {fraction:4.0%} {done:,}/{total:,}"
        if self._tty:
            self._stream.write("\r" + line + "\x1b[K" + ("\n" if finished else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
