"""Format v2 packs: chunks round-trip by range, and every kind of damage fails with its exact error."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.crypto import Kind, Sealer
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError
from ctfy_vault.repository import (
    DEFAULT_PACK_SIZE,
    MAX_PACK_SIZE,
    MIN_PACK_SIZE,
    PACK_NAME,
    TRAILER_SIZE,
    PackBuilder,
    PackEntry,
    TargetRanges,
    check_pack,
    header_size,
    open_chunk_from_pack,
    pack_key,
    padme,
    read_chunk,
    read_pack_header,
)
from ctfy_vault.storage import Target
from ctfy_vault.testing import memory_target
from tests.support.pack_strategies import (
    SMALL_PACK,
    build_pack,
    chunk_plaintexts,
    fixed_sealer,
    raw_header,
    raw_pack,
    sealers,
    sha256,
)

SEALER = fixed_sealer()


def _read_all(sealer: Sealer, blob: bytes | bytearray) -> list[bytes]:
    """Read a pack the way restore will: trailer, header, then each chunk by its range."""
    header = read_pack_header(sealer, blob)
    return [read_chunk(sealer, blob, entry) for entry in header.entries]


# -- round trips ---------------------------------------------------------------------------------


@given(sealers, chunk_plaintexts)
def test_any_chunks_round_trip_through_a_pack(sealer: Sealer, plaintexts: list[bytes]) -> None:
    """Every chunk added comes back by its range; the header lists what the builder reported."""
    chunks = [sealer.seal_chunk(p) for p in plaintexts]
    pack = build_pack(sealer, chunks)
    assert pack.id == sha256(pack.blob)
    assert [e.chunk_id for e in pack.entries] == [c.id for c in chunks]
    header = read_pack_header(sealer, bytes(pack.blob))
    assert header.entries == pack.entries
    assert header.size == pack.size
    assert _read_all(sealer, pack.blob) == plaintexts
    for entry, chunk in zip(pack.entries, chunks, strict=True):
        assert pack.blob[entry.offset : entry.end] == chunk.blob  # the chunk's own bytes, verbatim
    assert check_pack(sealer, pack.id, pack.blob) == header


@given(chunk_plaintexts, st.integers(MIN_PACK_SIZE, 3 * MIN_PACK_SIZE))
def test_the_builder_signals_full_and_starts_the_next_pack(
    plaintexts: list[bytes], target: int
) -> None:
    """``add`` is False exactly once the unpadded pack reaches its target; ``finish`` restarts."""
    builder = PackBuilder(SEALER, target_size=target)
    packs = []
    for plaintext in plaintexts:
        chunk = SEALER.seal_chunk(plaintext)
        room = builder.add(chunk)
        assert chunk.id in builder
        assert room == (builder.unpadded_size < target)
        if not room:
            packs.append(builder.finish())
            assert builder.count == 0
    if builder.count:
        packs.append(builder.finish())
    for pack in packs[:-1]:
        unpadded = sum(e.length for e in pack.entries) + header_size(len(pack.entries))
        assert unpadded + TRAILER_SIZE >= target
    stored = [e.chunk_id for pack in packs for e in pack.entries]
    assert stored == [SEALER.chunk_id(p) for p in plaintexts]
    assert [p for pack in packs for p in _read_all(SEALER, pack.blob)] == plaintexts


@pytest.mark.parametrize("where", ["memory", "local"])
def test_a_stored_pack_reads_by_ranges_from_a_target(tmp_path: Path, where: str) -> None:
    """A pack on a target gives its header and each chunk by ranged reads, with or without size."""
    target = memory_target() if where == "memory" else Target.from_url(str(tmp_path / "t"))
    plaintexts = [os.urandom(n) for n in (10, 2000, 5000)]
    pack = build_pack(SEALER, [SEALER.seal_chunk(p) for p in plaintexts])
    key = pack_key(pack.id)
    target.write(key, pack.blob)
    header = read_pack_header(SEALER, TargetRanges(target, key))
    assert header.entries == pack.entries
    known = TargetRanges(target, key, known_size=pack.size)
    assert [read_chunk(SEALER, known, e) for e in header.entries] == plaintexts
    assert check_pack(SEALER, pack.id, target.read(key)) == header


# -- sizes ---------------------------------------------------------------------------------------


@given(sealers, chunk_plaintexts)
def test_a_stored_pack_size_is_the_padded_size_of_chunks_header_and_trailer(
    sealer: Sealer, plaintexts: list[bytes]
) -> None:
    """The stored size is ``padme(chunks + header + trailer)``: it depends on no chunk's size."""
    pack = build_pack(sealer, [sealer.seal_chunk(p) for p in plaintexts])
    chunks = sum(e.length for e in pack.entries)
    assert pack.size == padme(chunks + header_size(len(pack.entries)) + TRAILER_SIZE)
    assert padme(pack.size) == pack.size


