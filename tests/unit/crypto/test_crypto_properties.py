"""Hypothesis properties of sealing: round trips, and every kind of tampering detected."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ctfy_vault.crypto import Kind, Sealer
from ctfy_vault.exceptions import FormatError, IntegrityError
from tests.support.crypto_strategies import FIXED_REPO_ID, kinds, names, payloads, repo_ids, sealers


@given(sealers(), kinds, names, payloads)
def test_round_trip(sealer: Sealer, kind: Kind, name: str, payload: bytes) -> None:
    """Any payload of any kind opens back to itself under its name."""
    assert sealer.open(kind, name, sealer.seal(kind, name, payload)) == payload


@given(sealers(), st.lists(payloads, max_size=5))
def test_stream_round_trip(sealer: Sealer, pieces: list[bytes]) -> None:
    """A streamed payload opens back to the concatenation of its pieces."""
    blob = sealer.seal_stream(Kind.MANIFEST, "m", iter(pieces))
    _kind, out = sealer.open_stream((Kind.MANIFEST,), "m", blob)
    assert b"".join(out) == b"".join(pieces)


@given(sealers(), payloads)
def test_chunk_round_trip(sealer: Sealer, payload: bytes) -> None:
    """Any chunk opens under its id and equal plaintexts get equal ids."""
    chunk = sealer.seal_chunk(payload)
    assert chunk.id == sealer.chunk_id(payload)
    assert sealer.open_chunk(chunk.id, chunk.blob) == payload


@given(sealers(), kinds, payloads, st.data())
def test_any_flipped_bit_fails(
    sealer: Sealer, kind: Kind, payload: bytes, data: st.DataObject
) -> None:
    """Flipping any one bit fails: a format error in the version byte, an integrity error elsewhere."""
    blob = sealer.seal(kind, "n", payload)
    position = data.draw(st.integers(0, len(blob) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    blob[position] ^= 1 << bit
    expected = FormatError if position == 0 else IntegrityError
    with pytest.raises(expected):
        sealer.open(kind, "n", blob)


@given(sealers(), kinds, payloads, st.data())
def test_any_truncation_fails(
    sealer: Sealer, kind: Kind, payload: bytes, data: st.DataObject
) -> None:
    """Any strict prefix fails with the integrity error (the empty prefix: a format error)."""
    blob = sealer.seal(kind, "n", payload)
    length = data.draw(st.integers(0, len(blob) - 1), label="length")
    expected = FormatError if length == 0 else IntegrityError
    with pytest.raises(expected):
        sealer.open(kind, "n", blob[:length])


@given(sealers(), kinds, payloads, st.binary(min_size=1, max_size=64))
def test_any_extension_fails(sealer: Sealer, kind: Kind, payload: bytes, extra: bytes) -> None:
    """Appending any bytes fails with the integrity error."""
    blob = sealer.seal(kind, "n", payload)
    with pytest.raises(IntegrityError):
        sealer.open(kind, "n", bytes(blob) + extra)


@given(sealers(), st.tuples(kinds, names), st.tuples(kinds, names), repo_ids, payloads)
def test_moved_blob_fails(
    sealer: Sealer,
    place: tuple[Kind, str],
    other_place: tuple[Kind, str],
    other_repo: bytes,
    payload: bytes,
) -> None:
    """A blob opened under another name, kind or repository fails with the integrity error."""
    assume(place != other_place)
    kind, name = place
    blob = sealer.seal(kind, name, payload)
    with pytest.raises(IntegrityError):
        sealer.open(*other_place, blob)
    assume(other_repo != sealer.repo_id)
    moved = Sealer(repo_id=other_repo, keys=sealer.keys, cipher=sealer.cipher)
    with pytest.raises(IntegrityError):
        moved.open(kind, name, blob)


@given(sealers(), payloads, payloads)
def test_swapped_chunks_fail(sealer: Sealer, first: bytes, second: bytes) -> None:
    """Two chunks' blobs swapped between their ids both fail."""
    assume(first != second)
    one, two = sealer.seal_chunk(first), sealer.seal_chunk(second)
    with pytest.raises(IntegrityError):
        sealer.open_chunk(one.id, two.blob)
    with pytest.raises(IntegrityError):
        sealer.open_chunk(two.id, one.blob)


@given(payloads, st.data())
def test_plaintext_repository_detects_any_flipped_bit(payload: bytes, data: st.DataObject) -> None:
    """Plaintext repositories still detect any single accidental bit flip."""
    plain = Sealer.plaintext(repo_id=FIXED_REPO_ID)
    blob = plain.seal(Kind.CHUNK, "n", payload)
    position = data.draw(st.integers(1, len(blob) - 1), label="byte")
    blob[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(IntegrityError):
        plain.open(Kind.CHUNK, "n", blob)
