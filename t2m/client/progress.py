"""Progress bars on stderr, dependency-free.

On a terminal a bar is redrawn in place (at most ten times a second); when
stderr is a pipe or file it degrades to plain lines, one per 10 % step, so
logs and scripts get a readable record instead of carriage-return noise.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

_UNITS = ("B", "KB", "MB", "GB", "TB")


def human_bytes(count: float) -> str:
    for unit in _UNITS:
        if abs(count) < 1024 or unit == _UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"  # not reached


class ProgressBar:
    """Progress of one transfer (``unit="bytes"``) or job (``unit="percent"``)."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        unit: str = "bytes",
        stream: TextIO | None = None,
        start: int = 0,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = start
        self._start = start
        self._began = time.monotonic()
        self._drawn = 0.0
        self._step = -1
        self._closed = False
        self._draw(force=True)

    def update(self, done: int, label: str | None = None) -> None:
        relabelled = label is not None and label != self.label
        if label is not None:
            self.label = label
        self.done = done
        self._draw(force=relabelled)

    def advance(self, count: int) -> None:
        self.update(self.done + count)

    def close(self, message: str | None = None, *, label: str | None = None) -> None:
        """End the bar with a final state (``message`` replaces the figures)."""
        if self._closed:
            return
        self._closed = True
        self.label = label or self.label
        if self.tty:
            self.stream.write("\r" + self._line(message) + "\x1b[K\n")
        else:
            self.stream.write(self._line(message) + "\n")
        self.stream.flush()

    def _fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    def _figures(self) -> str:
        if self.unit == "percent":
            return f"{self.done}%"
        elapsed = max(time.monotonic() - self._began, 1e-6)
        rate = human_bytes((self.done - self._start) / elapsed) + "/s"
        if self.total:
            return f"{human_bytes(self.done)}/{human_bytes(self.total)} {rate}"
        return f"{human_bytes(self.done)} {rate}"

    def _line(self, message: str | None = None) -> str:
        figures = message or self._figures()
        fraction = self._fraction()
        if not self.tty:
            percent = "" if fraction is None or self.unit == "percent" else f"{fraction:.0%} "
            return f"{self.label}: {percent}{figures}"
        if self.unit == "percent" and message is None:
            figures = ""  # the bar's own percentage says it
        width = shutil.get_terminal_size((80, 20)).columns
        label = self.label[: max(10, width // 3)]
        if fraction is None:
            return f"{label} {figures}"
        bar_width = max(10, width - len(label) - len(figures) - 10)
        filled = int(bar_width * fraction)
        bar = "#" * filled + "-" * (bar_width - filled)
        return f"{label} [{bar}] {fraction:4.0%} {figures}".rstrip()

    def _draw(self, *, force: bool = False) -> None:
        if self._closed:
            return
        if self.tty:
            now = time.monotonic()
            if force or now - self._drawn >= 0.1:
                self._drawn = now
                self.stream.write("\r" + self._line() + "\x1b[K")
                self.stream.flush()
            return
        fraction = self._fraction()
        step = int(fraction * 10) if fraction is not None else 0
        if force or step > self._step:
            self._step = step
            self.stream.write(self._line() + "\n")
            self.stream.flush()
