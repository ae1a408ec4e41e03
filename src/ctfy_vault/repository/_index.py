"""Format v2 index objects: which pack holds each chunk, at which offset, with which length.

An index object is sealed (kind `Kind.INDEX`, name ``"index"``, never compressed), immutable and
written create-only under ``index/<SHA-256 of the stored object in hex>``; a repository has several
(one per backup, say), and a reader merges them (`MergedIndex`). Its plaintext is::

    u8 2 || u32 P || P x record || zero fill
    record = 32-byte pack id || u64 pack size || u32 n || n x entry
    entry  = 32-byte chunk id || u64 offset || u32 sealed length

The zero fill makes the stored object `padme` of its unpadded length. Records are sorted by pack
id and list every chunk of their pack in pack order, exactly as its header does, so an index can be
rebuilt from the packs and a record fixes where every chunk, the header and the padding lie.
``docs/format.md`` gives every byte.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import attrs

from ctfy_vault.crypto import CHUNK_ID_SIZE, OVERHEAD, Kind, Sealer
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError
from ctfy_vault.repository._packs import (
    PACK_VERSION,
    TRAILER_SIZE,
    Pack,
    PackEntry,
    header_size,
    padme,
)

__all__ = [
    "INDEX_NAME",
    "MAX_INDEX_SIZE",
    "IndexBuilder",
    "IndexObject",
    "IndexedPack",
    "Location",
    "MergedIndex",
    "decode_index",
    "encode_index",
]

#: The name bound into the associated data of every index object.
INDEX_NAME: Final = "index"
#: The largest index plaintext written or read: 512 MiB, about 12 million chunks.
MAX_INDEX_SIZE: Final = 2**29

_HEAD: Final = struct.Struct(">BI")
_PACK: Final = struct.Struct(f">{CHUNK_ID_SIZE}sQI")
_ENTRY: Final = struct.Struct(f">{CHUNK_ID_SIZE}sQI")
_PLACE: Final = struct.Struct(">QI")


@attrs.frozen
class IndexedPack:
    """One record of an index object: a pack's id, stored size and every chunk in it.

    Attributes:
        pack_id: the pack's 32-byte id (SHA-256 of the stored pack).
        size: the stored pack's size (a `padme` value).
        entries: the pack's chunks in pack order, as its header lists them.
    """

    pack_id: bytes
    size: int
    entries: tuple[PackEntry, ...]

    @classmethod
    def of(cls, pack: Pack) -> IndexedPack:
        """Return the record of a pack just built."""
        return cls(pack_id=pack.id, size=pack.size, entries=pack.entries)


@attrs.frozen
class IndexObject:
    """An encoded index object: its id (SHA-256 of `blob`), the bytes to store, and its records."""

    id: bytes
    blob: bytearray = attrs.field(repr=False, hash=False)
    packs: tuple[IndexedPack, ...]

    @property
    def name(self) -> str:
        """The id in lowercase hex, the last segment of ``index/<id>``."""
        return self.id.hex()


def _record_problem(pack: IndexedPack, seen: set[bytes]) -> str | None:
    """Say what is wrong with one record (``None`` when nothing), adding its chunk ids to ``seen``.

    A record must describe a pack `PackBuilder` could have written: chunks of at least a sealed
    envelope each, back to back from offset 0, then a header of the size their count implies, and
    the padded size that follows; every chunk id once in the whole index object.
    """
    where = f"index record of pack {pack.pack_id.hex()}"
    if len(pack.pack_id) != CHUNK_ID_SIZE:
        return f"index record: a pack id of {len(pack.pack_id)} bytes"
    if not pack.entries:
        return f"{where} lists no chunk"
    position = 0
    for entry in pack.entries:
        problem = _entry_problem(entry, position, seen)
        if problem is not None:
            return f"{where}: {problem}"
        seen.add(entry.chunk_id)
        position = entry.end
    expected = padme(position + header_size(len(pack.entries)) + TRAILER_SIZE)
    if pack.size != expected:
        return f"{where}: size {pack.size}, but its chunks make a pack of {expected} bytes"
    return None


def _entry_problem(entry: PackEntry, position: int, seen: set[bytes]) -> str | None:
    if len(entry.chunk_id) != CHUNK_ID_SIZE:
        return f"a chunk id of {len(entry.chunk_id)} bytes"
    if entry.offset != position:
        return f"a chunk at {entry.offset} where {position} was expected"
    if entry.length < OVERHEAD:
        return f"a chunk of {entry.length} bytes is no sealed chunk"
    if entry.chunk_id in seen:
        return f"chunk {entry.chunk_id.hex()} is listed twice in one index object"
    return None


def _encode_body(packs: Sequence[IndexedPack]) -> bytearray:
    body = bytearray(_HEAD.pack(PACK_VERSION, len(packs)))
    for pack in packs:
        body += _PACK.pack(pack.pack_id, pack.size, len(pack.entries))
        for entry in pack.entries:
            body += _ENTRY.pack(entry.chunk_id, entry.offset, entry.length)
    return body


def encode_index(sealer: Sealer, packs: Iterable[IndexedPack]) -> IndexObject:
    """Encode, pad and seal an index object for some packs.

    Args:
        sealer: the repository's sealer.
        packs: one record per pack, in any order (they are sorted by pack id).

    Returns:
        The index object: its id, the bytes to store under ``index/<id>``, and its records.

    Raises:
        ConfigurationError: no pack, one pack twice, a chunk id twice, a record `decode_index`
            would refuse, or more than `MAX_INDEX_SIZE` bytes.
    """
    ordered = tuple(sorted(packs, key=lambda p: p.pack_id))
    if not ordered:
        raise ConfigurationError("an index object needs at least one pack")
    seen: set[bytes] = set()
    for before, pack in zip((None, *ordered), ordered, strict=False):
        if before is not None and before.pack_id == pack.pack_id:
            raise ConfigurationError(f"pack {pack.pack_id.hex()} is listed twice")
        problem = _record_problem(pack, seen)
        if problem is not None:
            raise ConfigurationError(problem)
    body = _encode_body(ordered)
    stored = padme(len(body) + OVERHEAD)
    if stored - OVERHEAD > MAX_INDEX_SIZE:
        raise ConfigurationError(f"an index object may hold at most {MAX_INDEX_SIZE} bytes")
    body += bytes(stored - OVERHEAD - len(body))
    blob = sealer.seal(Kind.INDEX, INDEX_NAME, memoryview(body), compress=False)
    return IndexObject(id=hashlib.sha256(blob).digest(), blob=blob, packs=ordered)


def decode_index(
    sealer: Sealer, index_id: bytes, blob: bytes | bytearray | memoryview
) -> tuple[IndexedPack, ...]:
    """Check and decode an index object read from ``index/<index_id in hex>``.

    Args:
        sealer: the repository's sealer.
        index_id: the id the object is stored under.
        blob: the stored bytes.

    Returns:
        Its records, sorted by pack id.

    Raises:
        IntegrityError: the bytes do not hash to ``index_id`` (any changed, missing or extra byte,
            or an object stored under another name), or they fail authentication.
        FormatError: the bytes hash to their name but cannot be read: an unknown envelope or
            index version, a record that ends early, packs out of order or twice, a chunk id
            twice, a record that describes no pack `PackBuilder` writes (a chunk past the pack's
            end or in its padding, a size that is not the padded one), padding that is not zeros
            or not of the padded length.
    """
    if not hmac.compare_digest(hashlib.sha256(blob).digest(), index_id):
        raise IntegrityError("index object does not hash to its name (altered or misplaced)")
    plaintext = memoryview(sealer.open(Kind.INDEX, INDEX_NAME, blob, max_size=MAX_INDEX_SIZE))
    if len(plaintext) < _HEAD.size:
        raise FormatError("index object is shorter than its version and count")
    version, count = _HEAD.unpack_from(plaintext)
    if version != PACK_VERSION:
        raise FormatError(f"index object has version {version}; this release reads {PACK_VERSION}")
    if count == 0:
        raise FormatError("index object lists no pack")
    packs: list[IndexedPack] = []
    seen: set[bytes] = set()
    position = _HEAD.size
    for _ in range(count):
        if position + _PACK.size > len(plaintext):
            raise FormatError("index object ends inside a pack record")
        pack_id, size, entries = _PACK.unpack_from(plaintext, position)
        position += _PACK.size
        end = position + _ENTRY.size * entries
        if end > len(plaintext):
            raise FormatError("index object ends inside a pack record")
        pack = IndexedPack(
            pack_id=pack_id,
            size=size,
            entries=tuple(
                PackEntry(chunk_id=chunk_id, offset=offset, length=length)
                for chunk_id, offset, length in _ENTRY.iter_unpack(plaintext[position:end])
            ),
        )
        position = end
        if packs and packs[-1].pack_id >= pack_id:
            raise FormatError("index object: pack records are not in ascending, unique id order")
        problem = _record_problem(pack, seen)
        if problem is not None:
            raise FormatError(problem)
        packs.append(pack)
    if len(blob) != padme(position + OVERHEAD) or len(plaintext) != len(blob) - OVERHEAD:
        raise FormatError("index object is not padded to the size its content implies")
    if plaintext[position:] != bytes(len(plaintext) - position):
        raise FormatError("index object padding is not all zero bytes")
    return tuple(packs)


@attrs.define
class IndexBuilder:
    """Collects the records of the packs a writer stored, then encodes one index object."""

    _packs: dict[bytes, IndexedPack] = attrs.field(init=False, factory=dict, repr=False)
    _chunks: set[bytes] = attrs.field(init=False, factory=set, repr=False)

    @property
    def packs(self) -> int:
        """How many packs the index object being built lists."""
        return len(self._packs)

    @property
    def chunks(self) -> int:
        """How many chunks the index object being built lists."""
        return len(self._chunks)

    def add(self, pack: Pack | IndexedPack) -> None:
        """List a pack (its record is checked as `decode_index` would).

        Raises:
            ConfigurationError: the pack, or one of its chunks, is already listed, or the record
                describes no pack `PackBuilder` writes.
        """
        record = IndexedPack.of(pack) if isinstance(pack, Pack) else pack
        if record.pack_id in self._packs:
            raise ConfigurationError(f"pack {record.pack_id.hex()} is already listed")
        mine: set[bytes] = set()
        problem = _record_problem(record, mine)
        if problem is not None:
            raise ConfigurationError(problem)
        again = mine & self._chunks
        if again:
            raise ConfigurationError(f"chunk {min(again).hex()} is already listed in another pack")
        self._packs[record.pack_id] = record
        self._chunks |= mine

    def finish(self, sealer: Sealer) -> IndexObject:
        """Encode and seal the index object, and start an empty one.

        Raises:
            ConfigurationError: no pack was added, or the object would be too large.
        """
        packs, self._packs, self._chunks = tuple(self._packs.values()), {}, set()
        return encode_index(sealer, packs)


# -- merged -----------------------------------------------------------------------------------------


@attrs.frozen
class Location:
    """Where a chunk can be read: the pack, its stored size, and the chunk's range in it."""

    chunk_id: bytes
    pack_id: bytes
    pack_size: int
    offset: int
    length: int

    @property
    def entry(self) -> PackEntry:
        """The range as a `PackEntry`, for `read_chunk`."""
        return PackEntry(chunk_id=self.chunk_id, offset=self.offset, length=self.length)


