"""Format v2 pack objects: sealed chunks bundled into one immutable, padded object per pack.

Layout (``docs/format.md``, "Format version 2")::

    [sealed chunk 1][sealed chunk 2]...[sealed header][zero padding][sealed trailer]

- each sealed chunk is exactly what `Sealer.seal_chunk` gives (kind chunk, bound to its chunk id),
  so a chunk read by range authenticates on its own;
- the header (kind `Kind.PACK_HEADER`, name ``"pack"``, never compressed) lists every chunk's id,
  offset and sealed length, so an index can be rebuilt from the packs alone;
- the trailer (kind `Kind.PACK_TRAILER`, name ``"pack"``) is always `TRAILER_SIZE` bytes and holds
  the header's offset and length; it is the object's last bytes;
- zero padding between header and trailer makes the object `padme` of its unpadded length, so its
  size does not reveal the sizes of the chunks inside;
- the pack id is the SHA-256 of the whole stored object: ``packs/<ab>/<id in hex>``.

Errors: a stored object that is not what an authenticated statement (its name, its trailer, an
index record) says it is raises `IntegrityError`; well-authenticated content that is invalid (a
header whose entries overlap, non-zero padding under a matching hash) raises `FormatError`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

import attrs

from ctfy_vault.crypto import (
    CHUNK_ID_SIZE,
    FORMAT_VERSION,
    MAX_CHUNK_SIZE,
    OVERHEAD,
    Kind,
    SealedChunk,
    Sealer,
)
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError
from ctfy_vault.storage import Target

__all__ = [
    "DEFAULT_PACK_SIZE",
    "MAX_PACK_SIZE",
    "MIN_PACK_SIZE",
    "PACK_NAME",
    "PACK_VERSION",
    "TRAILER_SIZE",
    "BlobRanges",
    "Pack",
    "PackBuilder",
    "PackEntry",
    "PackHeader",
    "RangeReader",
    "TargetRanges",
    "check_pack",
    "decode_pack_header",
    "encode_pack_header",
    "header_size",
    "open_chunk_from_pack",
    "padme",
    "read_chunk",
    "read_pack_header",
]

#: The first byte of a pack header's and an index object's plaintext: repository format 2.
PACK_VERSION: Final = 2
#: The name bound into the associated data of every pack header and trailer.
PACK_NAME: Final = "pack"
#: A pack's target size when none is given: 16 MiB.
#:
#: - Requests: 64 PUTs per GiB of new data per target instead of ~1,000 one-chunk PUTs (at the
#:   default 1 MiB average chunk); larger packs save little more (a PUT costs the same per request
#:   at any size, and 64 per GiB is already far below the data's transfer time).
#: - Memory: a builder holds one pack's bytes, so each in-flight pack per target costs 16 MiB
#:   (3 targets x 2 in flight = 96 MiB); 64 MiB packs would make that 384 MiB.
#: - Repacking: prune rewrites a pack whose live share falls below a threshold, so the pack is the
#:   unit of rewrite; 16 MiB keeps one forgotten chunk from forcing a large rewrite.
#: - Padding: Padmé rounds a 16 MiB pack to a multiple of 512 KiB (at most 3.1% overhead).
DEFAULT_PACK_SIZE: Final = 16 * 2**20
#: The smallest target size a `PackBuilder` accepts.
MIN_PACK_SIZE: Final = 4 * 2**10
#: The largest target size a `PackBuilder` accepts.
MAX_PACK_SIZE: Final = 2**30
#: The stored size of every trailer: the 32-byte envelope around two 8-byte integers.
TRAILER_SIZE: Final = OVERHEAD + 16

_ENTRY: Final = struct.Struct(f">{CHUNK_ID_SIZE}sQI")
_COUNT: Final = struct.Struct(">BI")
_TRAILER: Final = struct.Struct(">QQ")
_MAX_SEALED_CHUNK: Final = 2**32 - 1
#: A pack header names at most this many chunks (a 1 GiB pack of 32-byte chunks, with room).
_MAX_HEADER_PLAINTEXT: Final = _COUNT.size + _ENTRY.size * (MAX_PACK_SIZE // OVERHEAD + 1)
_SHORT_READ: Final = "pack ended early: the stored object is shorter than its index or trailer says"


def padme(length: int) -> int:
    """Pad a length with Padmé: round it up so that only a few high bits stay significant.

    With ``E = floor(log2 L)`` and ``S = floor(log2 E) + 1``, the low ``E - S`` bits are rounded
    up, so a padded length has at most ``S`` significant bits and there are at most ``2**S``
    padded lengths in ``[2**E, 2**(E+1))``. The overhead is below 12.5% (``padded - L <= L / 8``)
    and shrinks as lengths grow (3.1% at 16 MiB). Lengths 0 and 1 stay as they are.

    Args:
        length: the unpadded length, at least 0.

    Returns:
        The padded length: at least ``length``, and ``padme(padme(length)) == padme(length)``.

    Raises:
        ConfigurationError: ``length`` is negative.
    """
    if length < 0:
        raise ConfigurationError(f"cannot pad a negative length {length}")
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    significant = exponent.bit_length()
    mask = (1 << (exponent - significant)) - 1
    return (length + mask) & ~mask


def header_size(count: int) -> int:
    """Return the stored size of a pack header listing ``count`` chunks (it is never compressed)."""
    return OVERHEAD + _COUNT.size + _ENTRY.size * count


# -- values ---------------------------------------------------------------------------------------


@attrs.frozen
class PackEntry:
    """Where one sealed chunk lies in a pack: its id, its offset and its sealed length."""

    chunk_id: bytes
    offset: int
    length: int

    @property
    def end(self) -> int:
        """The offset just past the sealed chunk."""
        return self.offset + self.length


@attrs.frozen
class Pack:
    """A finished pack: its id (SHA-256 of `blob`), the bytes to store and the chunks inside.

    Attributes:
        id: the 32-byte SHA-256 of `blob`; the object is stored under ``pack_key(id)``.
        blob: the stored bytes, written verbatim (create-only) to every target.
        entries: the chunks, in pack order (the header lists the same).
    """

    id: bytes
    blob: bytes = attrs.field(repr=False, hash=False)
    entries: tuple[PackEntry, ...]

    @property
    def name(self) -> str:
        """The pack id in lowercase hex, the last segment of its key."""
        return self.id.hex()

    @property
    def size(self) -> int:
        """The stored size in bytes (a `padme` value)."""
        return len(self.blob)


@attrs.frozen
class PackHeader:
    """What a pack's trailer and header say: its size, where its header lies, and its chunks."""

    size: int
    header_offset: int
    header_length: int
    entries: tuple[PackEntry, ...]


