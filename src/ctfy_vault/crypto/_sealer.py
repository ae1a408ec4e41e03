"""Master keys and the `Sealer`: chunk ids, compression and sealing for one repository."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Final

import attrs

from ctfy_vault.crypto import _compress
from ctfy_vault.crypto._seal import (
    AUTH_FAILED,
    FLAG_ZSTD,
    KEY_SIZE,
    NONCE_SIZE,
    REPO_ID_SIZE,
    Aead,
    Cipher,
    Kind,
    check_name,
    make_aead,
    open_payload,
    seal_payload,
)
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

MAX_CHUNK_SIZE: Final = 64 * 2**20
"""The largest plaintext `Sealer.open` and `Sealer.open_chunk` accept unless told otherwise."""

CHUNK_ID_SIZE: Final = 32

RandomBytes = Callable[[int], bytes]


def new_repo_id(randbytes: RandomBytes = os.urandom) -> bytes:
    """Draw a fresh 16-byte repository id.

    Args:
        randbytes: the source of randomness (``os.urandom``; tests pass a seeded one).

    Returns:
        16 random bytes.
    """
    return randbytes(REPO_ID_SIZE)


def _key_bytes(_instance: object, attribute: attrs.Attribute[bytes], value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise ConfigurationError(f"{attribute.name} must be {KEY_SIZE} bytes")


@attrs.frozen
class MasterKeys:
    """A repository's master keys: one seals objects, one names chunks.

    They are generated once at init and stored only wrapped in key slots; the repr never shows them.
    """

    data_key: bytes = attrs.field(repr=False, validator=_key_bytes)
    chunk_id_key: bytes = attrs.field(repr=False, validator=_key_bytes)

    @classmethod
    def generate(cls, randbytes: RandomBytes = os.urandom) -> MasterKeys:
        """Draw new master keys.

        Args:
            randbytes: the source of randomness (``os.urandom``; tests pass a seeded one).

        Returns:
            Fresh keys.
        """
        return cls(data_key=randbytes(KEY_SIZE), chunk_id_key=randbytes(KEY_SIZE))


@attrs.frozen
class SealedChunk:
    """A chunk ready to store: its id and the sealed bytes, written verbatim to every target."""

    id: bytes
    blob: bytearray = attrs.field(repr=False, hash=False)

    @property
    def name(self) -> str:
        """The chunk id in lowercase hex, the name its blob is bound to."""
        return self.id.hex()


def _check_repo_id(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != REPO_ID_SIZE:
        raise ConfigurationError(f"repo_id must be {REPO_ID_SIZE} bytes")


def _check_level(_instance: object, _attribute: object, value: int) -> None:
    if not 1 <= value <= 22:
        raise ConfigurationError("compression_level must be between 1 and 22")


@attrs.frozen(kw_only=True)
class Sealer:
    """Seals and opens every object of one repository (format v1).

    Build it with the repository id and master keys; `Sealer.plaintext` builds the unencrypted variant,
    which must be asked for by name. The instance is immutable and safe to share between threads.

    Attributes:
        repo_id: the 16-byte repository id, bound into every blob.
        keys: the master keys, or ``None`` for a plaintext repository.
        cipher: the AEAD for new blobs; blobs sealed with another cipher are refused.
        compression_level: the zstd level for chunks and manifests.
        randbytes: where nonces come from (``os.urandom``; golden-vector tests pass fixed bytes).
    """

    repo_id: bytes = attrs.field(validator=_check_repo_id)
    keys: MasterKeys | None = attrs.field(repr=False)
    cipher: Cipher = Cipher.AES_256_GCM
    compression_level: int = attrs.field(default=_compress.DEFAULT_LEVEL, validator=_check_level)
    randbytes: RandomBytes = attrs.field(default=os.urandom, repr=False, eq=False)
    _aead: Aead | None = attrs.field(init=False, repr=False, eq=False)

    @keys.validator
    def _check_keys(self, _attribute: object, value: MasterKeys | None) -> None:
        if (value is None) != (self.cipher is Cipher.NONE):
            raise ConfigurationError(
                "keys are required for an encrypted repository and absent only for a plaintext one"
            )

    def __attrs_post_init__(self) -> None:
        key = b"" if self.keys is None else self.keys.data_key
        object.__setattr__(self, "_aead", make_aead(self.cipher, key))

    @classmethod
    def plaintext(
        cls, *, repo_id: bytes, compression_level: int = _compress.DEFAULT_LEVEL
    ) -> Sealer:
        """Build a sealer that does not encrypt: SHA-256 chunk ids and an unkeyed damage check.

        Only for repositories created explicitly without encryption; anyone who can write to the
        storage can forge their content.

        Args:
            repo_id: the 16-byte repository id.
            compression_level: the zstd level.

        Returns:
            A plaintext sealer.
        """
        return cls(
            repo_id=repo_id, keys=None, cipher=Cipher.NONE, compression_level=compression_level
        )

    @property
    def encrypted(self) -> bool:
        """Whether blobs are encrypted and authenticated with a key."""
        return self.cipher is not Cipher.NONE

    # -- chunks ------------------------------------------------------------------------------

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        """Name a chunk: HMAC-SHA-256 under the chunk-id key (SHA-256 in plaintext repositories).

        Args:
            data: the chunk's plaintext.

        Returns:
            The 32-byte chunk id; equal plaintexts get equal ids only within this repository.
        """
        if self.keys is None:
            return hashlib.sha256(data).digest()
        return hmac.digest(self.keys.chunk_id_key, data, "sha256")

    def seal_chunk(self, data: bytes | memoryview) -> SealedChunk:
        """Name, compress and seal a chunk.

        Args:
            data: the chunk's plaintext (at most `MAX_CHUNK_SIZE` bytes by default on reading).

        Returns:
            The chunk id and the sealed blob.
        """
        chunk_id = self.chunk_id(data)
        return SealedChunk(id=chunk_id, blob=self.seal(Kind.CHUNK, chunk_id.hex(), data))

    def open_chunk(
        self,
        chunk_id: bytes,
        blob: bytes | bytearray | memoryview,
        *,
        max_size: int = MAX_CHUNK_SIZE,
    ) -> bytes:
        """Open a chunk and check that its plaintext still has the id it is stored under.

        Args:
            chunk_id: the id the blob was found under.
            blob: the stored bytes.
            max_size: the largest plaintext accepted.

        Returns:
            The chunk's plaintext.

        Raises:
            IntegrityError: wrong key, altered bytes, or a blob stored under another id.
            FormatError: an unknown format version, or a damaged payload inside a valid seal.
        """
        data = self.open(Kind.CHUNK, chunk_id.hex(), blob, max_size=max_size)
        if not hmac.compare_digest(self.chunk_id(data), chunk_id):
            raise IntegrityError(AUTH_FAILED)
        return data

    # -- any kind ----------------------------------------------------------------------------

    def _nonce(self) -> bytes:
        if self._aead is None:
            return bytes(NONCE_SIZE)
        nonce = self.randbytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise ConfigurationError(f"randbytes must return {NONCE_SIZE} bytes")
        return nonce

    def seal(
        self, kind: Kind, name: str, data: bytes | memoryview, *, compress: bool = True
    ) -> bytearray:
        """Seal one payload, compressing it first when that makes it smaller.

        Args:
            kind: what the payload is; bound into the blob.
            name: the logical name (chunk id hex, snapshot name, key id); bound into the blob.
            data: the plaintext.
            compress: try zstd first (it is kept only if smaller).

        Returns:
            The sealed blob: ``len(payload) + 32`` bytes, in a buffer nobody else holds.

        Raises:
            ConfigurationError: the name is empty, too long or has control characters.
        """
        encoded_name = check_name(name)
        frame = _compress.compress(data, self.compression_level) if compress else None
        return seal_payload(
            self._aead,
            cipher=self.cipher,
            kind=kind,
            flags=0 if frame is None else FLAG_ZSTD,
            nonce=self._nonce(),
            repo_id=self.repo_id,
            name=encoded_name,
            payload=data if frame is None else frame,
        )

    def open(
        self,
        kind: Kind,
        name: str,
        blob: bytes | bytearray | memoryview,
        *,
        max_size: int = MAX_CHUNK_SIZE,
    ) -> bytes:
        """Authenticate, decrypt and decompress one blob sealed by `seal`.

        Args:
            kind: the kind expected.
            name: the name the blob was read from.
            blob: the stored bytes.
            max_size: the largest plaintext accepted.

        Returns:
            The plaintext.

        Raises:
            IntegrityError: wrong key, altered bytes, or a blob of another name, kind or repository.
            FormatError: an unknown format version, or a damaged payload inside a valid seal.
        """
        _kind, flags, payload = open_payload(
            self._aead,
            cipher=self.cipher,
            kinds=(kind,),
            repo_id=self.repo_id,
            name=check_name(name),
            blob=blob,
        )
        if flags & FLAG_ZSTD:
            return _compress.decompress(payload, max_size)
        if len(payload) > max_size:
            raise FormatError(f"sealed payload has {len(payload)} bytes; the limit is {max_size}")
        return payload

    def seal_stream(self, kind: Kind, name: str, pieces: Iterable[bytes]) -> bytearray:
        """Compress a stream of byte strings into one zstd frame and seal it.

        The plaintext is never joined; peak memory is about twice the compressed size.

        Args:
            kind: what the payload is; bound into the blob.
            name: the logical name; bound into the blob.
            pieces: the plaintext, in order.

        Returns:
            The sealed blob.

        Raises:
            ConfigurationError: the name is empty, too long or has control characters.
        """
        encoded_name = check_name(name)
        frame = _compress.compress_stream(pieces, self.compression_level)
        try:
            return seal_payload(
                self._aead,
                cipher=self.cipher,
                kind=kind,
                flags=FLAG_ZSTD,
                nonce=self._nonce(),
                repo_id=self.repo_id,
                name=encoded_name,
                payload=frame,
            )
        finally:
            frame.release()

    def open_stream(
        self, kinds: Collection[Kind], name: str, blob: bytes | bytearray | memoryview
    ) -> tuple[Kind, Iterator[bytes]]:
        """Authenticate and decrypt a blob sealed by `seal_stream`, then stream its plaintext.

        Args:
            kinds: the kinds the caller accepts.
            name: the name the blob was read from.
            blob: the stored bytes.

        Returns:
            The blob's kind and an iterator over its plaintext in bounded pieces (the iterator
            raises `FormatError` if the compressed payload is damaged).

        Raises:
            IntegrityError: wrong key, altered bytes, or a blob of another name, kind or repository.
            FormatError: an unknown format version, or a payload that is not compressed.
        """
        kind, flags, payload = open_payload(
            self._aead,
            cipher=self.cipher,
            kinds=kinds,
            repo_id=self.repo_id,
            name=check_name(name),
            blob=blob,
        )
        if not flags & FLAG_ZSTD:
            raise FormatError("a streamed payload must be one zstd frame")
        return kind, _compress.decompress_stream(payload)