def test_different_splits_of_one_total_store_the_same_size() -> None:
    """Chunks of 968+968, 2012 or 2010 bytes all make packs of 2176 bytes."""
    splits = [[968, 968], [2012], [2010]]
    packs = [build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in s]) for s in splits]
    # Sealed lengths 1000+1000 (+ a 125-byte header) and 2044 (+ an 81-byte header) both give an
    # unpadded 2173 bytes; 2042 + 81 + 48 = 2171. All three pad to 2176.
    assert [sum(e.length for e in p.entries) for p in packs] == [2000, 2044, 2042]
    assert {p.size for p in packs} == {2176}


# -- damage: truncation, extension, flipped bytes, another name ----------------------------------


@st.composite
def packs(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    """A pack's id and bytes, and the plaintexts inside."""
    plaintexts = draw(chunk_plaintexts)
    pack = build_pack(SEALER, [SEALER.seal_chunk(p) for p in plaintexts])
    return pack.id, bytes(pack.blob), plaintexts


@given(packs(), st.data())
def test_a_truncated_pack_fails_with_an_integrity_error(
    pack: tuple[bytes, bytes, list[bytes]], data: st.DataObject
) -> None:
    """Cutting any number of bytes off the end fails the range read and the whole-pack check."""
    pack_id, blob, _ = pack
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(IntegrityError):
        read_pack_header(SEALER, blob[:cut])
    with pytest.raises(IntegrityError):
        check_pack(SEALER, pack_id, blob[:cut])


@given(packs(), st.binary(min_size=1, max_size=100), st.booleans())
def test_an_extended_pack_fails_with_an_integrity_error(
    pack: tuple[bytes, bytes, list[bytes]], extra: bytes, front: bool
) -> None:
    """Bytes added at either end, even a second copy of the trailer, are an integrity error."""
    pack_id, blob, _ = pack
    for longer in (extra + blob if front else blob + extra, blob + blob[-TRAILER_SIZE:]):
        with pytest.raises(IntegrityError):
            read_pack_header(SEALER, longer)
        with pytest.raises(IntegrityError):
            check_pack(SEALER, pack_id, longer)


@given(packs(), st.data(), st.integers(1, 255))
def test_a_flipped_byte_anywhere_fails_with_an_integrity_error(
    pack: tuple[bytes, bytes, list[bytes]], data: st.DataObject, mask: int
) -> None:
    """Any changed byte fails the whole-pack check; outside the padding, range reads fail too."""
    pack_id, blob, plaintexts = pack
    header = read_pack_header(SEALER, blob)
    at = data.draw(st.integers(0, len(blob) - 1))
    damaged = bytearray(blob)
    damaged[at] ^= mask
    with pytest.raises(IntegrityError):
        check_pack(SEALER, pack_id, damaged)
    padding = range(header.header_offset + header.header_length, header.size - TRAILER_SIZE)
    if at in padding:
        # Range readers never read the padding, so what they return is still authentic.
        assert _read_all(SEALER, damaged) == plaintexts
    else:
        with pytest.raises(IntegrityError):
            _read_all(SEALER, damaged)


def test_a_pack_under_another_name_fails_with_an_integrity_error() -> None:
    """A pack's bytes stored under another pack's id fail the check and the index's range read."""
    first = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in (100, 3000)])
    second = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in (1500, 1500, 10)])
    target = memory_target()
    target.write(pack_key(second.id), first.blob)  # the provider swapped the objects
    moved = target.read(pack_key(second.id))
    with pytest.raises(IntegrityError, match="hash to its name"):
        check_pack(SEALER, second.id, moved)
    ranges = TargetRanges(target, pack_key(second.id), known_size=second.size)
    for entry in second.entries:  # what the index says is there
        with pytest.raises(IntegrityError):
            read_chunk(SEALER, ranges, entry)


