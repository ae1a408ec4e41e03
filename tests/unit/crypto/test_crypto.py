"""Sealing, chunk ids and bad input for ``ctfy_vault.crypto``."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from ctfy_vault import crypto
from ctfy_vault.crypto import (
    FORMAT_VERSION,
    HEADER_SIZE,
    OVERHEAD,
    Cipher,
    Kind,
    MasterKeys,
    Sealer,
    new_repo_id,
)
from ctfy_vault.crypto._seal import FLAG_ZSTD, make_aead, seal_payload
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError
from tests.support.crypto_strategies import FIXED_KEYS, FIXED_REPO_ID
from tests.support.paths import DATA

SQL = b"".join(
    b"INSERT INTO contracts (id, name, status) VALUES (%d, 'contract %d', 'active');\n" % (i, i)
    for i in range(2000)
)


@pytest.fixture(params=[Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305], ids=["aes", "chacha"])
def sealer(request: pytest.FixtureRequest) -> Sealer:
    """An encrypted sealer for each supported AEAD."""
    cipher: Cipher = request.param
    return Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS, cipher=cipher)


def _raw_seal(sealer: Sealer, kind: Kind, name: str, payload: bytes, *, flags: int) -> bytearray:
    # A "buggy writer": a valid seal around whatever payload and flags the test wants.
    assert sealer.keys is not None
    return seal_payload(
        make_aead(sealer.cipher, sealer.keys.data_key),
        cipher=sealer.cipher,
        kind=kind,
        flags=flags,
        nonce=bytes(12),
        repo_id=sealer.repo_id,
        name=name.encode(),
        payload=payload,
    )


# -- round trips and layout ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_seal_open_round_trip_for_every_kind(sealer: Sealer, kind: Kind) -> None:
    """Every kind opens back to its plaintext under the same kind and name."""
    blob = sealer.seal(kind, "some/name", SQL)
    assert sealer.open(kind, "some/name", blob) == SQL


def test_header_layout(sealer: Sealer) -> None:
    """Byte 0 is the version, then kind, cipher and flags, then a 12-byte nonce; 32 bytes overhead."""
    data = os.urandom(1024)
    blob = sealer.seal(Kind.MANIFEST, "n", data)
    assert blob[0] == FORMAT_VERSION == 1
    assert blob[1] == Kind.MANIFEST
    assert blob[2] == sealer.cipher
    assert blob[3] == 0  # incompressible: stored as is
    assert len(blob) == len(data) + OVERHEAD == len(data) + HEADER_SIZE + 16


def test_compressible_payload_is_compressed(sealer: Sealer) -> None:
    """A compressible payload sets the zstd flag and shrinks."""
    blob = sealer.seal(Kind.CHUNK, "n", SQL)
    assert blob[3] == FLAG_ZSTD
    assert len(blob) < len(SQL) // 4


def test_compress_false_stores_as_is(sealer: Sealer) -> None:
    """``compress=False`` never compresses."""
    blob = sealer.seal(Kind.CHUNK, "n", SQL, compress=False)
    assert blob[3] == 0
    assert len(blob) == len(SQL) + OVERHEAD


def test_nonces_are_fresh(sealer: Sealer) -> None:
    """Sealing the same plaintext twice gives different nonces and ciphertexts."""
    first = sealer.seal(Kind.CHUNK, "n", b"same")
    second = sealer.seal(Kind.CHUNK, "n", b"same")
    assert first[4:16] != second[4:16]
    assert first != second


def test_empty_payload_round_trips(sealer: Sealer) -> None:
    """An empty payload seals to exactly the overhead and opens to b''."""
    blob = sealer.seal(Kind.CHUNK, "n", b"")
    assert len(blob) == OVERHEAD
    assert sealer.open(Kind.CHUNK, "n", blob) == b""


def test_stream_round_trip(sealer: Sealer) -> None:
    """A streamed payload is one zstd frame and streams back identically."""
    pieces = [SQL[i : i + 1000] for i in range(0, len(SQL), 1000)]
    blob = sealer.seal_stream(Kind.MANIFEST, "m", iter(pieces))
    kind, out = sealer.open_stream((Kind.MANIFEST, Kind.PRUNE_RECORD), "m", blob)
    assert kind is Kind.MANIFEST
    assert b"".join(out) == SQL


def test_open_stream_refuses_uncompressed_payload(sealer: Sealer) -> None:
    """A streamed kind must hold a zstd frame; a plain payload is a format error."""
    blob = sealer.seal(Kind.MANIFEST, "m", b"x", compress=False)
    with pytest.raises(FormatError, match="zstd frame"):
        sealer.open_stream((Kind.MANIFEST,), "m", blob)


# -- chunk ids ---------------------------------------------------------------------------------


def test_chunk_id_is_hmac_of_plaintext(sealer: Sealer) -> None:
    """A chunk id is HMAC-SHA-256 of the plaintext under the chunk-id key."""
    expected = hmac.digest(FIXED_KEYS.chunk_id_key, SQL, "sha256")
    assert sealer.chunk_id(SQL) == expected
    assert sealer.seal_chunk(SQL).id == expected
    assert sealer.seal_chunk(SQL).name == expected.hex()


def test_chunk_ids_differ_between_repositories() -> None:
    """Equal plaintext in two repositories gets unrelated ids (the provider cannot match them)."""
    one = Sealer(repo_id=new_repo_id(), keys=MasterKeys.generate())
    two = Sealer(repo_id=new_repo_id(), keys=MasterKeys.generate())
    assert one.chunk_id(SQL) != two.chunk_id(SQL)
    assert one.chunk_id(SQL) != hashlib.sha256(SQL).digest()


def test_chunk_round_trip(sealer: Sealer) -> None:
    """A sealed chunk opens under its id."""
    chunk = sealer.seal_chunk(SQL)
    assert sealer.open_chunk(chunk.id, chunk.blob) == SQL


def test_chunks_swapped_between_ids_fail(sealer: Sealer) -> None:
    """A chunk blob stored under another chunk's id fails to open."""
    one, two = sealer.seal_chunk(b"one" * 10), sealer.seal_chunk(b"two" * 10)
    with pytest.raises(IntegrityError):
        sealer.open_chunk(one.id, two.blob)
    with pytest.raises(IntegrityError):
        sealer.open_chunk(two.id, one.blob)


