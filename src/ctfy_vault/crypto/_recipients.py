"""X25519 recipient encryption and Ed25519 signatures for escrow deposits (escrow format v1).

A deposit is encrypted to one or more recipients' X25519 public keys: a random 32-byte file key is
wrapped for each recipient with an ephemeral-static X25519 exchange and HKDF-SHA-256, and the payload
is cut into chunks sealed with AES-256-GCM (or ChaCha20-Poly1305) under a key derived from the file
key. Each chunk's nonce holds its counter and a "final" flag, and every chunk authenticates the header
MAC, so reordering, truncation, extension or a swapped header all fail. The depositor keeps no secret
that opens the deposit: only the recipients' private keys do.

Layout (see ``docs/escrow.md``)::

    offset    size  field
    0         8     magic "ctfyescr"
    8         1     escrow format version (1)
    9         1     cipher (`Cipher`: 1 AES-256-GCM, 2 ChaCha20-Poly1305)
    10        1     log2 of the plaintext chunk size (6 to 24)
    11        1     recipient count n (1 to 255)
    12        16    payload salt
    28        88*n  stanzas: key id (8), ephemeral X25519 public key (32), wrapped file key (48)
    28+88n    32    header MAC: HMAC-SHA-256 under a key derived from the file key
    60+88n    ...   chunks: ciphertext + 16-byte tag each

Keys are written as text: a versioned prefix naming the algorithm and role, then base64url (no
padding) of the 32 key bytes followed by a 4-byte checksum, ``SHA-256(prefix || key)[:4]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

import attrs
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ctfy_vault.crypto._seal import KEY_SIZE, NONCE_SIZE, TAG_SIZE, Aead, Cipher, make_aead
from ctfy_vault.crypto._sealer import RandomBytes
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

ESCROW_MAGIC: Final = b"ctfyescr"
ESCROW_FORMAT_VERSION: Final = 1
ESCROW_CHUNK_SIZE: Final = 64 * 1024
"""The default plaintext chunk size: 64 KiB, sealed one at a time (memory stays at a few chunks)."""

KEY_ID_SIZE: Final = 8
SALT_SIZE: Final = 16
MAC_SIZE: Final = 32
STANZA_SIZE: Final = KEY_ID_SIZE + KEY_SIZE + KEY_SIZE + TAG_SIZE
FIXED_HEADER_SIZE: Final = 12 + SALT_SIZE
MIN_CHUNK_LOG2: Final = 6
MAX_CHUNK_LOG2: Final = 24
MAX_RECIPIENTS: Final = 255
_CHECKSUM_SIZE: Final = 4
_WRAP_INFO: Final = b"ctfy-escrow v1 x25519 wrap"
_MAC_INFO: Final = b"ctfy-escrow v1 header mac"
_PAYLOAD_INFO: Final = b"ctfy-escrow v1 payload"
_ZERO_NONCE: Final = bytes(NONCE_SIZE)

NOT_OPENED: Final = "escrow deposit failed authentication (not a recipient's key, or altered bytes)"


# -- key text --------------------------------------------------------------------------------


def _checksum(prefix: str, key: bytes) -> bytes:
    return hashlib.sha256(prefix.encode("ascii") + key).digest()[:_CHECKSUM_SIZE]


def _encode_text(prefix: str, key: bytes) -> str:
    body = base64.urlsafe_b64encode(key + _checksum(prefix, key)).decode("ascii")
    return prefix + body.rstrip("=")


def _decode_text(text: object, prefix: str, what: str) -> bytes:
    # The message never repeats the text: it may be a secret key pasted in the wrong place.
    if not isinstance(text, str):
        raise ConfigurationError(f"{what} must be text starting with {prefix!r}")
    text = text.strip()
    if not text.startswith(prefix):
        raise ConfigurationError(f"{what} must start with {prefix!r}")
    body = text[len(prefix) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{what} is not valid base64url") from None
    if len(raw) != KEY_SIZE + _CHECKSUM_SIZE or _encode_text(prefix, raw[:KEY_SIZE]) != text:
        raise ConfigurationError(f"{what} is damaged (wrong length or checksum)")
    return raw[:KEY_SIZE]


def _key_id(algorithm: bytes, public: bytes) -> str:
    return hashlib.sha256(b"ctfy-escrow v1 key id\x00" + algorithm + b"\x00" + public).hexdigest()[
        : 2 * KEY_ID_SIZE
    ]


def _check_key(_instance: object, attribute: attrs.Attribute[bytes], value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise ConfigurationError(f"{attribute.name} must be {KEY_SIZE} bytes")


class _TextKey:
    """What the escrow keys share: a 32-byte value with a text form of prefix, key and checksum."""

    PREFIX: ClassVar[str]
    _WHAT: ClassVar[str]
    value: bytes

    if TYPE_CHECKING:

        def __init__(self, value: bytes) -> None: ...

    @classmethod
    def from_text(cls, text: str) -> Self:
        """Parse the text form (the class's ``PREFIX``, then the key and a checksum).

        Raises:
            ConfigurationError: another kind of key, or a damaged one (checksum); the text is
                never echoed (it may be a secret key pasted in the wrong place).
        """
        return cls(_decode_text(text, cls.PREFIX, cls._WHAT))


class _PublicKey(_TextKey):
    """A public key: its text form is safe to publish, and it names itself by a key id."""

    _ALGORITHM: ClassVar[bytes]

    @property
    def text(self) -> str:
        """The text form, safe to publish."""
        return _encode_text(self.PREFIX, self.value)

    @property
    def key_id(self) -> str:
        """16 hex digits naming this key in headers and receipts."""
        return _key_id(self._ALGORITHM, self.value)


class _SecretKey(_TextKey):
    """A private key: drawn at random, written only to a key file, named by its public key."""

    if TYPE_CHECKING:

        @property
        def public(self) -> _PublicKey: ...

    @classmethod
    def generate(cls, randbytes: RandomBytes = os.urandom) -> Self:
        """Draw a new private key (X25519 clamps any 32 bytes into a valid key; Ed25519 seeds)."""
        return cls(randbytes(KEY_SIZE))

    def secret_text(self) -> str:
        """The private key's text form: a secret, for the key file only."""
        return _encode_text(self.PREFIX, self.value)

    @property
    def key_id(self) -> str:
        """The public key's id."""
        return self.public.key_id


@attrs.frozen
class RecipientKey(_PublicKey):
    """An X25519 public key a deposit is encrypted to (a notary's, a trustee's).

    Attributes:
        value: the 32-byte public key.
    """

    PREFIX: ClassVar[str] = "ctfy-escrow-x25519-public-v1:"
    _WHAT: ClassVar[str] = "an escrow recipient public key"
    _ALGORITHM: ClassVar[bytes] = b"x25519"
    value: bytes = attrs.field(validator=_check_key, repr=bytes.hex)


@attrs.frozen
class RecipientIdentity(_SecretKey):
    """An X25519 private key that opens deposits made to its `RecipientKey`; never in reprs.

    Attributes:
        value: the 32-byte private key.
    """

    PREFIX: ClassVar[str] = "ctfy-escrow-x25519-secret-v1:"
    _WHAT: ClassVar[str] = "an escrow recipient private key"
    value: bytes = attrs.field(repr=False, validator=_check_key)

    @property
    def public(self) -> RecipientKey:
        """The matching public key."""
        private = X25519PrivateKey.from_private_bytes(self.value)
        return RecipientKey(private.public_key().public_bytes_raw())


@attrs.frozen
class VerifyKey(_PublicKey):
    """An Ed25519 public key that checks a depositor's receipts.

    Attributes:
        value: the 32-byte public key.
    """

    PREFIX: ClassVar[str] = "ctfy-escrow-ed25519-public-v1:"
    _WHAT: ClassVar[str] = "an escrow signer public key"
    _ALGORITHM: ClassVar[bytes] = b"ed25519"
    value: bytes = attrs.field(validator=_check_key, repr=bytes.hex)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature over ``message``.

        Raises:
            IntegrityError: the signature is not this key's over these bytes.
        """
        try:
            Ed25519PublicKey.from_public_bytes(self.value).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise IntegrityError("signature does not verify with this key") from None


@attrs.frozen
class SigningKey(_SecretKey):
    """An Ed25519 private key (its 32-byte seed) that signs deposit receipts; never in reprs.

    Attributes:
        value: the 32-byte seed.
    """

    PREFIX: ClassVar[str] = "ctfy-escrow-ed25519-secret-v1:"
    _WHAT: ClassVar[str] = "an escrow signing key"
    value: bytes = attrs.field(repr=False, validator=_check_key)

    @property
    def public(self) -> VerifyKey:
        """The matching public key."""
        private = Ed25519PrivateKey.from_private_bytes(self.value)
        return VerifyKey(private.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (Ed25519 is deterministic: the same bytes give the same signature)."""
        return Ed25519PrivateKey.from_private_bytes(self.value).sign(message)


# -- header ----------------------------------------------------------------------------------


@attrs.frozen
class Stanza:
    """One recipient's entry in an escrow header: its key id and the file key wrapped for it."""

    key_id: str
    ephemeral: bytes = attrs.field(repr=False)
    wrapped: bytes = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class EscrowHeader:
    """The readable part of an escrow deposit: everything `read_escrow_header` can tell without a key.

    Attributes:
        cipher: the payload AEAD.
        chunk_size: the plaintext chunk size.
        recipients: the recipients' key ids, in header order.
        size: the header's length in bytes (the first chunk starts there).
    """

    cipher: Cipher
    chunk_size: int
    recipients: tuple[str, ...]
    size: int
    _salt: bytes = attrs.field(repr=False, alias="salt")
    _stanzas: tuple[Stanza, ...] = attrs.field(repr=False, alias="stanzas")
    _raw: bytes = attrs.field(repr=False, alias="raw")


class _Reader:
    """Reads exact sizes from an iterable of blocks; fewer bytes only at the end."""

    def __init__(self, blocks: Iterable[bytes | bytearray | memoryview]) -> None:
        self._blocks = iter(blocks)
        self._current = b""
        self._pos = 0

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        need = size
        while need:
            if self._pos >= len(self._current):
                block = next(self._blocks, None)
                if block is None:
                    break
                self._current, self._pos = bytes(block), 0
                continue
            piece = self._current[self._pos : self._pos + need]
            self._pos += len(piece)
            need -= len(piece)
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(secret)


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    if not any(shared):
        # A low-order public key gives an all-zero secret: refuse instead of wrapping under it.
        raise ConfigurationError("recipient public key is not a usable X25519 key")
    return _hkdf(shared, ephemeral + recipient, _WRAP_INFO)


def _nonce(counter: int, final: bool) -> bytes:
    return counter.to_bytes(NONCE_SIZE - 1, "big") + (b"\x01" if final else b"\x00")


def _parse_header(reader: _Reader) -> EscrowHeader:
    fixed = reader.read(FIXED_HEADER_SIZE)
    if len(fixed) < 9 or fixed[:8] != ESCROW_MAGIC:
        raise FormatError("not a ctfy escrow deposit (bad magic)")
    if fixed[8] != ESCROW_FORMAT_VERSION:
        raise FormatError(
            f"escrow deposit has format version {fixed[8]}; "
            f"this release reads version {ESCROW_FORMAT_VERSION}"
        )
    if len(fixed) < FIXED_HEADER_SIZE:
        raise IntegrityError(NOT_OPENED)
    cipher_byte, log2, count = fixed[9], fixed[10], fixed[11]
    if (
        cipher_byte not in (Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305)
        or not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2
        or count == 0
    ):
        raise IntegrityError(NOT_OPENED)
    body = reader.read(count * STANZA_SIZE + MAC_SIZE)
    if len(body) != count * STANZA_SIZE + MAC_SIZE:
        raise IntegrityError(NOT_OPENED)
    stanzas = []
    for i in range(count):
        raw = body[i * STANZA_SIZE : (i + 1) * STANZA_SIZE]
        stanzas.append(
            Stanza(
                key_id=raw[:KEY_ID_SIZE].hex(),
                ephemeral=raw[KEY_ID_SIZE : KEY_ID_SIZE + KEY_SIZE],
                wrapped=raw[KEY_ID_SIZE + KEY_SIZE :],
            )
        )
    raw_header = fixed + body
    return EscrowHeader(
        cipher=Cipher(cipher_byte),
        chunk_size=1 << log2,
        recipients=tuple(s.key_id for s in stanzas),
        size=len(raw_header),
        salt=fixed[12:FIXED_HEADER_SIZE],
        stanzas=tuple(stanzas),
        raw=raw_header,
    )


def read_escrow_header(blocks: Iterable[bytes | bytearray | memoryview]) -> EscrowHeader:
    """Parse an escrow deposit's header without any key (what `verify` can check).

    Args:
        blocks: the deposit's bytes (at least the header), as an iterable of blocks.

    Returns:
        The header's public part. Nothing is authenticated yet: only a recipient can check the MAC.

    Raises:
        FormatError: not an escrow deposit, or an unknown version.
        IntegrityError: a malformed or truncated header.
    """
    return _parse_header(_Reader(blocks))


# -- encryption ------------------------------------------------------------------------------


def _check_chunk_size(chunk_size: int) -> int:
    log2 = chunk_size.bit_length() - 1
    if chunk_size != 1 << log2 or not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
        raise ConfigurationError(
            f"chunk_size must be a power of two from {1 << MIN_CHUNK_LOG2} to {1 << MAX_CHUNK_LOG2}"
        )
    return log2


def encrypt_to_recipients(
    blocks: Iterable[bytes | bytearray | memoryview],
    recipients: Sequence[RecipientKey],
    *,
    cipher: Cipher = Cipher.AES_256_GCM,
    chunk_size: int = ESCROW_CHUNK_SIZE,
    randbytes: RandomBytes = os.urandom,
) -> Iterator[bytes]:
    """Encrypt a stream to X25519 recipients (escrow format v1), yielding the header then chunks.

    Memory stays at about two chunks whatever the stream's length. The caller keeps no key that can
    decrypt the result; only the recipients' private keys can.

    Args:
        blocks: the plaintext, as an iterable of byte blocks of any sizes.
        recipients: 1 to 255 distinct public keys.
        cipher: the payload AEAD (AES-256-GCM or ChaCha20-Poly1305).
        chunk_size: the plaintext chunk size, a power of two from 64 B to 16 MiB.
        randbytes: the source of the file key, salt and ephemeral keys (golden vectors fix it).

    Yields:
        The header, then one sealed chunk at a time (the last one flagged final).

    Raises:
        ConfigurationError: no recipients, too many, duplicates, a bad cipher or chunk size.
    """
    log2 = _check_chunk_size(chunk_size)
    if cipher not in (Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305):
        raise ConfigurationError("escrow deposits are encrypted: choose AES-256-GCM or ChaCha20")
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ConfigurationError(f"an escrow deposit needs 1 to {MAX_RECIPIENTS} recipients")
    if len({r.value for r in recipients}) != len(recipients):
        raise ConfigurationError("an escrow deposit's recipients must be distinct")
    # Checked here, not in the generator, so that bad arguments fail at the call.
    return _encrypt(blocks, recipients, cipher=cipher, log2=log2, randbytes=randbytes)


def _encrypt(
    blocks: Iterable[bytes | bytearray | memoryview],
    recipients: Sequence[RecipientKey],
    *,
    cipher: Cipher,
    log2: int,
    randbytes: RandomBytes,
) -> Iterator[bytes]:
    file_key = randbytes(KEY_SIZE)
    salt = randbytes(SALT_SIZE)
    fixed = ESCROW_MAGIC + bytes((ESCROW_FORMAT_VERSION, cipher, log2, len(recipients))) + salt
    header = bytearray(fixed)
    for recipient in recipients:
        ephemeral = X25519PrivateKey.from_private_bytes(randbytes(KEY_SIZE))
        ephemeral_public = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.value))
        except ValueError:
            raise ConfigurationError("recipient public key is not a usable X25519 key") from None
        wrap = make_aead(cipher, _wrap_key(shared, ephemeral_public, recipient.value))
        assert wrap is not None  # noqa: S101 - both ciphers checked above
        header += bytes.fromhex(recipient.key_id) + ephemeral_public
        header += wrap.encrypt(_ZERO_NONCE, file_key, fixed[:12])
    mac = hmac.digest(_hkdf(file_key, salt, _MAC_INFO), bytes(header), "sha256")
    header += mac
    yield bytes(header)
    aead = make_aead(cipher, _hkdf(file_key, salt, _PAYLOAD_INFO))
    assert aead is not None  # noqa: S101
    reader = _Reader(blocks)
    size = 1 << log2
    current = reader.read(size)
    counter = 0
    while True:
        following = reader.read(size)
        final = not following
        yield aead.encrypt(_nonce(counter, final), current, mac)
        if final:
            return
        current, counter = following, counter + 1


