"""The sealed-object envelope of format v1: a 16-byte header, the AEAD ciphertext and a 16-byte tag.

Layout (see ``docs/format.md``)::

    offset  size  field
    0       1     format version (1)
    1       1     kind (`Kind`)
    2       1     cipher (`Cipher`)
    3       1     flags (bit 0: the payload is one zstd frame; other bits are zero)
    4       12    nonce
    16      n     ciphertext of the payload
    16+n    16    authentication tag

The associated data binds the blob to its repository, its kind and its name, so a blob copied to
another name, kind or repository fails to open.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Collection
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

FORMAT_VERSION: Final = 1
HEADER_SIZE: Final = 16
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
OVERHEAD: Final = HEADER_SIZE + TAG_SIZE
KEY_SIZE: Final = 32
REPO_ID_SIZE: Final = 16
MAX_NAME_BYTES: Final = 1024
FLAG_ZSTD: Final = 0x01
_KNOWN_FLAGS: Final = FLAG_ZSTD
_DOMAIN: Final = b"ctfy-vault sealed v1\x00"

AUTH_FAILED: Final = (
    "sealed object failed authentication (wrong key, or altered or misplaced bytes)"
)


#: The bytes a sealed blob's name must not contain: C0 control characters and DEL.
_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")


class Kind(enum.IntEnum):
    """What a sealed blob holds; bound into its associated data and stored in header byte 1."""

    CHUNK = 1
    MANIFEST = 2
    PRUNE_RECORD = 3
    KEY_SLOT = 4
    PACK_HEADER = 5
    """Format v2: the list of a pack's chunks (``docs/format.md``, "Packs")."""
    PACK_TRAILER = 6
    """Format v2: the fixed-size last bytes of a pack, locating its header."""
    INDEX = 7
    """Format v2: an index object mapping chunk ids to packs, offsets and lengths."""
    TAG_RECORD = 8
    """A chain entry changing an earlier snapshot's tags (``docs/format.md``, "Tag records")."""


class Cipher(enum.IntEnum):
    """The AEAD that sealed a blob; stored in header byte 2."""

    NONE = 0
    """No encryption (explicitly requested plaintext repositories): an unkeyed SHA-256 check only."""
    AES_256_GCM = 1
    CHACHA20_POLY1305 = 2


Aead = AESGCM | ChaCha20Poly1305


def make_aead(cipher: Cipher, key: bytes) -> Aead | None:
    """Build the AEAD object for ``cipher``, or ``None`` for `Cipher.NONE`.

    Args:
        cipher: which AEAD.
        key: a 32-byte key (ignored for `Cipher.NONE`).

    Returns:
        The AEAD primitive, ready to encrypt and decrypt.
    """
    if cipher is Cipher.AES_256_GCM:
        return AESGCM(key)
    if cipher is Cipher.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    return None


def check_name(name: str) -> bytes:
    """Validate a blob name and return its UTF-8 bytes.

    Args:
        name: the logical name the blob is stored under (chunk id, snapshot name, key id).

    Returns:
        The name encoded as UTF-8.

    Raises:
        ConfigurationError: empty, too long, not encodable or containing control characters.
    """
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("a sealed blob's name must be valid Unicode") from None
    if not encoded or len(encoded) > MAX_NAME_BYTES:
        raise ConfigurationError(f"a sealed blob's name must have 1 to {MAX_NAME_BYTES} bytes")
    if _CONTROL.search(encoded):
        raise ConfigurationError("a sealed blob's name must not contain control characters")
    return encoded


def associated_data(header: bytes | memoryview, repo_id: bytes, name: bytes) -> bytes:
    """Build the associated data: domain, the header's first four bytes, repository id and name.

    Args:
        header: at least the first four header bytes (version, kind, cipher, flags).
        repo_id: the 16-byte repository id.
        name: the blob's name as UTF-8.

    Returns:
        The bytes every AEAD call of format v1 authenticates without encrypting.
    """
    return _DOMAIN + bytes(header[:4]) + repo_id + name