def _array(typecode: str, values: Iterable[int] = ()) -> array[int]:
    return array(typecode, values)


@attrs.frozen(eq=True)
class MergedIndex:
    """Several index objects merged: chunk id -> the packs, offsets and lengths that hold it.

    Built once (`merge`), then read-only and safe to share between threads. A chunk listed in more
    than one pack keeps every location, sorted by (pack id, offset): `get` gives the first (the
    same whatever the order the index objects were merged in), `locations` all, for falling back.

    Memory is sorted parallel arrays, not one object per chunk: 32 bytes of id, an 8-byte prefix
    for the binary search, a 4-byte pack number, an 8-byte offset and a 4-byte length, i.e. about
    56 bytes per location (56 MiB per million chunks; see ``docs/format.md``).
    """

    _ids: bytes = attrs.field(repr=False, alias="ids")
    _prefixes: array[int] = attrs.field(repr=False, alias="prefixes")
    _packs: array[int] = attrs.field(repr=False, alias="packs")
    _offsets: array[int] = attrs.field(repr=False, alias="offsets")
    _lengths: array[int] = attrs.field(repr=False, alias="lengths")
    _pack_ids: tuple[bytes, ...] = attrs.field(repr=False, alias="pack_ids")
    _pack_sizes: array[int] = attrs.field(repr=False, alias="pack_sizes")
    _unique: int = attrs.field(alias="unique")

    @classmethod
    def merge(cls, indexes: Iterable[Iterable[IndexedPack]]) -> MergedIndex:
        """Merge index objects (each an iterable of its records, from `decode_index`).

        Identical locations listed by several objects count once.

        Raises:
            FormatError: one pack id is listed with two different sizes.
        """
        sizes: dict[bytes, int] = {}
        records: list[bytes] = []
        for index in indexes:
            for pack in index:
                if sizes.setdefault(pack.pack_id, pack.size) != pack.size:
                    raise FormatError(
                        f"pack {pack.pack_id.hex()} is listed with sizes {sizes[pack.pack_id]} "
                        f"and {pack.size}"
                    )
                records.extend(
                    e.chunk_id + pack.pack_id + _PLACE.pack(e.offset, e.length)
                    for e in pack.entries
                )
        # Sorted backwards and popped, so each record is freed as its arrays' entry is made: the
        # peak is the records or the arrays, not both.
        records.sort(reverse=True)
        pack_ids = tuple(sorted(sizes))
        number = {pack_id: n for n, pack_id in enumerate(pack_ids)}
        ids = bytearray()
        prefixes, packs = _array("Q"), _array("I")
        offsets, lengths = _array("Q"), _array("I")
        previous = b""
        unique = 0
        while records:
            record = records.pop()
            if record == previous:
                continue
            chunk_id = record[:CHUNK_ID_SIZE]
            if chunk_id != previous[:CHUNK_ID_SIZE]:
                unique += 1
            previous = record
            ids += chunk_id
            prefixes.append(int.from_bytes(record[:8], "big"))
            packs.append(number[record[CHUNK_ID_SIZE : 2 * CHUNK_ID_SIZE]])
            offset, length = _PLACE.unpack_from(record, 2 * CHUNK_ID_SIZE)
            offsets.append(offset)
            lengths.append(length)
        return cls(
            ids=bytes(ids),  # the records are gone by now; the copy drops bytearray's slack
            prefixes=prefixes,
            packs=packs,
            offsets=offsets,
            lengths=lengths,
            pack_ids=pack_ids,
            pack_sizes=_array("Q", (sizes[p] for p in pack_ids)),
            unique=unique,
        )

    def __len__(self) -> int:
        """The number of distinct chunk ids."""
        return self._unique

    def __contains__(self, chunk_id: object) -> bool:
        """Whether some pack holds the chunk."""
        return isinstance(chunk_id, bytes) and self._first(chunk_id) >= 0

    @property
    def pack_ids(self) -> tuple[bytes, ...]:
        """Every pack the merged objects list, sorted."""
        return self._pack_ids

    def pack_size(self, pack_id: bytes) -> int | None:
        """The stored size of a listed pack, or ``None`` when no object lists it."""
        at = bisect_left(self._pack_ids, pack_id)
        if at < len(self._pack_ids) and self._pack_ids[at] == pack_id:
            return self._pack_sizes[at]
        return None

    def chunk_ids(self) -> Iterator[bytes]:
        """Yield every distinct chunk id, in ascending order."""
        previous = b""
        for at in range(0, len(self._ids), CHUNK_ID_SIZE):
            chunk_id = self._ids[at : at + CHUNK_ID_SIZE]
            if chunk_id != previous:
                yield chunk_id
                previous = chunk_id

    def get(self, chunk_id: bytes) -> Location | None:
        """The location to read a chunk from first, or ``None`` when no pack holds it."""
        at = self._first(chunk_id)
        return None if at < 0 else self._location(at)

    def locations(self, chunk_id: bytes) -> tuple[Location, ...]:
        """Every location of a chunk, sorted by (pack id, offset); empty when none holds it."""
        at = self._first(chunk_id)
        found: list[Location] = []
        while 0 <= at < len(self._prefixes) and self._id(at) == chunk_id:
            found.append(self._location(at))
            at += 1
        return tuple(found)

    def _id(self, at: int) -> bytes:
        return self._ids[at * CHUNK_ID_SIZE : (at + 1) * CHUNK_ID_SIZE]

    def _first(self, chunk_id: bytes) -> int:
        if len(chunk_id) != CHUNK_ID_SIZE:
            return -1
        prefix = int.from_bytes(chunk_id[:8], "big")
        at = bisect_left(self._prefixes, prefix)
        # Ids sharing an 8-byte prefix are rare and sorted, so a short scan settles them.
        while at < len(self._prefixes) and self._prefixes[at] == prefix:
            here = self._id(at)
            if here == chunk_id:
                return at
            if here > chunk_id:
                break
            at += 1
        return -1

    def _location(self, at: int) -> Location:
        pack = self._packs[at]
        return Location(
            chunk_id=self._id(at),
            pack_id=self._pack_ids[pack],
            pack_size=self._pack_sizes[pack],
            offset=self._offsets[at],
            length=self._lengths[at],
        )