def test_plaintext_repository_uses_sha256_ids() -> None:
    """A plaintext repository names chunks by SHA-256 and still round-trips."""
    plain = Sealer.plaintext(repo_id=FIXED_REPO_ID)
    assert not plain.encrypted
    chunk = plain.seal_chunk(SQL)
    assert chunk.id == hashlib.sha256(SQL).digest()
    assert chunk.blob[2] == Cipher.NONE
    assert plain.open_chunk(chunk.id, chunk.blob) == SQL


def test_plaintext_detects_damage() -> None:
    """A plaintext blob with a flipped bit or under another name fails its check."""
    plain = Sealer.plaintext(repo_id=FIXED_REPO_ID)
    blob = plain.seal(Kind.CHUNK, "n", b"hello world")
    damaged = bytearray(blob)
    damaged[20] ^= 1
    with pytest.raises(IntegrityError):
        plain.open(Kind.CHUNK, "n", damaged)
    with pytest.raises(IntegrityError):
        plain.open(Kind.CHUNK, "other", blob)


def test_plaintext_only_when_asked() -> None:
    """Keys are required unless the plaintext constructor is used."""
    with pytest.raises(ConfigurationError):
        Sealer(repo_id=FIXED_REPO_ID, keys=None)
    with pytest.raises(ConfigurationError):
        Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS, cipher=Cipher.NONE)


def test_encrypted_repository_refuses_plaintext_blob(sealer: Sealer) -> None:
    """A plaintext blob slipped into an encrypted repository (a downgrade) fails to open."""
    plain = Sealer.plaintext(repo_id=FIXED_REPO_ID)
    chunk = plain.seal_chunk(b"forged")
    with pytest.raises(IntegrityError):
        sealer.open(Kind.CHUNK, chunk.name, chunk.blob)


# -- binding and keys --------------------------------------------------------------------------