# -- range readers --------------------------------------------------------------------------------


@runtime_checkable
class RangeReader(Protocol):
    """Something a pack can be read from by byte ranges (`TargetRanges`, `BlobRanges`)."""

    def size(self) -> int:
        """Return the stored object's size in bytes."""
        ...

    def read_range(self, start: int, end: int) -> bytes | bytearray | memoryview:
        """Return bytes ``start`` (inclusive) to ``end`` (exclusive); shorter at the object's end."""
        ...


@attrs.frozen
class BlobRanges:
    """Ranges of a pack held in memory."""

    blob: bytes | bytearray | memoryview = attrs.field(repr=False)

    def size(self) -> int:
        """Return the length of the blob."""
        return len(self.blob)

    def read_range(self, start: int, end: int) -> memoryview:
        """Return a view of bytes ``start`` to ``end`` of the blob (no copy)."""
        return memoryview(self.blob)[start:end]


@attrs.frozen
class TargetRanges:
    """Ranges of a pack on a target, one ranged read each.

    Attributes:
        target: where the pack is stored.
        key: its object key (``pack_key(id)``).
        known_size: its size when known (from an index record or a listing), saving a ``HEAD``.
    """

    target: Target
    key: str
    known_size: int | None = None

    def size(self) -> int:
        """Return the known size, or ask the target."""
        return self.known_size if self.known_size is not None else self.target.size(self.key)

    def read_range(self, start: int, end: int) -> bytes:
        """Read bytes ``start`` to ``end`` from the target (`StorageError` passes through)."""
        return self.target.read_range(self.key, start, end)


Source = RangeReader | bytes | bytearray | memoryview


def _ranges(source: Source) -> RangeReader:
    return source if isinstance(source, RangeReader) else BlobRanges(source)


def _read_exact(ranges: RangeReader, start: int, end: int) -> bytes | bytearray | memoryview:
    data = ranges.read_range(start, end)
    if len(data) != end - start:
        raise IntegrityError(_SHORT_READ)
    return data


