"""Content-defined chunking (FastCDC 2020 via ``pyfastcdc``) with the repository's parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Protocol

import attrs
from pyfastcdc import FastCDC

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.storage import read_full

__all__ = ["DEFAULT_CHUNKER", "ChunkerParams", "Readable", "iter_chunks"]

MiB: Final = 1024 * 1024


class Readable(Protocol):
    """A binary source read block by block (an open file, a pipe, ``sys.stdin.buffer``)."""

    def read(self, size: int, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...


def _check_range(low: int, high: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        if type(value) is not int or not low <= value <= high:
            raise ConfigurationError(f"{attribute.name} must be an integer from {low} to {high}")

    return check


@attrs.frozen(kw_only=True)
class ChunkerParams:
    """FastCDC parameters, stored in the repository config so every writer cuts alike.

    The ranges are those ``pyfastcdc`` accepts. Changing them after the first backup does not
    break anything, but chunks cut with other parameters rarely deduplicate against old ones.

    The defaults (512 KiB, 1 MiB, 8 MiB) are restic's: a next-day database dump with 1% of its
    rows changed stores as much new data as restic does (4 MiB chunks stored a third more), and
    backups are no slower (``docs/performance.md``).

    Attributes:
        min_size: the smallest chunk (except the last of a source), 64 B to 1 MiB.
        avg_size: the target average, 256 B to 4 MiB (a power of two is customary).
        max_size: the largest chunk, 1 KiB to 16 MiB.
    """

    min_size: int = attrs.field(default=MiB // 2, validator=_check_range(64, 1 * MiB))
    avg_size: int = attrs.field(default=1 * MiB, validator=_check_range(256, 4 * MiB))
    max_size: int = attrs.field(default=8 * MiB, validator=_check_range(1024, 16 * MiB))

    def __attrs_post_init__(self) -> None:
        if not self.min_size <= self.avg_size <= self.max_size:
            raise ConfigurationError("chunker sizes must satisfy min_size <= avg_size <= max_size")

    def to_config(self) -> dict[str, int | str]:
        """Return the JSON-ready form recorded in the repository's ``config``."""
        return {
            "algorithm": "fastcdc2020",
            "min_size": self.min_size,
            "avg_size": self.avg_size,
            "max_size": self.max_size,
        }


DEFAULT_CHUNKER: Final = ChunkerParams()


def iter_chunks(source: Readable, params: ChunkerParams = DEFAULT_CHUNKER) -> Iterator[bytes]:
    """Cut a stream of any length into content-defined chunks, holding about ``max_size`` at once.

    A source that ends within ``max_size`` bytes (most files) is cut in one buffer call: the
    stream cutter sets up a ``max_size`` buffer per call (tens of milliseconds at 16 MiB), which
    would dominate a backup of many small files. Both cutters give the same boundaries.

    Args:
        source: the stream; read to its end exactly once.
        params: the chunker parameters.

    Yields:
        Each chunk's bytes, in order; their concatenation is the whole stream. An empty stream
        yields nothing.
    """
    cdc = FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size)
    head = read_full(source, params.max_size + 1)
    if len(head) <= params.max_size:
        for chunk in cdc.cut_buf(head):
            yield bytes(chunk.data)
        return
    for chunk in cdc.cut_stream(_Prefixed(head, source)):
        # The chunker reuses its buffer for the next chunk, and ours are processed concurrently.
        yield bytes(chunk.data)


@attrs.define
class _Prefixed:
    """A stream that gives ``head`` first, then the rest of ``rest``."""

    head: bytes
    rest: Readable
    offset: int = 0

    def read(self, size: int, /) -> bytes:
        if self.offset < len(self.head):
            piece = self.head[self.offset : self.offset + size]
            self.offset += len(piece)
            if self.offset >= len(self.head):
                self.head = b""
                self.offset = 0
            return piece
        return self.rest.read(size)
