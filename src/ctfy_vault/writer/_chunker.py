"""Content-defined chunking (FastCDC 2020 via ``pyfastcdc``) with the repository's parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import attrs
from pyfastcdc import FastCDC

from ctfy_vault.repository._config import DEFAULT_CHUNKER, ChunkerParams
from ctfy_vault.storage import read_full

__all__ = ["DEFAULT_CHUNKER", "ChunkerParams", "Readable", "iter_chunks"]


class Readable(Protocol):
    """A binary source read block by block (an open file, a pipe, ``sys.stdin.buffer``)."""

    def read(self, size: int, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...


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
