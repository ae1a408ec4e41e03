"""Content-defined chunking (FastCDC 2020 via ``pyfastcdc``) with the repository's parameters.

Unkeyed (format v1) the boundaries follow from the data and the public parameters alone. Keyed
(format v2, a `ChunkerKey`) FastCDC cuts a secretly permuted image of the data with a secret gear
seed, and the cuts are applied to the data itself, so boundaries cannot be predicted without the
repository's keys (``docs/threat-model.md``, "Chunk sizes").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Final, Protocol

import attrs
from pyfastcdc import FastCDC

from ctfy_vault.crypto import ChunkerKey
from ctfy_vault.repository._config import DEFAULT_CHUNKER, ChunkerParams
from ctfy_vault.storage import read_full

__all__ = ["DEFAULT_CHUNKER", "ChunkerParams", "Readable", "iter_chunks"]


class Readable(Protocol):
    """A binary source read block by block (an open file, a pipe, ``sys.stdin.buffer``)."""

    def read(self, size: int, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...


def iter_chunks(
    source: Readable, params: ChunkerParams = DEFAULT_CHUNKER, key: ChunkerKey | None = None
) -> Iterator[bytes]:
    """Cut a stream of any length into content-defined chunks, holding a few ``max_size`` at once.

    A source that ends within ``max_size`` bytes (most files) is cut in one buffer call: the
    stream cutter sets up a ``max_size`` buffer per call (tens of milliseconds at 16 MiB), which
    would dominate a backup of many small files. Both cutters give the same boundaries, keyed or
    not. A longer source is streamed: the cutter's buffer holds up to ``2 * max_size`` and, keyed,
    as much of the source's own blocks is kept beside it until they are handed out.

    Args:
        source: the stream; read to its end exactly once.
        params: the chunker parameters.
        key: the repository's chunker key (format v2), or ``None`` for the unkeyed boundaries of
            format v1 (unchanged byte for byte).

    Yields:
        Each chunk's bytes, in order; their concatenation is the whole stream. An empty stream
        yields nothing.
    """
    head = read_full(source, params.max_size + 1)
    if len(head) <= params.min_size:
        # FastCDC never cuts below min_size: such a source is one chunk (most small files), and
        # the cutter need not be set up at all.
        if head:
            yield bytes(head)
        return
    seed = 0 if key is None else key.seed
    cdc = FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=seed)
    if len(head) <= params.max_size:
        if key is None:
            for chunk in cdc.cut_buf(head):
                yield bytes(chunk.data)
            return
        # Cut the permuted image, then slice the data itself at the same offsets.
        for chunk in cdc.cut_buf(head.translate(key.permutation)):
            yield bytes(head[chunk.offset : chunk.offset + chunk.length])
        return
    if key is None:
        stream = _Prefixed(head, source)
        del head  # the stream lets go of it once it is read
        for chunk in cdc.cut_stream(stream):
            # The chunker reuses its buffer for the next chunk, and ours are processed concurrently.
            yield bytes(chunk.data)
        return
    # The cutter sees only the permuted image; each chunk is taken from the source's own blocks.
    keyed = _Permuted(memoryview(head), source, key.permutation)
    del head  # released once its last chunk is handed out
    for chunk in cdc.cut_stream(keyed):
        yield keyed.take(chunk.length)


# Translating blocks of about this size stays in the CPU cache (a third faster than 8 MiB at once).
_BLOCK: Final = 1 << 20


class _Permuted:
    """A stream that gives the cutter the permuted image of ``head`` then ``rest``.

    The source's blocks are kept, unchanged and uncopied, until `take` hands them out as chunks;
    the cutter reads at most about two ``max_size`` ahead, which bounds what is kept.
    """

    def __init__(self, head: memoryview, rest: Readable, table: bytes) -> None:
        self._head = head
        self._rest = rest
        self._table = table
        self._kept: deque[bytes | memoryview] = deque()
        self._used = 0  # bytes of the first kept block already handed out

    def __repr__(self) -> str:
        return f"<_Permuted kept={len(self._kept)} blocks>"

    def read(self, size: int, /) -> bytes:
        size = min(size, _BLOCK)
        if self._head:
            piece = self._head[:size]
            # An empty view would still pin the head; drop it instead.
            self._head = self._head[size:] if len(self._head) > size else memoryview(b"")
            self._kept.append(piece)
            return piece.tobytes().translate(self._table)
        block = self._rest.read(size)
        if block:
            self._kept.append(block)
        return block.translate(self._table)

    def take(self, length: int) -> bytes:
        """The next ``length`` bytes of the source as the cutter read them, unpermuted."""
        pieces: list[memoryview] = []
        while length:
            block = self._kept[0]
            piece = memoryview(block)[self._used : self._used + length]
            pieces.append(piece)
            length -= len(piece)
            self._used += len(piece)
            if self._used == len(block):
                self._kept.popleft()
                self._used = 0
        return b"".join(pieces)


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
