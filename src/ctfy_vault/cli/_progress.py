"""Progress bars for long work (bytes and files, rate, ETA), drawn only on a terminal.

A `Progress` is the ``(bytes, files)`` callback that `Vault.backup` and `Vault.restore` accept.
On a terminal it redraws one line at most ten times a second; anywhere else (a pipe, a log file,
cron) it draws nothing, so scripted output stays clean.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["Progress", "format_bytes", "format_duration"]

_REDRAW_SECONDS = 0.1
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: float) -> str:
    """Return ``count`` bytes in binary units: ``512 B``, ``1.5 MiB``."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """Return a duration as ``M:SS`` or ``H:MM:SS``."""
    whole = max(0, int(seconds + 0.5))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """One progress line: bytes and files done, rate, and (with known totals) a bar and the ETA.

    Call it with ``(bytes, files)`` increments; use it as a context manager so the line is
    finished (or cleared) at the end. Safe to call from several threads.

    Args:
        label: what is being done (``backup db``).
        total_bytes: the bytes expected, or ``None`` when unknown (a stream).
        total_files: the files expected, or ``None``.
        stream: where to draw; standard error by default.
        enabled: draw at all; by default only when ``stream`` is a terminal.
        clock: the monotonic clock (tests inject one).
    """

    def __init__(
        self,
        label: str,
        *,
        total_bytes: int | None = None,
        total_files: int | None = None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._total_bytes = total_bytes
        self._total_files = total_files
        self._stream = stream or sys.stderr
        self._enabled = _is_terminal(self._stream) if enabled is None else enabled
        self._clock = clock
        self._start = clock()
        self._drawn = float("-inf")
        self._lock = threading.Lock()
        self.bytes = 0
        self.files = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is drawn."""
        return self._enabled

    def __call__(self, nbytes: int, nfiles: int) -> None:
        """Count ``nbytes`` and ``nfiles`` more done; redraw if the last draw is old enough."""
        with self._lock:
            self.bytes += nbytes
            self.files += nfiles
            if not self._enabled:
                return
            now = self._clock()
            if now - self._drawn < _REDRAW_SECONDS:
                return
            self._drawn = now
            self._draw(now)

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
        """Clear the line (the command prints its own summary)."""
        with self._lock:
            if self._enabled and self._drawn > float("-inf"):
                self._stream.write("\r\x1b[K")
                self._stream.flush()

    def line(self, now: float | None = None, *, bar: bool = True) -> str:
        """Return the progress line as it would be drawn now (``bar=False``: without the bar)."""
        elapsed = max((self._clock() if now is None else now) - self._start, 1e-9)
        rate = self.bytes / elapsed
        parts = [self._label]
        if self._total_bytes:
            share = min(self.bytes / self._total_bytes, 1.0)
            filled = int(share * 16)
            if bar:
                parts.append(f"[{'#' * filled}{'.' * (16 - filled)}]")
            parts.append(f"{share:.0%}")
            parts.append(f"{format_bytes(self.bytes)}/{format_bytes(self._total_bytes)}")
        else:
            parts.append(format_bytes(self.bytes))
        files = f"{self.files}/{self._total_files}" if self._total_files else f"{self.files}"
        parts.append(f"{files} files")
        parts.append(f"{format_bytes(rate)}/s")
        # The first second's rate is noise (startup, listing): no ETA from it.
        if self._total_bytes and elapsed >= 1.0 and rate > 0 and self.bytes < self._total_bytes:
            parts.append(f"ETA {format_duration((self._total_bytes - self.bytes) / rate)}")
        return " ".join(parts)

    def _draw(self, now: float) -> None:
        width = max(shutil.get_terminal_size((80, 24)).columns - 1, 10)
        text = self.line(now)
        if len(text) > width:  # a narrow terminal loses the bar before the figures
            text = self.line(now, bar=False)[:width]
        self._stream.write("\r" + text + "\x1b[K")
        self._stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