def test_wrong_key_fails_opaquely(sealer: Sealer) -> None:
    """A wrong data key fails with the same message as altered bytes."""
    blob = sealer.seal(Kind.CHUNK, "n", SQL)
    other = Sealer(repo_id=FIXED_REPO_ID, keys=MasterKeys.generate(), cipher=sealer.cipher)
    with pytest.raises(IntegrityError) as wrong_key:
        other.open(Kind.CHUNK, "n", blob)
    altered = bytearray(blob)
    altered[-1] ^= 0x80
    with pytest.raises(IntegrityError) as wrong_bytes:
        sealer.open(Kind.CHUNK, "n", altered)
    assert str(wrong_key.value) == str(wrong_bytes.value)


def test_blob_bound_to_name_kind_and_repository(sealer: Sealer) -> None:
    """A blob opened under another name, kind or repository id fails."""
    blob = sealer.seal(Kind.MANIFEST, "snap-1", SQL)
    with pytest.raises(IntegrityError):
        sealer.open(Kind.MANIFEST, "snap-2", blob)
    with pytest.raises(IntegrityError):
        sealer.open(Kind.PRUNE_RECORD, "snap-1", blob)
    elsewhere = Sealer(repo_id=new_repo_id(), keys=FIXED_KEYS, cipher=sealer.cipher)
    with pytest.raises(IntegrityError):
        elsewhere.open(Kind.MANIFEST, "snap-1", blob)


def test_other_cipher_refused() -> None:
    """A blob sealed with one AEAD does not open under a sealer configured for the other."""
    aes = Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS, cipher=Cipher.AES_256_GCM)
    chacha = Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS, cipher=Cipher.CHACHA20_POLY1305)
    with pytest.raises(IntegrityError):
        chacha.open(Kind.CHUNK, "n", aes.seal(Kind.CHUNK, "n", b"x"))


def test_secrets_never_in_repr_or_errors(sealer: Sealer) -> None:
    """Keys appear in no repr and no error text."""
    secrets = [FIXED_KEYS.data_key, FIXED_KEYS.chunk_id_key]
    chunk = sealer.seal_chunk(b"data")
    texts = [repr(FIXED_KEYS), repr(sealer), str(sealer), repr(chunk)]
    blob = sealer.seal(Kind.CHUNK, "n", b"x")
    attempts: list[Callable[[], object]] = [
        lambda: sealer.open(Kind.CHUNK, "m", blob),
        lambda: sealer.open(Kind.CHUNK, "n", blob[:10]),
        lambda: sealer.open(Kind.CHUNK, "n", b"\x07" + bytes(blob[1:])),
    ]
    for attempt in attempts:
        with pytest.raises((IntegrityError, FormatError)) as caught:
            attempt()
        texts.append(str(caught.value))
        texts.append(repr(caught.value))
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text
            assert repr(secret)[2:-1] not in text


def test_bad_names_rejected(sealer: Sealer) -> None:
    """Names must be 1-1024 bytes of Unicode without control characters."""
    for name in ("", "a\nb", "a\x00", "x" * 1025, "\ud800"):
        with pytest.raises(ConfigurationError):
            sealer.seal(Kind.CHUNK, name, b"x")


def test_bad_construction_rejected() -> None:
    """Repository ids are 16 bytes, keys 32, levels 1 to 22."""
    with pytest.raises(ConfigurationError):
        Sealer(repo_id=b"short", keys=FIXED_KEYS)
    with pytest.raises(ConfigurationError):
        MasterKeys(data_key=b"x" * 31, chunk_id_key=b"y" * 32)
    with pytest.raises(ConfigurationError):
        Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS, compression_level=0)


# -- bad input ---------------------------------------------------------------------------------


def test_empty_blob_is_a_format_error(sealer: Sealer) -> None:
    """An empty blob has no version byte: a format error."""
    with pytest.raises(FormatError, match="empty"):
        sealer.open(Kind.CHUNK, "n", b"")


