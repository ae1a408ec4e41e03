"""Format v2 index objects: round trips, exact errors for damage and invalid records, merging."""

from __future__ import annotations

import itertools
import os
import random
import struct
import tracemalloc
from collections.abc import Sequence

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.crypto import Kind, SealedChunk, Sealer
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError
from ctfy_vault.repository import (
    INDEX_NAME,
    IndexBuilder,
    IndexedPack,
    Location,
    MergedIndex,
    PackEntry,
    TargetRanges,
    decode_index,
    encode_index,
    header_size,
    index_key,
    pack_key,
    padme,
    read_chunk,
    read_pack_header,
)
from ctfy_vault.repository._index import IndexObject
from ctfy_vault.testing import memory_target
from tests.support.pack_strategies import build_pack, chunk_plaintexts, fixed_sealer, sha256

SEALER = fixed_sealer()
OVERHEAD = 32
TRAILER = 48


def _pack_records(plaintext_groups: Sequence[Sequence[bytes]]) -> list[IndexedPack]:
    """One real pack per group of distinct plaintexts, as index records."""
    return [
        IndexedPack.of(build_pack(SEALER, [SEALER.seal_chunk(p) for p in group]))
        for group in plaintext_groups
    ]


@st.composite
def record_sets(draw: st.DrawFn) -> list[IndexedPack]:
    """Records of one to four real packs whose chunks are all distinct."""
    plaintexts = draw(chunk_plaintexts)
    cuts = sorted(draw(st.lists(st.integers(1, len(plaintexts)), max_size=3, unique=True)))
    bounds = [0, *(c for c in cuts if c < len(plaintexts)), len(plaintexts)]
    return _pack_records([plaintexts[a:b] for a, b in itertools.pairwise(bounds)])


def _raw_index(body: bytes, *, pad: bool = True) -> tuple[bytes, bytes]:
    """Seal an index plaintext written by hand from the spec; return its id and bytes."""
    fill = padme(len(body) + OVERHEAD) - OVERHEAD - len(body) if pad else 0
    blob = bytes(SEALER.seal(Kind.INDEX, INDEX_NAME, body + bytes(fill), compress=False))
    return sha256(blob), blob


def _raw_body(packs: Sequence[IndexedPack], *, version: int = 2) -> bytes:
    body = struct.pack(">BI", version, len(packs))
    for pack in packs:
        body += struct.pack(">32sQI", pack.pack_id, pack.size, len(pack.entries))
        body += b"".join(
            struct.pack(">32sQI", e.chunk_id, e.offset, e.length) for e in pack.entries
        )
    return body


# -- round trips ---------------------------------------------------------------------------------


@given(record_sets())
def test_an_index_round_trips_and_is_padded(records: list[IndexedPack]) -> None:
    """``decode(encode(records))`` is the records by pack id; the size is Padmé; the id its hash."""
    index = encode_index(SEALER, reversed(records))
    assert index.id == sha256(index.blob)
    assert padme(len(index.blob)) == len(index.blob)
    assert index.packs == tuple(sorted(records, key=lambda p: p.pack_id))
    assert decode_index(SEALER, index.id, index.blob) == index.packs
    assert bytes(index.blob) == bytes(
        encode_index(fixed_sealer_with_nonce(index.blob[4:16]), records).blob
    )


def fixed_sealer_with_nonce(nonce: bytes | bytearray) -> Sealer:
    """The fixed sealer, drawing the given nonce (the encoding is deterministic otherwise)."""
    return attrs.evolve(SEALER, randbytes=lambda n: bytes(nonce[:n]))


@given(record_sets())
def test_the_builder_encodes_what_encode_index_does(records: list[IndexedPack]) -> None:
    """``IndexBuilder`` lists packs one by one and gives the same records; it restarts empty."""
    builder = IndexBuilder()
    for record in records:
        builder.add(record)
    assert builder.packs == len(records)
    assert builder.chunks == sum(len(r.entries) for r in records)
    index = builder.finish(SEALER)
    assert decode_index(SEALER, index.id, index.blob) == encode_index(SEALER, records).packs
    assert builder.packs == builder.chunks == 0


def test_an_index_is_stored_and_read_under_its_name() -> None:
    """An index object written to ``index/<id>`` reads back and locates chunks in a stored pack."""
    target = memory_target()
    plaintexts = [os.urandom(n) for n in (10, 4000, 300)]
    pack = build_pack(SEALER, [SEALER.seal_chunk(p) for p in plaintexts])
    target.write(pack_key(pack.id), pack.blob)
    builder = IndexBuilder()
    builder.add(pack)
    index = builder.finish(SEALER)
    target.write(index_key(index.id), index.blob)
    merged = MergedIndex.merge([decode_index(SEALER, index.id, target.read(index_key(index.id)))])
    for plaintext in plaintexts:
        location = merged.get(SEALER.chunk_id(plaintext))
        assert location is not None
        ranges = TargetRanges(target, pack_key(location.pack_id), known_size=location.pack_size)
        assert read_chunk(SEALER, ranges, location.entry) == plaintext


