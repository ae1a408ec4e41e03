"""Progress bars for long work (bytes and files, rate, ETA), drawn by tqdm only on a terminal.

A `Progress` is the ``(bytes, files)`` callback that `Vault.backup` and `Vault.restore` accept.
On a terminal tqdm redraws one line (at most ten times a second); anywhere else (a pipe, a log
file, cron) nothing is drawn, so scripted output stays clean.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress", "format_bytes"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
#: Carriage return, then ANSI "erase to end of line".
_CLEAR_LINE = "\r\x1b[K"


def format_bytes(count: float) -> str:
    """Return ``count`` bytes in binary units for summaries: ``512 B``, ``1.5 MiB``."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """One progress bar: bytes done (with rate, and bar and ETA when the total is known) and files.

    Call it with ``(bytes, files)`` increments; use it as a context manager so the bar is
    cleared at the end (the command prints its own summary). Safe to call from several threads.

    Args:
        label: what is being done (``backup db``).
        total_bytes: the bytes expected, or ``None`` when unknown (a stream).
        total_files: the files expected, or ``None``.
        stream: where to draw; standard error by default.
        enabled: draw at all; by default only when ``stream`` is a terminal.
        min_interval: seconds between redraws.
    """

    def __init__(
        self,
        label: str,
        *,
        total_bytes: int | None = None,
        total_files: int | None = None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval: float = 0.1,
    ) -> None:
        out = stream or sys.stderr
        self._out = out
        self._enabled = _is_terminal(out) if enabled is None else enabled
        self._total_files = total_files
        self._lock = threading.Lock()
        self.bytes = 0
        self.files = 0
        self._bar = tqdm(
            total=total_bytes or None,
            desc=label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=out,
            disable=not self._enabled,
            leave=False,
            dynamic_ncols=True,
            mininterval=min_interval,
            miniters=1 if min_interval == 0 else None,
        )

    @property
    def enabled(self) -> bool:
        """Whether anything is drawn."""
        return self._enabled

    def __call__(self, nbytes: int, nfiles: int) -> None:
        """Count ``nbytes`` and ``nfiles`` more done."""
        with self._lock:
            self.bytes += nbytes
            self.files += nfiles
            if not self._enabled:
                return
            if nfiles:
                total = f"/{self._total_files}" if self._total_files else ""
                self._bar.set_postfix_str(f"{self.files}{total} files", refresh=False)
            self._bar.update(nbytes)

    def set_totals(self, total_bytes: int | None, total_files: int | None) -> None:
        """Give the totals once they are known (measured after the bar started), and redraw.

        One bar is kept for the whole command: a second bar would be drawn below the first, and
        closing it would leave the cursor on the wrong line.
        """
        with self._lock:
            self._total_files = total_files
            if not self._enabled:
                return
            self._bar.total = total_bytes or None
            self._bar.refresh()

    def set(self, done_bytes: int, done_files: int) -> None:
        """Move to absolute figures (for callers that report totals so far)."""
        self(done_bytes - self.bytes, done_files - self.files)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Clear the bar and leave the cursor at the start of its (now empty) line.

        A carriage return then "erase to end of line": whatever is printed next starts at column 0 of a
        clean line, whether or not tqdm moved the cursor when it cleared its own drawing.
        """
        with self._lock:
            if self._bar.disable:
                return
            self._bar.close()
            self._out.write(_CLEAR_LINE)
            self._out.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
