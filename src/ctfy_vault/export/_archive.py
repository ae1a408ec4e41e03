"""Archive writers that hand out their output block by block: zip (zip64) and tar.gz.

Nothing is staged: each writer emits into a `_Sink`, and the caller takes what accumulated after
every source block and passes it on to `Target.write_stream`. So the archive is produced while the
destination pulls it, in the caller's thread, and memory holds about one source block at a time.
A zip written this way cannot be patched afterwards, so every member carries a data descriptor
(its CRC and sizes follow its data), which every zip reader understands.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Literal, Protocol

ArchiveFormat = Literal["zip", "tar.gz"]
Compression = Literal["deflate", "store"]

#: Content types and file suffixes of the two formats.
CONTENT_TYPES: dict[str, str] = {"zip": "application/zip", "tar.gz": "application/gzip"}
SUFFIXES: dict[str, str] = {"zip": ".zip", "tar.gz": ".tar.gz"}

_FILE_MODE = 0o644
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)
_ZIP_END = datetime(2107, 12, 31, 23, 59, 58, tzinfo=UTC)
_EXTENDED_TIMESTAMP = 0x5455
# A member this large gets zip64 sizes up front: its data descriptor cannot grow afterwards.
_ZIP64_ABOVE = 2**31


class _Sink:
    """A write-only, non-seekable file object that keeps what was written until it is taken.

    It also hashes and counts every byte, so the archive's SHA-256 and size are known when the
    last block leaves, without reading the archive back.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pending = 0
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        block = bytes(data)
        if block:
            self._parts.append(block)
            self._pending += len(block)
            self.size += len(block)
            self.sha256.update(block)
        return len(block)

    def flush(self) -> None:
        """Nothing to flush: the consumer takes the bytes."""

    def close(self) -> None:
        """Nothing to close: the consumer owns the stream."""

    @property
    def pending(self) -> int:
        """Bytes written and not yet taken."""
        return self._pending

    def take(self) -> bytes:
        """Return and forget everything written since the last call."""
        parts, self._parts, self._pending = self._parts, [], 0
        return parts[0] if len(parts) == 1 else b"".join(parts)


class ArchiveWriter(Protocol):
    """Adds members to an archive, yielding the archive's bytes as they are produced."""

    sink: _Sink

    def add(
        self, name: str, size: int, modified: datetime | None, blocks: Iterable[bytes]
    ) -> Iterator[bytes]:
        """Add one file of ``size`` bytes (tar needs it up front) from ``blocks``."""
        ...

    def close(self) -> Iterator[bytes]:
        """Finish the archive (zip: the central directory; tar.gz: end blocks and gzip trailer)."""
        ...

    def abort(self) -> None:
        """Release what the writer holds after a failure; nothing more is emitted."""
        ...


def _drain(sink: _Sink) -> Iterator[bytes]:
    if sink.pending:
        yield sink.take()


class ZipWriter:
    """A zip archive with UTF-8 names, data descriptors and zip64 wherever sizes need it."""

    def __init__(self, *, compression: Compression = "deflate", level: int = 6) -> None:
        self.sink = _Sink()
        method = zipfile.ZIP_DEFLATED if compression == "deflate" else zipfile.ZIP_STORED
        # The sink has no tell(): zipfile then writes a data descriptor after each member.
        self._zip = zipfile.ZipFile(
            self.sink,
            "w",
            compression=method,
            compresslevel=level if method == zipfile.ZIP_DEFLATED else None,
            allowZip64=True,
        )

    def add(
        self, name: str, size: int, modified: datetime | None, blocks: Iterable[bytes]
    ) -> Iterator[bytes]:
        """Add one member; see `ArchiveWriter.add`."""
        info = zipfile.ZipInfo(name, _zip_time(modified))
        info.compress_type = self._zip.compression
        info.create_system = 3  # Unix, so unpackers apply the permission bits below
        info.external_attr = (0o100000 | _FILE_MODE) << 16
        info.file_size = size  # lets zipfile choose zip64 headers when the size needs them
        info.extra = _extended_timestamp(modified)
        with self._zip.open(info, "w", force_zip64=size >= _ZIP64_ABOVE) as member:
            for block in blocks:
                member.write(block)
                yield from _drain(self.sink)
        yield from _drain(self.sink)

    def close(self) -> Iterator[bytes]:
        """Write the central directory (zip64 records when there are many members or bytes)."""
        self._zip.close()
        yield from _drain(self.sink)

    def abort(self) -> None:
        """Close quietly; the partial archive only ever reached a write that is being abandoned."""
        with contextlib.suppress(ValueError, OSError, struct.error):
            self._zip.close()


class TarGzWriter:
    """A POSIX.1-2001 (pax) tar archive, gzip-compressed, with UTF-8 names and any file size."""

    def __init__(self, *, level: int = 6) -> None:
        self.sink = _Sink()
        self._gzip = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
        self._offset = 0

    def _emit(self, data: bytes) -> None:
        self._offset += len(data)
        self.sink.write(self._gzip.compress(data))

    def add(
        self, name: str, size: int, modified: datetime | None, blocks: Iterable[bytes]
    ) -> Iterator[bytes]:
        """Add one member; the caller guarantees ``blocks`` add up to exactly ``size`` bytes."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = _FILE_MODE
        info.mtime = int(modified.timestamp()) if modified is not None else 0
        info.type = tarfile.REGTYPE
        self._emit(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        for block in blocks:
            self._emit(block)
            yield from _drain(self.sink)
        padding = -size % tarfile.BLOCKSIZE
        if padding:
            self._emit(b"\0" * padding)
        yield from _drain(self.sink)

    def close(self) -> Iterator[bytes]:
        """Write the two end blocks, pad to a whole record, and end the gzip stream."""
        self._emit(b"\0" * (2 * tarfile.BLOCKSIZE))
        padding = -self._offset % tarfile.RECORDSIZE
        if padding:
            self._emit(b"\0" * padding)
        self.sink.write(self._gzip.flush())
        yield from _drain(self.sink)

    def abort(self) -> None:
        """Nothing to release."""


def writer_for(
    archive_format: ArchiveFormat, *, compression: Compression, level: int
) -> ArchiveWriter:
    """Return a fresh writer for ``archive_format``."""
    if archive_format == "zip":
        return ZipWriter(compression=compression, level=level)
    return TarGzWriter(level=level if compression == "deflate" else 0)


def _zip_time(modified: datetime | None) -> tuple[int, int, int, int, int, int]:
    # Zip's own field has no zone: it gets UTC (the extended timestamp below is exact UTC).
    when = min(max(modified or _ZIP_EPOCH, _ZIP_EPOCH), _ZIP_END).astimezone(UTC)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


def _extended_timestamp(modified: datetime | None) -> bytes:
    # Info-ZIP's "UT" field (0x5455): the modification time as UTC seconds, which unzip applies.
    if modified is None:
        return b""
    seconds = int(modified.timestamp())
    if not 0 <= seconds < 2**31:
        return b""
    return struct.pack("<HHBl", _EXTENDED_TIMESTAMP, 5, 1, seconds)
