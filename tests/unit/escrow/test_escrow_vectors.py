"""Golden vectors freezing escrow format v1: keys, streams, archives, receipts, whole deposits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ctfy_vault.crypto import (
    Cipher,
    RecipientIdentity,
    RecipientKey,
    SigningKey,
    VerifyKey,
    decrypt_from_recipient,
    encrypt_to_recipients,
)
from ctfy_vault.escrow import Receipt, deposit, open_deposit, source_tree, verify_deposit
from ctfy_vault.testing import memory_target
from tests.support.paths import DATA

VECTORS: dict[str, Any] = json.loads((DATA / "escrow-v1" / "vectors.json").read_text())
IDENTITIES = [RecipientIdentity(bytes.fromhex(k["secret"])) for k in VECTORS["keys"]["recipients"]]
SIGNER = SigningKey(bytes.fromhex(VECTORS["keys"]["signer"]["seed"]))


class FixedRandom:
    """Hands out a fixed byte string in order, as ``randbytes``; fails when it runs out."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def __call__(self, size: int) -> bytes:
        out = self._data[self._pos : self._pos + size]
        if len(out) != size:
            raise AssertionError("the vector's randomness ran out")
        self._pos += size
        return out

    @property
    def used_up(self) -> bool:
        """Whether every byte was consumed."""
        return self._pos == len(self._data)


def build_folder(root: Path, spec: dict[str, Any]) -> Path:
    """Create the vector's folder: files with modes, empty folders and symlinks."""
    root.mkdir()
    for entry in spec["files"]:
        path = root / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes.fromhex(entry["content"]))
        path.chmod(int(entry["mode"], 8))
    for name in spec["dirs"]:
        (root / name).mkdir(parents=True, exist_ok=True)
    for link in spec["symlinks"]:
        os.symlink(link["target"], root / link["path"])
    return root


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_recipient_key_texts(index: int) -> None:
    """Recipient key texts, public keys and key ids are frozen."""
    vector = VECTORS["keys"]["recipients"][index]
    identity = IDENTITIES[index]
    assert identity.secret_text() == vector["secret_text"]
    assert identity.public.text == vector["public_text"]
    assert identity.key_id == vector["key_id"]
    assert RecipientIdentity.from_text(vector["secret_text"]) == identity
    assert RecipientKey.from_text(vector["public_text"]) == identity.public


def test_signer_key_texts() -> None:
    """Signing key texts and ids are frozen."""
    vector = VECTORS["keys"]["signer"]
    assert SIGNER.secret_text() == vector["secret_text"]
    assert SIGNER.public.text == vector["public_text"]
    assert SIGNER.key_id == vector["key_id"]
    assert VerifyKey.from_text(vector["public_text"]) == SIGNER.public


def test_key_text_checksum_follows_the_spec() -> None:
    """Text = prefix + base64url(key || SHA-256(prefix || key)[:4]) without padding."""
    vector = VECTORS["keys"]["recipients"][0]
    prefix = "ctfy-escrow-x25519-public-v1:"
    public = X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["secret"])).public_key()
    raw = public.public_bytes_raw()
    body = raw + hashlib.sha256(prefix.encode() + raw).digest()[:4]
    assert vector["public_text"] == prefix + base64.urlsafe_b64encode(body).decode().rstrip("=")
    key_id = hashlib.sha256(b"ctfy-escrow v1 key id\x00x25519\x00" + raw).hexdigest()[:16]
    assert vector["key_id"] == key_id


# -- streams ---------------------------------------------------------------------------------

STREAMS = VECTORS["streams"]


@pytest.mark.parametrize("vector", STREAMS, ids=lambda v: str(v["description"])[:40])
def test_stream_vector_decrypts(vector: dict[str, Any]) -> None:
    """Every frozen stream opens, with each of its recipients' keys."""
    ciphertext = bytes.fromhex(vector["ciphertext"])
    for index in vector["recipients"]:
        plain = b"".join(decrypt_from_recipient([ciphertext], IDENTITIES[index]))
        assert plain == bytes.fromhex(vector["plaintext"])


@pytest.mark.parametrize("vector", STREAMS, ids=lambda v: str(v["description"])[:40])
def test_stream_vector_reproduces(vector: dict[str, Any]) -> None:
    """Encrypting the frozen plaintext with the frozen randomness gives the frozen bytes."""
    randomness = FixedRandom(bytes.fromhex(vector["randomness"]))
    out = b"".join(
        encrypt_to_recipients(
            [bytes.fromhex(vector["plaintext"])],
            [IDENTITIES[i].public for i in vector["recipients"]],
            cipher=Cipher[vector["cipher"]],
            chunk_size=vector["chunk_size"],
            randbytes=randomness,
        )
    )
    assert out.hex() == vector["ciphertext"]
    assert randomness.used_up


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