# -- encoding -------------------------------------------------------------------------------------


def encode_pack_header(entries: Sequence[PackEntry]) -> bytes:
    """Encode a pack header's plaintext: version, count, then ``(id, offset, length)`` per chunk.

    Args:
        entries: the chunks in pack order.

    Returns:
        ``u8 2 || u32 count || count x (32-byte id || u64 offset || u32 length)``, big-endian.
    """
    return _COUNT.pack(PACK_VERSION, len(entries)) + b"".join(
        _ENTRY.pack(e.chunk_id, e.offset, e.length) for e in entries
    )


def decode_pack_header(plaintext: bytes | memoryview, header_offset: int) -> tuple[PackEntry, ...]:
    """Decode and check a pack header's plaintext (already authenticated).

    Args:
        plaintext: the opened header.
        header_offset: where the trailer says the header starts (the end of the last chunk).

    Returns:
        The entries, in pack order.

    Raises:
        FormatError: another version, a length that does not match the count, no chunk, a chunk
            shorter than a sealed envelope, chunks that do not follow each other from offset 0 up
            to the header, or one chunk id twice.
    """
    view = memoryview(plaintext)
    if len(view) < _COUNT.size:
        raise FormatError("pack header is shorter than its version and count")
    version, count = _COUNT.unpack_from(view)
    if version != PACK_VERSION:
        raise FormatError(f"pack header has version {version}; this release reads {PACK_VERSION}")
    if count == 0:
        raise FormatError("pack header lists no chunk")
    if len(view) != _COUNT.size + _ENTRY.size * count:
        raise FormatError(f"pack header of {len(view)} bytes does not hold exactly {count} entries")
    entries: list[PackEntry] = []
    seen: set[bytes] = set()
    position = 0
    for chunk_id, offset, length in _ENTRY.iter_unpack(view[_COUNT.size :]):
        if offset != position:
            raise FormatError(f"pack header: a chunk at {offset} where {position} was expected")
        if length < OVERHEAD:
            raise FormatError(f"pack header: a chunk of {length} bytes is no sealed chunk")
        if chunk_id in seen:
            raise FormatError(f"pack header lists chunk {chunk_id.hex()} twice")
        seen.add(chunk_id)
        entries.append(PackEntry(chunk_id=chunk_id, offset=offset, length=length))
        position = offset + length
    if position != header_offset:
        raise FormatError(
            f"pack header: the chunks end at {position}, the header starts at {header_offset}"
        )
    return tuple(entries)


def _open_part(
    sealer: Sealer, kind: Kind, name: str, blob: bytes | bytearray | memoryview, max_size: int
) -> bytes:
    # A part of a pack is found by its position or by an authenticated offset, not by a name that
    # could announce a newer format, so a wrong version byte there is damage like any other.
    if len(blob) == 0 or blob[0] != FORMAT_VERSION:
        raise IntegrityError("pack part failed authentication: not a sealed object at its offset")
    try:
        return sealer.open(kind, name, blob, max_size=max_size)
    except FormatError as err:
        # The envelope authenticated; a payload that does not decode is the writer's mistake.
        raise FormatError(f"pack {kind.name.lower()}: {err}") from err


# -- building -------------------------------------------------------------------------------------


def _check_target(_instance: object, _attribute: object, value: int) -> None:
    if not MIN_PACK_SIZE <= value <= MAX_PACK_SIZE:
        raise ConfigurationError(
            f"pack target size must be {MIN_PACK_SIZE} to {MAX_PACK_SIZE} bytes, not {value}"
        )


