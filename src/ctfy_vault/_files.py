"""Reading small local files the user names (a config, a key file): regular files only.

A FIFO, a device or a socket given where a file is expected would block a plain ``open`` forever
(a FIFO with no writer) or read without end (``/dev/zero``); these are refused before anything is
read, and opening never waits.
"""

from __future__ import annotations

import os
import stat

from ctfy_vault.exceptions import ConfigurationError

__all__ = ["read_regular_file"]

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(
    path: str | os.PathLike[str], *, what: str, limit: int = 16 * 2**20
) -> tuple[bytes, os.stat_result]:
    """Read a whole regular file without ever blocking on a FIFO or a device.

    The path is checked with ``stat``, opened non-blocking and checked again with ``fstat`` on the
    descriptor (so a file swapped for a FIFO in between is refused too).

    Args:
        path: the file (links are followed, as for any file the user names).
        what: what the file is, for messages (``config file``, ``key file``).
        limit: the largest size read; a longer file is refused.

    Returns:
        The bytes, and the status of the descriptor they were read from (mode, owner).

    Raises:
        ConfigurationError: the path is not a regular file (a folder, a FIFO, a device, a
            socket), or is longer than ``limit``; the message names ``what``, the path and why.
        OSError: the file is missing or cannot be opened or read (``FileNotFoundError``,
            ``PermissionError``...); callers word these themselves.
    """
    shown = os.fspath(path)
    before = os.stat(path)
    if not stat.S_ISREG(before.st_mode):
        raise ConfigurationError(f"{what} {shown} is {_kind(before.st_mode)}, not a regular file")
    fd = os.open(path, _FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"{what} {shown} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise ConfigurationError(f"{what} {shown} is larger than {limit} bytes")
        parts = []
        remaining = limit + 1
        while remaining > 0 and (block := os.read(fd, min(remaining, 2**20))):
            parts.append(block)
            remaining -= len(block)
    finally:
        os.close(fd)
    data = b"".join(parts)
    if len(data) > limit:
        raise ConfigurationError(f"{what} {shown} is larger than {limit} bytes")
    return data, info