# -- decryption ------------------------------------------------------------------------------


def _file_key(header: EscrowHeader, identity: RecipientIdentity) -> bytes:
    private = X25519PrivateKey.from_private_bytes(identity.value)
    own = private.public_key().public_bytes_raw()
    own_id = _key_id(b"x25519", own)
    fixed = header._raw[:12]  # noqa: SLF001 - same module
    for stanza in header._stanzas:  # noqa: SLF001
        if stanza.key_id != own_id:
            continue
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(stanza.ephemeral))
            wrap = make_aead(header.cipher, _wrap_key(shared, stanza.ephemeral, own))
            assert wrap is not None  # noqa: S101 - the header parser admits only AEADs
            return wrap.decrypt(_ZERO_NONCE, stanza.wrapped, fixed)
        except (InvalidTag, ValueError, ConfigurationError):
            continue
    raise IntegrityError(NOT_OPENED)


def decrypt_from_recipient(
    blocks: Iterable[bytes | bytearray | memoryview], identity: RecipientIdentity
) -> Iterator[bytes]:
    """Decrypt an escrow deposit with a recipient's private key, yielding verified plaintext chunks.

    Each chunk is authenticated before it is yielded, but a stream cut short or altered later is only
    detected when the reader gets there: treat the output as provisional until the iterator ends
    without error (`ctfy_vault.escrow.open_deposit` writes to a temporary file and renames it).

    Args:
        blocks: the deposit's bytes, as an iterable of blocks of any sizes.
        identity: the recipient's private key.

    Yields:
        Plaintext chunks, in order.

    Raises:
        FormatError: not an escrow deposit, or an unknown version.
        IntegrityError: not a recipient's key, or any altered, reordered, truncated or extended bytes.
    """
    reader = _Reader(blocks)
    header = _parse_header(reader)
    file_key = _file_key(header, identity)
    salt = header._salt  # noqa: SLF001 - same module
    raw = header._raw  # noqa: SLF001
    mac = raw[-MAC_SIZE:]
    expected = hmac.digest(_hkdf(file_key, salt, _MAC_INFO), raw[:-MAC_SIZE], "sha256")
    if not hmac.compare_digest(mac, expected):
        raise IntegrityError(NOT_OPENED)
    aead = make_aead(header.cipher, _hkdf(file_key, salt, _PAYLOAD_INFO))
    assert aead is not None  # noqa: S101
    yield from _open_chunks(reader, aead, mac, header.chunk_size + TAG_SIZE)


def _open_chunks(reader: _Reader, aead: Aead, mac: bytes, record: int) -> Iterator[bytes]:
    current = reader.read(record)
    counter = 0
    while True:
        following = reader.read(record)
        final = not following
        if len(current) < TAG_SIZE:
            raise IntegrityError(NOT_OPENED)
        try:
            plain = aead.decrypt(_nonce(counter, final), current, mac)
        except InvalidTag:
            raise IntegrityError(NOT_OPENED) from None
        if final and not plain and counter:
            # Only an empty stream ends with an empty chunk; the encoding is canonical.
            raise IntegrityError(NOT_OPENED)
        yield plain
        if final:
            return
        current, counter = following, counter + 1
