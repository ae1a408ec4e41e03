"""Properties of the escrow stream encryption: round trips, block boundaries and tampering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.crypto import (
    Cipher,
    RecipientIdentity,
    RecipientKey,
    decrypt_from_recipient,
    encrypt_to_recipients,
    read_escrow_header,
)
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

# Strategies are local: they serve only these properties (tests/strategies.py holds the shared ones).
identities = st.binary(min_size=32, max_size=32).map(RecipientIdentity)
chunk_sizes = st.sampled_from([64, 128, 1024])
ciphers = st.sampled_from([Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305])
payloads = st.binary(max_size=3000)
block_sizes = st.integers(min_value=1, max_value=700)


def blocks(data: bytes, size: int) -> Iterator[bytes]:
    """Cut ``data`` into blocks of ``size`` bytes (none for empty data)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def seal(data: bytes, keys: list[RecipientKey], cipher: Cipher, chunk_size: int) -> bytes:
    """Encrypt ``data`` to ``keys`` in one piece."""
    return b"".join(encrypt_to_recipients([data], keys, cipher=cipher, chunk_size=chunk_size))


def unseal(data: bytes, identity: RecipientIdentity, block: int = 4096) -> bytes:
    """Decrypt ``data`` fed in blocks of ``block`` bytes."""
    return b"".join(decrypt_from_recipient(blocks(data, block), identity))


@given(
    st.lists(identities, min_size=1, max_size=3, unique_by=lambda i: i.value),
    payloads,
    ciphers,
    chunk_sizes,
    st.tuples(block_sizes, block_sizes),
)
@settings(max_examples=150, deadline=None)
def test_round_trip_for_every_recipient(
    people: list[RecipientIdentity],
    data: bytes,
    cipher: Cipher,
    chunk_size: int,
    io_blocks: tuple[int, int],
) -> None:
    """Whatever the block sizes in and out, every recipient gets the exact plaintext back."""
    in_block, out_block = io_blocks
    keys = [person.public for person in people]
    sealed = b"".join(
        encrypt_to_recipients(blocks(data, in_block), keys, cipher=cipher, chunk_size=chunk_size)
    )
    chunks = max(1, -(-len(data) // chunk_size))
    assert len(sealed) == 60 + 88 * len(keys) + len(data) + 16 * chunks
    assert read_escrow_header([sealed]).recipients == tuple(k.key_id for k in keys)
    for person in people:
        assert unseal(sealed, person, out_block) == data


@given(identities, identities, payloads)
@settings(max_examples=50, deadline=None)
def test_other_keys_fail(owner: RecipientIdentity, other: RecipientIdentity, data: bytes) -> None:
    """A key that is not a recipient's gets IntegrityError."""
    sealed = seal(data, [owner.public], Cipher.AES_256_GCM, 64)
    if other.public == owner.public:
        return
    with pytest.raises(IntegrityError):
        unseal(sealed, other)


@given(identities, payloads, chunk_sizes, st.data())
@settings(max_examples=200, deadline=None)
def test_any_flip_fails(
    owner: RecipientIdentity, data: bytes, chunk_size: int, draw: st.DataObject
) -> None:
    """Flipping any bit of the stream fails (format errors only in magic and version)."""
    sealed = bytearray(seal(data, [owner.public], Cipher.CHACHA20_POLY1305, chunk_size))
    offset = draw.draw(st.integers(0, len(sealed) - 1))
    sealed[offset] ^= 1 << draw.draw(st.integers(0, 7))
    expected = (FormatError, IntegrityError) if offset < 9 else IntegrityError
    with pytest.raises(expected):
        unseal(bytes(sealed), owner)


@given(identities, payloads, chunk_sizes, st.data())
@settings(max_examples=200, deadline=None)
def test_truncation_extension_and_reordering_fail(
    owner: RecipientIdentity, data: bytes, chunk_size: int, draw: st.DataObject
) -> None:
    """Cutting, extending, or swapping two chunks is detected."""
    sealed = seal(data, [owner.public], Cipher.AES_256_GCM, chunk_size)
    header = 60 + 88
    cut = draw.draw(st.integers(1, len(sealed)))
    with pytest.raises((IntegrityError, FormatError)):
        unseal(sealed[:-cut], owner)
    extra = draw.draw(st.binary(min_size=1, max_size=chunk_size + 40))
    with pytest.raises(IntegrityError):
        unseal(sealed + extra, owner)
    record = chunk_size + 16
    body = sealed[header:]
    records = [body[i : i + record] for i in range(0, len(body), record)]
    if len(records) >= 2:
        i = draw.draw(st.integers(0, len(records) - 2))
        records[i], records[i + 1] = records[i + 1], records[i]
        with pytest.raises(IntegrityError):
            unseal(sealed[:header] + b"".join(records), owner)


def test_header_from_another_deposit_fails() -> None:
    """A header spliced onto another deposit's chunks fails (chunks authenticate the header MAC)."""
    owner = RecipientIdentity(bytes(range(32)))
    first = seal(b"a" * 300, [owner.public], Cipher.AES_256_GCM, 64)
    second = seal(b"a" * 300, [owner.public], Cipher.AES_256_GCM, 64)
    header = 60 + 88
    with pytest.raises(IntegrityError):
        unseal(first[:header] + second[header:], owner)


def test_a_removed_stanza_fails_for_the_others() -> None:
    """Dropping one recipient's stanza from the header breaks the header MAC for everyone."""
    a, b = RecipientIdentity(bytes(range(32))), RecipientIdentity(bytes(range(1, 33)))
    sealed = bytearray(seal(b"data", [a.public, b.public], Cipher.AES_256_GCM, 64))
    sealed[11] = 1
    del sealed[28 + 88 : 28 + 176]
    with pytest.raises(IntegrityError):
        unseal(bytes(sealed), a)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 100}, "power of two"),
        ({"chunk_size": 32}, "power of two"),
        ({"cipher": Cipher.NONE}, "encrypted"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    """Bad chunk sizes and the plaintext cipher are refused at the call."""
    key = RecipientIdentity(bytes(32)).public
    with pytest.raises(ConfigurationError, match=message):
        encrypt_to_recipients([b"x"], [key], **options)  # type: ignore[arg-type]


def test_recipient_lists_are_checked() -> None:
    """No recipients, duplicates and low-order public keys are refused."""
    key = RecipientIdentity(bytes(32)).public
    with pytest.raises(ConfigurationError):
        encrypt_to_recipients([b"x"], [])
    with pytest.raises(ConfigurationError):
        encrypt_to_recipients([b"x"], [key, key])
    with pytest.raises(ConfigurationError):
        b"".join(encrypt_to_recipients([b"x"], [RecipientKey(bytes(32))]))


def test_not_an_escrow_stream() -> None:
    """Other data and unknown versions are format errors; a cut header is an integrity error."""
    owner = RecipientIdentity(bytes(32))
    with pytest.raises(FormatError, match="not a ctfy escrow"):
        unseal(b"PK\x03\x04 a zip file", owner)
    sealed = bytearray(seal(b"x", [owner.public], Cipher.AES_256_GCM, 64))
    sealed[8] = 2
    with pytest.raises(FormatError, match="version 2"):
        unseal(bytes(sealed), owner)
    with pytest.raises(IntegrityError):
        unseal(seal(b"x", [owner.public], Cipher.AES_256_GCM, 64)[:40], owner)