# -- damage: integrity errors --------------------------------------------------------------------


@st.composite
def indexes(draw: st.DrawFn) -> IndexObject:
    """An encoded index object."""
    return encode_index(SEALER, draw(record_sets()))


@given(indexes(), st.data(), st.integers(1, 255))
def test_a_flipped_byte_anywhere_in_an_index_is_an_integrity_error(
    index: IndexObject, data: st.DataObject, mask: int
) -> None:
    """Any changed byte, the version byte included, no longer hashes to the name."""
    damaged = bytearray(index.blob)
    damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= mask
    with pytest.raises(IntegrityError):
        decode_index(SEALER, index.id, damaged)


@given(indexes(), st.data())
def test_a_truncated_or_extended_index_is_an_integrity_error(
    index: IndexObject, data: st.DataObject
) -> None:
    """Cutting or appending bytes is an integrity error."""
    cut = data.draw(st.integers(0, len(index.blob) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=64))
    for changed in (index.blob[:cut], index.blob + extra):
        with pytest.raises(IntegrityError):
            decode_index(SEALER, index.id, changed)


def test_an_index_under_another_name_is_an_integrity_error() -> None:
    """An index object's bytes under another object's id fail; so does another repository's."""
    first, second = (encode_index(SEALER, _pack_records([[os.urandom(50)]])) for _ in range(2))
    with pytest.raises(IntegrityError, match="hash to its name"):
        decode_index(SEALER, second.id, first.blob)
    stranger = attrs.evolve(SEALER, repo_id=bytes(16))
    with pytest.raises(IntegrityError):
        decode_index(stranger, first.id, first.blob)


def test_an_unknown_envelope_version_under_a_matching_hash_is_a_format_error() -> None:
    """An object that hashes to its name but has another envelope version is a newer format."""
    index = encode_index(SEALER, _pack_records([[b"v"]]))
    newer = bytearray(index.blob)
    newer[0] = 2
    with pytest.raises(FormatError, match="format version 2"):
        decode_index(SEALER, sha256(newer), newer)


# -- authenticated but invalid: format errors ----------------------------------------------------


def _real() -> tuple[IndexedPack, IndexedPack]:
    a, b = _pack_records([[os.urandom(100), os.urandom(2000)], [os.urandom(500)]])
    return (a, b) if a.pack_id < b.pack_id else (b, a)


def _moved(pack: IndexedPack, at: int, **change: int) -> IndexedPack:
    entries = list(pack.entries)
    old = entries[at]
    entries[at] = PackEntry(
        chunk_id=old.chunk_id,
        offset=change.get("offset", old.offset),
        length=change.get("length", old.length),
    )
    return IndexedPack(
        pack_id=pack.pack_id, size=change.get("size", pack.size), entries=tuple(entries)
    )


def _invalid_body(how: str) -> bytes:  # noqa: PLR0911 - one case per line
    a, b = _real()
    last = len(a.entries) - 1
    end = a.entries[-1].end
    if how == "version":
        return _raw_body([a, b], version=1)
    if how == "no pack":
        return _raw_body([])
    if how == "unsorted":
        return _raw_body([b, a])
    if how == "pack twice":
        return _raw_body([a, a])
    if how == "chunk twice":
        clash = IndexedPack(pack_id=b.pack_id, size=b.size, entries=(a.entries[0],))
        return _raw_body([a, clash] if a.pack_id < b.pack_id else [clash, a])
    if how == "past the pack":
        # The last chunk runs past the pack's end: the record's size cannot be its padded size.
        return _raw_body([_moved(a, last, length=a.size - a.entries[last].offset + 1), b])
    if how == "into the padding":
        # The last chunk starts where the header and padding lie.
        past = end + header_size(len(a.entries))
        return _raw_body([_moved(a, last, offset=past), b])
    if how == "gap":
        return _raw_body([_moved(a, last, offset=a.entries[last].offset + 1), b])
    if how == "short chunk":
        return _raw_body([_moved(a, 0, length=OVERHEAD - 1), b])
    if how == "size":
        return _raw_body([_moved(a, 0, size=a.size + 1), b])
    if how == "no chunk":
        return _raw_body([IndexedPack(pack_id=a.pack_id, size=a.size, entries=()), b])
    if how == "ends early":
        return _raw_body([a, b])[:-5]
    raise AssertionError(how)


INVALID = [
    "version",
    "no pack",
    "unsorted",
    "pack twice",
    "chunk twice",
    "past the pack",
    "into the padding",
    "gap",
    "short chunk",
    "size",
    "no chunk",
    "ends early",
]