@pytest.mark.parametrize("version", [0, 2, 3, 0x81, 255])
def test_unknown_version_is_a_format_error(sealer: Sealer, version: int) -> None:
    """A blob of another format version fails with a format error naming the version."""
    blob = bytearray(sealer.seal(Kind.CHUNK, "n", b"x"))
    blob[0] = version
    with pytest.raises(FormatError, match=f"version {version}"):
        sealer.open(Kind.CHUNK, "n", blob)


@pytest.mark.parametrize("length", [1, 4, 15, 16, 31])
def test_truncated_header_fails_cleanly(sealer: Sealer, length: int) -> None:
    """A version 1 blob shorter than header plus tag fails authentication, saying so."""
    blob = sealer.seal(Kind.CHUNK, "n", b"payload")
    with pytest.raises(IntegrityError, match="shorter than"):
        sealer.open(Kind.CHUNK, "n", blob[:length])


def test_unknown_flags_fail(sealer: Sealer) -> None:
    """Flag bits format v1 does not define are refused even inside a valid seal."""
    blob = _raw_seal(sealer, Kind.CHUNK, "n", b"x", flags=0x80)
    with pytest.raises(IntegrityError):
        sealer.open(Kind.CHUNK, "n", blob)


def _frame_declaring(size: int) -> bytes:
    # A zstd frame header declaring an 8-byte content size, then one empty raw last block.
    descriptor = 0b1110_0000  # FCS field 8 bytes, single segment, no checksum, no dictionary
    return b"\x28\xb5\x2f\xfd" + bytes([descriptor]) + struct.pack("<Q", size) + b"\x01\x00\x00"


def test_huge_declared_size_refused_without_allocating(sealer: Sealer) -> None:
    """A valid seal around a zstd frame declaring 2**60 bytes fails fast with a format error."""
    blob = _raw_seal(sealer, Kind.CHUNK, "n", _frame_declaring(2**60), flags=FLAG_ZSTD)
    started = time.perf_counter()
    with pytest.raises(FormatError, match="declares"):
        sealer.open(Kind.CHUNK, "n", blob)
    assert time.perf_counter() - started < 1


def test_lying_declared_size_is_a_format_error(sealer: Sealer) -> None:
    """A frame whose declared size is smaller than its content is damaged, not trusted."""
    frame = bytearray(zstandard.ZstdCompressor().compress(b"a" * 10_000))
    params = zstandard.get_frame_parameters(bytes(frame))
    assert params.content_size == 10_000
    frame[5:7] = struct.pack("<H", 300 - 256)  # a 2-byte FCS field stores size - 256
    assert zstandard.get_frame_parameters(bytes(frame)).content_size == 300
    blob = _raw_seal(sealer, Kind.CHUNK, "n", bytes(frame), flags=FLAG_ZSTD)
    with pytest.raises(FormatError):
        sealer.open(Kind.CHUNK, "n", blob)


def test_size_limit_applies(sealer: Sealer) -> None:
    """Plaintext beyond ``max_size`` is refused, compressed or not."""
    compressed = sealer.seal(Kind.CHUNK, "n", SQL)
    stored = sealer.seal(Kind.CHUNK, "n", SQL, compress=False)
    for blob in (compressed, stored):
        with pytest.raises(FormatError, match="limit"):
            sealer.open(Kind.CHUNK, "n", blob, max_size=1000)


@pytest.mark.parametrize(
    "payload",
    [
        b"not zstd at all",
        zstandard.ZstdCompressor().compress(b"x" * 100) + b"trailing",
        zstandard.ZstdCompressor().compress(b"x" * 100)[:-2],
        zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 100),
        _frame_declaring(5),
    ],
    ids=["garbage", "trailing", "truncated", "no-size", "empty-block-lies"],
)
def test_damaged_frames_are_format_errors(sealer: Sealer, payload: bytes) -> None:
    """Damaged or non-canonical zstd payloads inside a valid seal give format errors."""
    blob = _raw_seal(sealer, Kind.CHUNK, "n", payload, flags=FLAG_ZSTD)
    with pytest.raises(FormatError):
        sealer.open(Kind.CHUNK, "n", blob)


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        zstandard.ZstdCompressor().compress(b"x" * 100) + b"trailing",
        zstandard.ZstdCompressor().compress(b"x" * 100)[:-2],
    ],
    ids=["garbage", "trailing", "truncated"],
)
def test_damaged_streams_are_format_errors(sealer: Sealer, payload: bytes) -> None:
    """Damaged streamed payloads inside a valid seal give format errors while iterating."""
    blob = _raw_seal(sealer, Kind.MANIFEST, "m", payload, flags=FLAG_ZSTD)
    _kind, pieces = sealer.open_stream((Kind.MANIFEST,), "m", blob)
    with pytest.raises(FormatError):
        b"".join(pieces)