def spec_decrypt(data: bytes, secret: bytes) -> bytes:
    """Decrypt an escrow v1 stream by following docs/escrow.md, with bare primitives only."""
    assert data[:8] == b"ctfyescr"
    assert data[8] == 1
    assert data[9] in (1, 2)
    aead_class: type[AESGCM | ChaCha20Poly1305] = AESGCM if data[9] == 1 else ChaCha20Poly1305
    chunk_size, count, salt = 1 << data[10], data[11], data[12:28]
    private = X25519PrivateKey.from_private_bytes(secret)
    own = private.public_key().public_bytes_raw()
    own_id = hashlib.sha256(b"ctfy-escrow v1 key id\x00x25519\x00" + own).digest()[:8]
    file_key = None
    for i in range(count):
        stanza = data[28 + 88 * i : 28 + 88 * (i + 1)]
        if stanza[:8] != own_id:
            continue
        ephemeral = stanza[8:40]
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        wrap_key = _hkdf(shared, ephemeral + own, b"ctfy-escrow v1 x25519 wrap")
        file_key = aead_class(wrap_key).decrypt(bytes(12), stanza[40:88], data[:12])
    assert file_key is not None
    header_end = 28 + 88 * count
    mac = data[header_end : header_end + 32]
    mac_key = _hkdf(file_key, salt, b"ctfy-escrow v1 header mac")
    assert hmac.compare_digest(mac, hmac.digest(mac_key, data[:header_end], "sha256"))
    aead = aead_class(_hkdf(file_key, salt, b"ctfy-escrow v1 payload"))
    body = data[header_end + 32 :]
    record = chunk_size + 16
    records = [body[i : i + record] for i in range(0, len(body), record)] or [b""]
    plain = b""
    for counter, sealed in enumerate(records):
        final = b"\x01" if counter == len(records) - 1 else b"\x00"
        plain += aead.decrypt(counter.to_bytes(11, "big") + final, sealed, mac)
    return plain


@pytest.mark.parametrize("vector", STREAMS, ids=lambda v: str(v["description"])[:40])
def test_stream_vector_follows_the_written_spec(vector: dict[str, Any]) -> None:
    """An independent decoder written from docs/escrow.md opens every frozen stream."""
    ciphertext = bytes.fromhex(vector["ciphertext"])
    for index in vector["recipients"]:
        secret = bytes.fromhex(VECTORS["keys"]["recipients"][index]["secret"])
        assert spec_decrypt(ciphertext, secret) == bytes.fromhex(vector["plaintext"])


# -- archive, receipt and a whole deposit ----------------------------------------------------


def test_archive_vector(tmp_path: Path) -> None:
    """The vector folder gives the frozen tar bytes (names, modes, times, padding)."""
    vector = VECTORS["archive"]
    root = build_folder(tmp_path / "source", vector["folder"])
    tar = b"".join(source_tree(root).archive())
    assert hashlib.sha256(tar).hexdigest() == vector["sha256"]
    assert tar.hex() == vector["tar"]


def test_receipt_vector_signature() -> None:
    """The frozen receipt verifies with bare Ed25519 over domain + canonical JSON of the body."""
    document = VECTORS["deposit"]["receipt"].encode()
    data = json.loads(document)
    signature = base64.b64decode(data.pop("signature"))
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    Ed25519PublicKey.from_public_bytes(SIGNER.public.value).verify(
        signature, b"ctfy-escrow receipt v1\x00" + body
    )
    receipt = Receipt.decode(document)
    receipt.check(SIGNER.public)
    assert receipt.encode() == document


def test_deposit_vector_reproduces_and_opens(tmp_path: Path) -> None:
    """A deposit of the vector folder with frozen time and randomness gives the frozen objects."""
    vector = VECTORS["deposit"]
    root = build_folder(tmp_path / "source", VECTORS["archive"]["folder"])
    target = memory_target()
    randomness = FixedRandom(bytes.fromhex(vector["randomness"]))
    receipt = deposit(
        root,
        target,
        recipients=[identity.public for identity in IDENTITIES],
        signing_key=SIGNER,
        now=datetime.fromisoformat(vector["now"]),
        chunk_size=vector["chunk_size"],
        cipher=Cipher[vector["cipher"]],
        randbytes=randomness,
    )
    assert randomness.used_up
    assert receipt.deposit == vector["name"]
    assert target.read(receipt.ciphertext_object).hex() == vector["ciphertext"]
    assert target.read(receipt.receipt_object).decode() == vector["receipt"]
    assert verify_deposit(target, receipt.deposit, signer=SIGNER.public) == receipt
    opened = open_deposit(target, receipt.deposit, IDENTITIES[1], out=tmp_path / "out.tar")
    assert (tmp_path / "out.tar").read_bytes().hex() == VECTORS["archive"]["tar"]
    assert opened.sha256 == VECTORS["archive"]["sha256"]


def test_stored_deposit_vector_opens(tmp_path: Path) -> None:
    """The frozen objects, stored as they are, verify and open (reading old deposits)."""
    vector = VECTORS["deposit"]
    target = memory_target()
    target.write(vector["name"] + ".escrow", bytes.fromhex(vector["ciphertext"]))
    target.write(vector["name"] + ".receipt.json", vector["receipt"].encode())
    verify_deposit(target, vector["name"], signer=SIGNER.public)
    open_deposit(target, vector["name"], IDENTITIES[0], out=tmp_path / "x", extract=True)
    assert (tmp_path / "x" / "bin" / "build.sh").stat().st_mode & 0o777 == 0o755
