"""Golden vectors of format v2: a pack and an index object frozen byte for byte, read two ways."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ctfy_vault.crypto import Cipher, MasterKeys, Sealer
from ctfy_vault.repository import (
    IndexBuilder,
    IndexedPack,
    PackBuilder,
    PackEntry,
    check_pack,
    decode_index,
    index_key,
    pack_key,
    padme,
    read_chunk,
    read_pack_header,
)
from tests.support.pack_strategies import SMALL_PACK, nonce_sequence
from tests.support.paths import DATA

VECTORS: dict[str, Any] = json.loads((DATA / "format-v2" / "vectors.json").read_text())
PACK: dict[str, Any] = VECTORS["pack"]
INDEX: dict[str, Any] = VECTORS["index"]
REPO_ID = bytes.fromhex(VECTORS["repo_id"])
DATA_KEY = bytes.fromhex(VECTORS["data_key"])
KEYS = MasterKeys(data_key=DATA_KEY, chunk_id_key=bytes.fromhex(VECTORS["chunk_id_key"]))
STORED_PACK = bytes.fromhex(PACK["stored"])
STORED_INDEX = bytes.fromhex(INDEX["stored"])
ENTRIES = tuple(
    PackEntry(chunk_id=bytes.fromhex(e["chunk_id"]), offset=e["offset"], length=e["length"])
    for e in PACK["entries"]
)


def _sealer(*nonces: str) -> Sealer:
    return Sealer(
        repo_id=REPO_ID,
        keys=KEYS,
        cipher=Cipher[VECTORS["cipher"]],
        randbytes=nonce_sequence(bytes.fromhex(n) for n in nonces),
    )


def test_golden_padme_values() -> None:
    """The frozen Padmé table: the sizes every pack and index object is padded to."""
    for length, padded in VECTORS["padme"]:
        assert padme(length) == padded


def test_golden_pack_reads() -> None:
    """The frozen pack: its name is its hash, its header lists the chunks, each chunk opens."""
    sealer = _sealer()
    pack_id = bytes.fromhex(PACK["id"])
    assert hashlib.sha256(STORED_PACK).digest() == pack_id
    assert pack_key(pack_id) == PACK["key"]
    assert len(STORED_PACK) == PACK["size"] == padme(PACK["size"])
    header = read_pack_header(sealer, STORED_PACK)
    assert header.entries == ENTRIES
    assert (header.header_offset, header.header_length) == (
        PACK["header_offset"],
        PACK["header_length"],
    )
    assert check_pack(sealer, pack_id, STORED_PACK) == header
    for chunk, entry in zip(PACK["chunks"], ENTRIES, strict=True):
        assert entry.chunk_id.hex() == chunk["id"]
        assert read_chunk(sealer, STORED_PACK, entry) == bytes.fromhex(chunk["plaintext"])


def test_golden_pack_reproduces() -> None:
    """Building the frozen chunks with the frozen nonces gives the frozen pack byte for byte."""
    nonces = [c["nonce"] for c in PACK["chunks"]] + [PACK["header_nonce"], PACK["trailer_nonce"]]
    sealer = _sealer(*nonces)
    builder = PackBuilder(sealer, target_size=SMALL_PACK)
    for chunk in PACK["chunks"]:
        builder.add(sealer.seal_chunk(bytes.fromhex(chunk["plaintext"])))
    pack = builder.finish()
    assert bytes(pack.blob).hex() == PACK["stored"]
    assert pack.entries == ENTRIES


def test_golden_index_reads_and_reproduces() -> None:
    """The frozen index object decodes to the pack's record and re-encodes to the same bytes."""
    index_id = bytes.fromhex(INDEX["id"])
    assert index_key(index_id) == INDEX["key"]
    assert len(STORED_INDEX) == INDEX["size"] == padme(INDEX["size"])
    record = IndexedPack(pack_id=bytes.fromhex(PACK["id"]), size=PACK["size"], entries=ENTRIES)
    assert decode_index(_sealer(), index_id, STORED_INDEX) == (record,)
    builder = IndexBuilder()
    builder.add(record)
    assert bytes(builder.finish(_sealer(INDEX["nonce"])).blob) == STORED_INDEX


# -- the spec, read without the library ------------------------------------------------------


def _open(blob: bytes, kind: int, name: bytes) -> bytes:
    """Open a format v1 envelope as ``docs/format.md`` says, with the AEAD alone."""
    assert blob[0] == 1
    assert blob[1] == kind
    assert blob[2] == 1  # AES-256-GCM
    assert blob[3] == 0  # never compressed
    ad = b"ctfy-vault sealed v1\x00" + blob[:4] + REPO_ID + name
    return AESGCM(DATA_KEY).decrypt(blob[4:16], blob[16:], ad)


def test_the_golden_pack_follows_the_spec_byte_for_byte() -> None:
    """Trailer (last 48 bytes), header, zero padding and chunk ranges are where the spec says."""
    trailer = _open(STORED_PACK[-48:], 6, b"pack")
    header_offset, header_length = struct.unpack(">QQ", trailer)
    assert header_offset == sum(e.length for e in ENTRIES)
    header = _open(STORED_PACK[header_offset : header_offset + header_length], 5, b"pack")
    version, count = struct.unpack_from(">BI", header)
    assert (version, count) == (2, len(ENTRIES))
    listed = [PackEntry(*fields) for fields in struct.iter_unpack(">32sQI", header[5:])]
    assert tuple(listed) == ENTRIES
    padding = STORED_PACK[header_offset + header_length : -48]
    assert padding == bytes(len(padding)) == bytes(PACK["padding"])
    assert len(STORED_PACK) == padme(header_offset + header_length + 48)
    for entry in ENTRIES:
        chunk = STORED_PACK[entry.offset : entry.end]
        assert chunk[1] == 1  # a chunk envelope, bound to the chunk id as in format v1
        ad = b"ctfy-vault sealed v1\x00" + chunk[:4] + REPO_ID + entry.chunk_id.hex().encode()
        AESGCM(DATA_KEY).decrypt(chunk[4:16], chunk[16:], ad)


def test_the_golden_index_follows_the_spec_byte_for_byte() -> None:
    """The index plaintext is version, count, one record per pack, then zeros up to Padmé."""
    plaintext = _open(STORED_INDEX, 7, b"index")
    version, packs = struct.unpack_from(">BI", plaintext)
    assert (version, packs) == (2, 1)
    pack_id, size, count = struct.unpack_from(">32sQI", plaintext, 5)
    assert (pack_id.hex(), size, count) == (PACK["id"], PACK["size"], len(ENTRIES))
    end = 5 + 44 + 44 * count
    listed = [PackEntry(*fields) for fields in struct.iter_unpack(">32sQI", plaintext[49:end])]
    assert tuple(listed) == ENTRIES
    assert plaintext[end:] == bytes(len(plaintext) - end)
    assert len(STORED_INDEX) == padme(end + 32)