@attrs.define
class PackBuilder:
    """Collects sealed chunks into one pack at a time; memory is one pack's bytes.

    ``add`` appends a chunk and says whether the pack still has room; ``finish`` seals the header
    and trailer, pads, names the pack and starts the next one. Not thread-safe: one builder per
    producer.

    Attributes:
        sealer: seals the header and trailer (the chunks come sealed).
        target_size: the size at which `add` signals that the pack is full (`DEFAULT_PACK_SIZE`).
    """

    _sealer: Sealer = attrs.field(alias="sealer")
    _target_size: int = attrs.field(
        default=DEFAULT_PACK_SIZE, validator=_check_target, alias="target_size"
    )
    # The sealed chunks, kept as they came: the pack is joined once, in `finish`.
    _pieces: list[bytes | bytearray] = attrs.field(init=False, factory=list, repr=False)
    _length: int = attrs.field(init=False, default=0, repr=False)
    _entries: list[PackEntry] = attrs.field(init=False, factory=list, repr=False)
    _ids: set[bytes] = attrs.field(init=False, factory=set, repr=False)

    @property
    def target_size(self) -> int:
        """The size at which `add` signals that the pack is full."""
        return self._target_size

    @property
    def count(self) -> int:
        """How many chunks the pack being built holds."""
        return len(self._entries)

    @property
    def unpadded_size(self) -> int:
        """The pack's size if finished now, before padding: chunks, header and trailer."""
        return self._length + header_size(len(self._entries)) + TRAILER_SIZE

    def __contains__(self, chunk_id: object) -> bool:
        """Whether the pack being built holds the chunk."""
        return chunk_id in self._ids

    def add(self, chunk: SealedChunk) -> bool:
        """Append a sealed chunk.

        Args:
            chunk: a chunk sealed by `Sealer.seal_chunk` for this repository.

        Returns:
            ``True`` while the pack is below its target size, ``False`` once it reached it (call
            `finish`; adding more still works and grows the pack past its target).

        Raises:
            ConfigurationError: the chunk is already in this pack, or its blob is too short or too
                long to be a sealed chunk.
        """
        if chunk.id in self._ids:
            raise ConfigurationError(f"chunk {chunk.name} is already in this pack")
        length = len(chunk.blob)
        if not OVERHEAD <= length <= _MAX_SEALED_CHUNK or len(chunk.id) != CHUNK_ID_SIZE:
            raise ConfigurationError(f"chunk {chunk.name}: {length} bytes is no sealed chunk")
        self._entries.append(PackEntry(chunk_id=chunk.id, offset=self._length, length=length))
        self._ids.add(chunk.id)
        self._pieces.append(chunk.blob)
        self._length += length
        return self.unpadded_size < self._target_size

    def finish(self) -> Pack:
        """Seal the header and trailer, pad, name the pack, and start an empty one.

        Returns:
            The pack: id, bytes and entries.

        Raises:
            ConfigurationError: the pack holds no chunk.
        """
        if not self._entries:
            raise ConfigurationError("a pack needs at least one chunk")
        pieces, header_offset, entries = self._pieces, self._length, tuple(self._entries)
        self._pieces, self._length, self._entries, self._ids = [], 0, [], set()
        header = self._sealer.seal(
            Kind.PACK_HEADER, PACK_NAME, encode_pack_header(entries), compress=False
        )
        unpadded = header_offset + len(header) + TRAILER_SIZE
        trailer = self._sealer.seal(
            Kind.PACK_TRAILER,
            PACK_NAME,
            _TRAILER.pack(header_offset, len(header)),
            compress=False,
        )
        # One copy of every byte, into an immutable object every target's write takes as is.
        blob = b"".join([*pieces, header, bytes(padme(unpadded) - unpadded), trailer])
        return Pack(id=hashlib.sha256(blob).digest(), blob=blob, entries=entries)


# -- reading --------------------------------------------------------------------------------------


def read_pack_header(sealer: Sealer, source: Source) -> PackHeader:
    """Read a pack's trailer, then its header, by two ranged reads (three without a known size).

    The pack id is not checked (that needs the whole object: `check_pack`); every chunk read by
    the entries returned authenticates on its own.

    Args:
        sealer: the repository's sealer.
        source: the pack's bytes, or a `RangeReader` (`TargetRanges` for a stored pack).

    Returns:
        The pack's size, header position and entries.

    Raises:
        IntegrityError: the trailer or header fails authentication (any changed byte, the version
            byte included), the object is shorter than a trailer, or its size is not the one its
            trailer implies (a truncated or extended pack).
        FormatError: an authenticated trailer or header that is invalid (see
            `decode_pack_header`).
        StorageError: the target failed (from `TargetRanges`).
    """
    ranges = _ranges(source)
    size = ranges.size()
    if size < TRAILER_SIZE:
        raise IntegrityError(
            f"pack of {size} bytes is shorter than its {TRAILER_SIZE}-byte trailer"
        )
    trailer = _open_part(
        sealer, Kind.PACK_TRAILER, PACK_NAME, _read_exact(ranges, size - TRAILER_SIZE, size), 64
    )
    if len(trailer) != _TRAILER.size:
        raise FormatError(f"pack trailer holds {len(trailer)} bytes, not {_TRAILER.size}")
    header_offset, header_length = _TRAILER.unpack(trailer)
    if header_length < OVERHEAD or header_length > _MAX_HEADER_PLAINTEXT + OVERHEAD:
        raise FormatError(f"pack trailer names a header of {header_length} bytes")
    if padme(header_offset + header_length + TRAILER_SIZE) != size:
        raise IntegrityError(
            f"pack of {size} bytes does not have the padded size its trailer implies "
            "(truncated or extended)"
        )
    plaintext = _open_part(
        sealer,
        Kind.PACK_HEADER,
        PACK_NAME,
        _read_exact(ranges, header_offset, header_offset + header_length),
        _MAX_HEADER_PLAINTEXT,
    )
    entries = decode_pack_header(plaintext, header_offset)
    if header_length != header_size(len(entries)):
        raise FormatError("pack header is not stored uncompressed")
    return PackHeader(
        size=size, header_offset=header_offset, header_length=header_length, entries=entries
    )