@pytest.mark.parametrize("how", INVALID)
def test_an_authentic_but_invalid_index_is_a_format_error(how: str) -> None:
    """An index object the writer would never write (bounds, order, duplicates) is a format error."""
    index_id, blob = _raw_index(_invalid_body(how))
    with pytest.raises(FormatError):
        decode_index(SEALER, index_id, blob)


@pytest.mark.parametrize("how", [h for h in INVALID if h not in {"version", "ends early"}])
def test_the_writer_refuses_what_the_reader_refuses(how: str) -> None:
    """``encode_index`` and ``IndexBuilder`` refuse every record ``decode_index`` would refuse."""
    a, b = _real()
    last = len(a.entries) - 1
    records = {
        "no pack": [],
        "unsorted": [b, a],  # sorted by the encoder: valid
        "pack twice": [a, a],
        "chunk twice": [a, IndexedPack(pack_id=b.pack_id, size=b.size, entries=(a.entries[0],))],
        "past the pack": [_moved(a, last, length=a.size), b],
        "into the padding": [_moved(a, last, offset=a.size - TRAILER - 10), b],
        "gap": [_moved(a, last, offset=a.entries[last].offset + 1), b],
        "short chunk": [_moved(a, 0, length=OVERHEAD - 1), b],
        "size": [_moved(a, 0, size=a.size + 1), b],
        "no chunk": [IndexedPack(pack_id=a.pack_id, size=a.size, entries=()), b],
    }[how]
    if how == "unsorted":
        encode_index(SEALER, records)
        return
    with pytest.raises(ConfigurationError):
        encode_index(SEALER, records)
    if records:
        # The builder takes the good record first, then refuses the bad one.
        order = records if how in {"pack twice", "chunk twice"} else records[::-1]
        builder = IndexBuilder()
        for record in order[:-1]:
            builder.add(record)
        with pytest.raises(ConfigurationError):
            builder.add(order[-1])


@pytest.mark.parametrize("how", ["non-zero", "unpadded", "overpadded"])
def test_padding_other_than_the_writers_is_a_format_error(how: str) -> None:
    """The fill must be zeros and exactly what Padmé adds, so the stored size is always padded."""
    body = _raw_body(list(_real()))
    fill = padme(len(body) + OVERHEAD) - OVERHEAD - len(body)
    assert fill > 0
    plaintext = {
        "non-zero": body + bytes(fill - 1) + b"\x01",
        "unpadded": body,
        "overpadded": body + bytes(fill + 2**12),
    }[how]
    blob = bytes(SEALER.seal(Kind.INDEX, INDEX_NAME, plaintext, compress=False))
    with pytest.raises(FormatError, match="padd"):
        decode_index(SEALER, sha256(blob), blob)


def test_an_authentic_index_entry_reaching_into_the_pack_header_fails_when_read() -> None:
    """A record whose last chunk runs into the header still pads alike; reading it is integrity."""
    target = memory_target()
    pack = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in (100, 3000)])
    target.write(pack_key(pack.id), pack.blob)
    stretched = _moved(IndexedPack.of(pack), 1, length=pack.entries[1].length + 8)
    index_id, blob = _raw_index(_raw_body([stretched]))
    (record,) = decode_index(SEALER, index_id, blob)  # consistent on its own
    location = MergedIndex.merge([[record]]).get(pack.entries[1].chunk_id)
    assert location is not None
    ranges = TargetRanges(target, pack_key(pack.id), known_size=location.pack_size)
    with pytest.raises(IntegrityError):
        read_chunk(SEALER, ranges, location.entry)


def test_an_index_naming_a_longer_pack_than_stored_fails_when_read() -> None:
    """A chunk cut short on a target fails its range read; intact chunks still read by range."""
    target = memory_target()
    pack = build_pack(SEALER, [SEALER.seal_chunk(os.urandom(n)) for n in (100, 3000)])
    merged = MergedIndex.merge([[IndexedPack.of(pack)]])
    first, second = (merged.get(e.chunk_id) for e in pack.entries)
    assert first is not None
    assert second is not None
    key = pack_key(pack.id)
    target.write(key, pack.blob[: second.offset + second.length - 1])
    for size in (None, second.pack_size):
        ranges = TargetRanges(target, key, known_size=size)
        with pytest.raises(IntegrityError):
            read_chunk(SEALER, ranges, second.entry)
        # Each chunk authenticates on its own: one that is whole is still served.
        assert len(read_chunk(SEALER, ranges, first.entry)) == 100
    with pytest.raises(IntegrityError):
        read_pack_header(SEALER, TargetRanges(target, key))


# -- merging -------------------------------------------------------------------------------------