def test_a_version_byte_inside_a_pack_is_damage_not_a_new_format() -> None:
    """A changed version byte of a chunk or trailer is an integrity error, unlike a lone object."""
    pack = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(300))])
    (entry,) = pack.entries
    chunk = bytearray(pack.blob[entry.offset : entry.end])
    chunk[0] = 2
    with pytest.raises(IntegrityError):
        open_chunk_from_pack(SEALER, entry.chunk_id, chunk)
    with pytest.raises(FormatError):  # the v1 rule for an object found by its own name
        SEALER.open_chunk(entry.chunk_id, chunk)
    damaged = bytearray(pack.blob)
    damaged[-TRAILER_SIZE] = 2
    with pytest.raises(IntegrityError):
        read_pack_header(SEALER, damaged)


def test_a_range_past_the_pack_or_in_its_padding_is_an_integrity_error() -> None:
    """A range reaching past the chunks' area, or lying in the padding, holds no sealed chunk."""
    pack = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in (100, 3000)])
    header = read_pack_header(SEALER, pack.blob)
    padding_start = header.header_offset + header.header_length
    assert header.size - TRAILER_SIZE - padding_start >= 64
    chunk_id = pack.entries[0].chunk_id
    for entry in (
        PackEntry(chunk_id=chunk_id, offset=padding_start, length=40),  # in the padding
        PackEntry(chunk_id=chunk_id, offset=pack.size - 40, length=40),  # in the trailer
        PackEntry(chunk_id=chunk_id, offset=pack.size, length=100),  # past the end
        PackEntry(chunk_id=chunk_id, offset=0, length=pack.entries[0].length + 1),  # too long
    ):
        with pytest.raises(IntegrityError):
            read_chunk(SEALER, pack.blob, entry)


# -- authenticated but invalid: format errors ----------------------------------------------------


def _two_chunks() -> tuple[list[bytes], list[PackEntry]]:
    blobs = [bytes(SEALER.seal_chunk(os.urandom(n)).blob) for n in (50, 80)]
    ids = [SEALER.chunk_id(b) for b in blobs]  # any 32 bytes will do for the header checks
    entries = [
        PackEntry(chunk_id=ids[0], offset=0, length=len(blobs[0])),
        PackEntry(chunk_id=ids[1], offset=len(blobs[0]), length=len(blobs[1])),
    ]
    return blobs, entries


@pytest.mark.parametrize(
    "how", ["version", "empty", "gap", "overlap", "twice", "short chunk", "short end", "length"]
)
def test_an_authentic_but_invalid_header_is_a_format_error(how: str) -> None:
    """A header the writer would never write is refused with a format error naming the problem."""
    blobs, entries = _two_chunks()
    a, b = entries
    bad = {
        "version": raw_header(entries, version=3),
        "empty": raw_header([]),
        "gap": raw_header(
            [a, PackEntry(chunk_id=b.chunk_id, offset=b.offset + 1, length=b.length)]
        ),
        "overlap": raw_header([a, PackEntry(chunk_id=b.chunk_id, offset=1, length=b.length)]),
        "twice": raw_header([a, PackEntry(chunk_id=a.chunk_id, offset=b.offset, length=b.length)]),
        "short chunk": raw_header(
            [
                PackEntry(chunk_id=a.chunk_id, offset=0, length=10),
                PackEntry(chunk_id=b.chunk_id, offset=10, length=a.length + b.length - 10),
            ]
        ),
        "short end": raw_header([a]),
        "length": raw_header(entries) + b"\x00",
    }[how]
    blob = raw_pack(SEALER, blobs, bad)
    with pytest.raises(FormatError):
        read_pack_header(SEALER, blob)
    with pytest.raises(FormatError):
        check_pack(SEALER, sha256(blob), blob)