def check_pack(sealer: Sealer, pack_id: bytes, blob: bytes | bytearray | memoryview) -> PackHeader:
    """Check a whole pack: its name, trailer, header, padding and every chunk inside.

    Args:
        sealer: the repository's sealer.
        pack_id: the id the pack is stored under.
        blob: the whole stored object.

    Returns:
        The pack's header.

    Raises:
        IntegrityError: the bytes do not hash to ``pack_id`` (any changed, missing or extra byte,
            or a pack stored under another name), or a chunk fails to open under its id.
        FormatError: the bytes hash to their name but are invalid: a bad header, non-zero
            padding, or a chunk whose payload does not decode.
    """
    if not hmac.compare_digest(hashlib.sha256(blob).digest(), pack_id):
        raise IntegrityError("pack does not hash to its name (altered, truncated or misplaced)")
    header = read_pack_header(sealer, blob)
    view = memoryview(blob)
    padding = view[header.header_offset + header.header_length : header.size - TRAILER_SIZE]
    if padding != bytes(len(padding)):
        raise FormatError("pack padding is not all zero bytes")
    for entry in header.entries:
        open_chunk_from_pack(sealer, entry.chunk_id, view[entry.offset : entry.end])
    return header


def open_chunk_from_pack(
    sealer: Sealer,
    chunk_id: bytes,
    blob: bytes | bytearray | memoryview,
    *,
    max_size: int = MAX_CHUNK_SIZE,
) -> bytes:
    """Open a sealed chunk read from a pack's range and check its id.

    Args:
        sealer: the repository's sealer.
        chunk_id: the id the header or index gives for the range.
        blob: the range's bytes.
        max_size: the largest plaintext accepted.

    Returns:
        The chunk's plaintext.

    Raises:
        IntegrityError: the range is not the sealed chunk ``chunk_id`` (any changed byte, the
            version byte included, or a range pointing elsewhere, into the padding for instance).
        FormatError: the chunk authenticated but its payload does not decode.
    """
    if len(blob) == 0 or blob[0] != FORMAT_VERSION:
        raise IntegrityError(
            f"chunk {chunk_id.hex()} failed authentication: no sealed object at its offset"
        )
    return sealer.open_chunk(chunk_id, blob, max_size=max_size)


def read_chunk(
    sealer: Sealer,
    source: Source,
    entry: PackEntry,
    *,
    max_size: int = MAX_CHUNK_SIZE,
) -> bytes:
    """Read one chunk from a pack by its range (one ranged read) and open it.

    Args:
        sealer: the repository's sealer.
        source: the pack (a `RangeReader`, or its bytes).
        entry: where the chunk lies (from `read_pack_header` or an index).
        max_size: the largest plaintext accepted.

    Returns:
        The chunk's plaintext.

    Raises:
        IntegrityError: the range lies past the pack's end or does not hold the chunk.
        FormatError: the chunk authenticated but its payload does not decode.
        StorageError: the target failed (from `TargetRanges`).
    """
    ranges = _ranges(source)
    if entry.end > ranges.size() - TRAILER_SIZE:
        raise IntegrityError(_SHORT_READ)
    return open_chunk_from_pack(
        sealer, entry.chunk_id, _read_exact(ranges, entry.offset, entry.end), max_size=max_size
    )