chunk_ids = st.sampled_from([bytes([n]) * 8 + os.urandom(24) for n in range(6)] + [bytes(32)])
pack_ids = st.sampled_from([bytes([0xF0 + n]) * 32 for n in range(4)])


@st.composite
def loose_records(draw: st.DrawFn) -> IndexedPack:
    """A record as `MergedIndex` sees it (merging does not re-check what decoding checked)."""
    ids = draw(st.lists(chunk_ids, min_size=1, max_size=5, unique=True))
    entries, offset = [], 0
    for chunk_id in ids:
        length = draw(st.integers(32, 100))
        entries.append(PackEntry(chunk_id=chunk_id, offset=offset, length=length))
        offset += length
    pack_id = draw(pack_ids)
    return IndexedPack(pack_id=pack_id, size=pack_id[0] * 1000, entries=tuple(entries))


merge_inputs = st.lists(st.lists(loose_records(), max_size=3), max_size=4)


@given(merge_inputs, st.randoms(use_true_random=False))
def test_merging_is_order_independent(indexes: list[list[IndexedPack]], rnd: random.Random) -> None:
    """Shuffling the index objects and their records gives an equal merged index."""
    shuffled = [rnd.sample(index, len(index)) for index in rnd.sample(indexes, len(indexes))]
    assert MergedIndex.merge(indexes) == MergedIndex.merge(shuffled)


@given(merge_inputs)
def test_merging_keeps_every_location_and_picks_the_first_deterministically(
    indexes: list[list[IndexedPack]],
) -> None:
    """Each chunk maps to all its distinct locations, sorted; ``get`` is the smallest."""
    model: dict[bytes, set[tuple[bytes, int, int, int]]] = {}
    for index in indexes:
        for pack in index:
            for e in pack.entries:
                model.setdefault(e.chunk_id, set()).add(
                    (pack.pack_id, e.offset, e.length, pack.size)
                )
    merged = MergedIndex.merge(indexes)
    assert len(merged) == len(model)
    assert list(merged.chunk_ids()) == sorted(model)
    for chunk_id, places in model.items():
        expected = tuple(
            Location(chunk_id=chunk_id, pack_id=p, pack_size=s, offset=o, length=n)
            for p, o, n, s in sorted(places)
        )
        assert chunk_id in merged
        assert merged.locations(chunk_id) == expected
        assert merged.get(chunk_id) == expected[0]
    assert merged.get(b"\x07" * 32) is None
    assert merged.locations(b"\x07" * 32) == ()
    assert b"short" not in merged
    for pack_id in merged.pack_ids:
        assert merged.pack_size(pack_id) == pack_id[0] * 1000
    assert merged.pack_size(b"\x01" * 32) is None


def test_a_pack_listed_with_two_sizes_is_a_format_error() -> None:
    """Two index objects disagreeing about one pack's size cannot both be right."""
    entry = PackEntry(chunk_id=b"c" * 32, offset=0, length=40)
    one = IndexedPack(pack_id=b"p" * 32, size=4096, entries=(entry,))
    other = IndexedPack(pack_id=b"p" * 32, size=8192, entries=(entry,))
    with pytest.raises(FormatError, match="sizes"):
        MergedIndex.merge([[one], [other]])


def test_the_same_chunk_in_two_real_packs_reads_from_either() -> None:
    """A chunk stored in two packs (two writers) is found in both; the second serves as fallback."""
    chunk: SealedChunk = SEALER.seal_chunk(b"shared")
    first = build_pack(SEALER, [chunk, SEALER.seal_chunk(b"one")])
    second = build_pack(SEALER, [SEALER.seal_chunk(b"two"), chunk])
    indexes = [
        decode_index(SEALER, i.id, i.blob)
        for i in (encode_index(SEALER, [IndexedPack.of(p)]) for p in (first, second))
    ]
    merged = MergedIndex.merge(indexes)
    places = merged.locations(chunk.id)
    assert {p.pack_id for p in places} == {first.id, second.id}
    blobs = {first.id: first.blob, second.id: second.blob}
    for place in places:
        assert read_chunk(SEALER, blobs[place.pack_id], place.entry) == b"shared"


# -- memory --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_merged_index_costs_under_64_bytes_per_chunk() -> None:
    """100,000 chunks in 16-chunk packs take under 64 bytes each once merged (about 56)."""
    rnd = random.Random(16)  # noqa: S311 - test data, not secrets
    records = [
        IndexedPack(
            pack_id=rnd.randbytes(32),
            size=16 * 2**20,
            entries=tuple(
                PackEntry(chunk_id=rnd.randbytes(32), offset=n * 2**20, length=2**20)
                for n in range(16)
            ),
        )
        for _ in range(100_000 // 16)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        merged = MergedIndex.merge([records])
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(merged) == 100_000
    assert (after - before) / len(merged) < 64