def test_an_authentic_trailer_naming_a_too_short_header_is_a_format_error() -> None:
    """A trailer naming a header shorter than a sealed envelope was written wrongly: a format error."""
    blobs, entries = _two_chunks()
    trailer = struct.pack(">QQ", 130, 31)
    blob = raw_pack(SEALER, blobs, raw_header(entries), trailer_plaintext=trailer)
    with pytest.raises(FormatError, match="header of 31 bytes"):
        read_pack_header(SEALER, blob)


@pytest.mark.parametrize("length", [15, 17])
def test_a_trailer_of_another_size_is_not_found(length: int) -> None:
    """The trailer is the last 48 bytes; one of another size leaves no trailer there: integrity."""
    blobs, entries = _two_chunks()
    blob = raw_pack(SEALER, blobs, raw_header(entries), trailer_plaintext=bytes(length))
    with pytest.raises(IntegrityError):
        read_pack_header(SEALER, blob)


def test_a_compressed_header_is_a_format_error() -> None:
    """The header is stored uncompressed, so its length follows from its count; zstd is refused."""
    blobs = [bytes(40)] * 20  # the header checks never open the chunks
    entries = [
        PackEntry(chunk_id=bytes(31) + bytes([n]), offset=40 * n, length=40) for n in range(20)
    ]
    compressed = SEALER.seal(Kind.PACK_HEADER, PACK_NAME, raw_header(entries))
    assert len(compressed) < header_size(20)
    body = b"".join(blobs) + bytes(compressed)
    unpadded = len(body) + TRAILER_SIZE
    trailer = struct.pack(">QQ", 800, len(compressed))
    blob = (
        body
        + bytes(padme(unpadded) - unpadded)
        + bytes(SEALER.seal(Kind.PACK_TRAILER, PACK_NAME, trailer, compress=False))
    )
    with pytest.raises(FormatError, match="uncompressed"):
        read_pack_header(SEALER, blob)


def test_non_zero_padding_under_a_matching_hash_is_a_format_error() -> None:
    """A pack that hashes to its name but has non-zero padding was written wrongly: a format error."""
    pack = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in (100, 3000)])
    header = read_pack_header(SEALER, pack.blob)
    damaged = bytearray(pack.blob)
    damaged[header.header_offset + header.header_length] = 1
    with pytest.raises(FormatError, match="padding"):
        check_pack(SEALER, sha256(damaged), damaged)


# -- misuse --------------------------------------------------------------------------------------


def test_the_builder_refuses_a_chunk_twice_and_an_empty_pack() -> None:
    """Adding one chunk twice, or finishing with no chunk, is refused before anything is sealed."""
    builder = PackBuilder(SEALER)
    assert builder.target_size == DEFAULT_PACK_SIZE
    with pytest.raises(ConfigurationError, match="at least one chunk"):
        builder.finish()
    chunk = SEALER.seal_chunk(b"once")
    assert builder.add(chunk)
    with pytest.raises(ConfigurationError, match="already in this pack"):
        builder.add(chunk)
    assert builder.count == 1


@pytest.mark.parametrize("size", [MIN_PACK_SIZE - 1, MAX_PACK_SIZE + 1, 0])
def test_a_target_size_out_of_range_is_refused(size: int) -> None:
    """A pack target size outside 4 KiB to 1 GiB is a configuration error."""
    with pytest.raises(ConfigurationError, match="target size"):
        PackBuilder(SEALER, target_size=size)


def test_the_default_target_is_sixteen_mib() -> None:
    """The default pack target is 16 MiB, and the smallest accepted is what the tests use."""
    assert DEFAULT_PACK_SIZE == 16 * 2**20
    assert SMALL_PACK == MIN_PACK_SIZE