def test_stream_bomb_is_yielded_in_bounded_pieces(sealer: Sealer) -> None:
    """A highly compressible stream comes back in pieces far smaller than the whole."""
    size = 256 * 2**20
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(size))
    blob = _raw_seal(sealer, Kind.MANIFEST, "m", frame, flags=FLAG_ZSTD)
    _kind, pieces = sealer.open_stream((Kind.MANIFEST,), "m", blob)
    total = 0
    for piece in pieces:
        assert len(piece) <= 64 * 2**20
        total += len(piece)
    assert total == size


# -- golden vectors (format v1, frozen) --------------------------------------------------------

VECTORS = json.loads((DATA / "format-v1" / "vectors.json").read_text())
GOLDEN_KEYS = MasterKeys(
    data_key=bytes.fromhex(VECTORS["data_key"]), chunk_id_key=bytes.fromhex(VECTORS["chunk_id_key"])
)
GOLDEN_REPO = bytes.fromhex(VECTORS["repo_id"])


def _golden_sealer(cipher: str, nonce: bytes = b"") -> Sealer:
    if cipher == "NONE":
        return Sealer.plaintext(repo_id=GOLDEN_REPO)
    return Sealer(
        repo_id=GOLDEN_REPO,
        keys=GOLDEN_KEYS,
        cipher=Cipher[cipher],
        randbytes=lambda n: nonce[:n],
    )


@pytest.mark.parametrize("vector", VECTORS["seals"], ids=lambda v: str(v["description"])[:40])
def test_golden_seal_opens(vector: dict[str, Any]) -> None:
    """Every frozen sealed blob opens to its plaintext under its kind and name."""
    sealer = _golden_sealer(vector["cipher"])
    blob = bytes.fromhex(vector["sealed"])
    assert sealer.open(Kind[vector["kind"]], vector["name"], blob) == bytes.fromhex(
        vector["plaintext"]
    )


@pytest.mark.parametrize("vector", VECTORS["seals"], ids=lambda v: str(v["description"])[:40])
def test_golden_seal_reproduces(vector: dict[str, Any]) -> None:
    """Sealing a frozen plaintext with the frozen nonce gives the frozen bytes."""
    sealer = _golden_sealer(vector["cipher"], bytes.fromhex(vector["nonce"]))
    blob = sealer.seal(
        Kind[vector["kind"]],
        vector["name"],
        bytes.fromhex(vector["plaintext"]),
        compress=vector["compress"],
    )
    assert bytes(blob).hex() == vector["sealed"]


def test_golden_chunk_ids() -> None:
    """Chunk ids are frozen: HMAC-SHA-256 under the chunk-id key, SHA-256 when plaintext."""
    for vector in VECTORS["chunk_ids"]:
        data = bytes.fromhex(vector["plaintext"])
        assert _golden_sealer("AES_256_GCM").chunk_id(data).hex() == vector["keyed_id"]
        assert _golden_sealer("NONE").chunk_id(data).hex() == vector["plaintext_repo_id"]


# -- surface and layering ----------------------------------------------------------------------


def test_all_is_sorted_and_resolves() -> None:
    """``crypto.__all__`` is sorted (constants first), unique, and every name resolves."""
    names = list(crypto.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(crypto, name), name


def test_crypto_imports_no_storage_backend() -> None:
    """Importing ``crypto`` pulls in no fsspec or cloud SDK (it only needs a target's methods)."""
    code = (
        "import sys, ctfy_vault.crypto; "
        "print(sorted(m for m in ('fsspec', 's3fs', 'boto3', 'adlfs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