def seal_payload(
    aead: Aead | None,
    *,
    cipher: Cipher,
    kind: Kind,
    flags: int,
    nonce: bytes,
    repo_id: bytes,
    name: bytes,
    payload: bytes | memoryview,
) -> bytearray:
    """Seal an already encoded (and possibly compressed) payload into a format v1 blob.

    Args:
        aead: the primitive built by `make_aead`, ``None`` for `Cipher.NONE`.
        cipher: the cipher recorded in the header.
        kind: what the payload is.
        flags: header flags (`FLAG_ZSTD`).
        nonce: 12 fresh random bytes (zeros for `Cipher.NONE`).
        repo_id: the 16-byte repository id.
        name: the blob's name as UTF-8.
        payload: the bytes to protect.

    Returns:
        The sealed blob, in a new buffer the ciphertext was written into (no extra copy).
    """
    header = bytes((FORMAT_VERSION, kind, cipher, flags)) + nonce
    ad = associated_data(header, repo_id, name)
    out = bytearray(HEADER_SIZE + len(payload) + TAG_SIZE)
    out[:HEADER_SIZE] = header
    if aead is None:
        out[HEADER_SIZE:-TAG_SIZE] = payload
        out[-TAG_SIZE:] = _plain_tag(ad, nonce, payload)
    else:
        aead.encrypt_into(nonce, payload, ad, memoryview(out)[HEADER_SIZE:])
    return out


def open_payload(
    aead: Aead | None,
    *,
    cipher: Cipher,
    kinds: Collection[Kind],
    repo_id: bytes,
    name: bytes,
    blob: bytes | bytearray | memoryview,
) -> tuple[Kind, int, bytes]:
    """Authenticate and decrypt a format v1 blob.

    Args:
        aead: the primitive built by `make_aead`, ``None`` for `Cipher.NONE`.
        cipher: the cipher the repository uses; a blob claiming another one is refused.
        kinds: the kinds the caller accepts.
        repo_id: the 16-byte repository id.
        name: the name the blob was read from, as UTF-8.
        blob: the stored bytes.

    Returns:
        The blob's kind, its flags and the decrypted payload.

    Raises:
        FormatError: the blob is empty or has a format version this release cannot read.
        IntegrityError: anything else is wrong (key, bytes, name, kind, repository, length).
    """
    view = memoryview(blob)
    if len(view) == 0:
        raise FormatError("sealed object is empty: no format version byte")
    if view[0] != FORMAT_VERSION:
        raise FormatError(
            f"sealed object has format version {view[0]}; this release reads version {FORMAT_VERSION}"
        )
    if len(view) < OVERHEAD:
        raise IntegrityError(f"{AUTH_FAILED}: shorter than the {OVERHEAD}-byte minimum")
    kind_byte, cipher_byte, flags = view[1], view[2], view[3]
    if cipher_byte != cipher or kind_byte not in {int(k) for k in kinds} or flags & ~_KNOWN_FLAGS:
        raise IntegrityError(AUTH_FAILED)
    nonce = bytes(view[4:HEADER_SIZE])
    ad = associated_data(view, repo_id, name)
    body = view[HEADER_SIZE:]
    if aead is None:
        payload = bytes(body[:-TAG_SIZE])
        if not hmac.compare_digest(_plain_tag(ad, nonce, payload), body[-TAG_SIZE:]):
            raise IntegrityError(AUTH_FAILED)
    else:
        try:
            payload = aead.decrypt(nonce, body, ad)
        except InvalidTag:
            raise IntegrityError(AUTH_FAILED) from None
    return Kind(kind_byte), flags, payload


def _plain_tag(ad: bytes, nonce: bytes, payload: bytes | memoryview) -> bytes:
    # Plaintext repositories still detect accidental damage and misplaced blobs; nothing stops a
    # deliberate forger, which is why they exist only when asked for explicitly.
    digest = hashlib.sha256(ad)
    digest.update(nonce)
    digest.update(payload)
    return digest.digest()[:TAG_SIZE]
