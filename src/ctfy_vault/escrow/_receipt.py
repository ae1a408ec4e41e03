"""The deposit receipt (escrow receipt format v1): what was deposited, signed by the depositor."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from ctfy_vault.crypto import RecipientKey, SigningKey, VerifyKey
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

RECEIPT_FORMAT: Final = "ctfy-escrow-receipt"
RECEIPT_VERSION: Final = 1
MAX_RECEIPT_BYTES: Final = 1 << 20
_SIGNED_DOMAIN: Final = b"ctfy-escrow receipt v1\x00"
_TIME: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
BAD_SIGNATURE: Final = "escrow receipt signature does not verify (altered, or another signer)"


def canonical(value: object) -> bytes:
    """Encode JSON canonically: sorted keys, no spaces, UTF-8 (what the signature covers)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@attrs.frozen(kw_only=True)
class Receipt:
    """A signed deposit receipt: anyone holding the depositor's public key can check it.

    Attributes:
        deposit: the deposit's name (``<prefix><time>-<id>``); objects are ``<deposit>.escrow`` and
            ``<deposit>.receipt.json``.
        created: when the deposit was made (aware, UTC).
        source_kind: ``"git"`` or ``"folder"``.
        source: a description of the source.
        ref: the git ref asked for, ``None`` for a folder.
        commit: the commit id it resolved to, ``None`` for a folder.
        archive_format: how the plaintext archive is built (``"tar-pax-v1"``).
        archive_sha256: SHA-256 of the plaintext archive, hex.
        archive_size: its size in bytes.
        archive_entries: how many files, directories and symlinks it holds.
        ciphertext_object: the object key of the encrypted deposit.
        ciphertext_sha256: SHA-256 of the stored ciphertext, hex.
        ciphertext_size: its size in bytes.
        cipher: the payload AEAD name.
        chunk_size: the payload chunk size.
        recipients: the public keys the deposit is encrypted to.
        signer: the depositor's public key.
        signature: the Ed25519 signature over `signed_bytes`.
    """

    deposit: str
    created: datetime
    source_kind: str
    source: str
    ref: str | None
    commit: str | None
    archive_format: str
    archive_sha256: str
    archive_size: int
    archive_entries: int
    ciphertext_object: str
    ciphertext_sha256: str
    ciphertext_size: int
    cipher: str
    chunk_size: int
    recipients: tuple[RecipientKey, ...]
    signer: VerifyKey
    signature: bytes = attrs.field(default=b"", repr=False)

    @property
    def receipt_object(self) -> str:
        """The object key of the receipt itself."""
        return self.deposit + ".receipt.json"

    def body(self) -> dict[str, Any]:
        """The signed content, as JSON-ready data (everything but the signature)."""
        return {
            "archive": {
                "entries": self.archive_entries,
                "format": self.archive_format,
                "sha256": self.archive_sha256,
                "size": self.archive_size,
            },
            "ciphertext": {
                "chunk_size": self.chunk_size,
                "cipher": self.cipher,
                "object": self.ciphertext_object,
                "sha256": self.ciphertext_sha256,
                "size": self.ciphertext_size,
            },
            "created": self.created.astimezone(UTC).strftime(_TIME),
            "deposit": self.deposit,
            "format": RECEIPT_FORMAT,
            "recipients": [{"key_id": r.key_id, "public_key": r.text} for r in self.recipients],
            "signer": {"key_id": self.signer.key_id, "public_key": self.signer.text},
            "source": {
                "commit": self.commit,
                "description": self.source,
                "kind": self.source_kind,
                "ref": self.ref,
            },
            "version": RECEIPT_VERSION,
        }

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers: a domain string, then the canonical body."""
        return _SIGNED_DOMAIN + canonical(self.body())

    def sign(self, key: SigningKey) -> Receipt:
        """Return this receipt signed with ``key``.

        Raises:
            ConfigurationError: ``key`` is not the receipt's signer.
        """
        if key.public != self.signer:
            raise ConfigurationError("the signing key does not match the receipt's signer")
        return attrs.evolve(self, signature=key.sign(self.signed_bytes()))

    def check(self, signer: VerifyKey | None = None) -> None:
        """Verify the signature, with the receipt's own signer key or a pinned one.

        Without ``signer`` this proves only that the receipt is unchanged since whoever holds the
        receipt's signer key signed it; pass the depositor's known key to prove who that was.

        Raises:
            IntegrityError: the signature does not verify, or the signer is not ``signer``.
        """
        if signer is not None and signer != self.signer:
            raise IntegrityError(BAD_SIGNATURE)
        try:
            self.signer.verify(self.signed_bytes(), self.signature)
        except IntegrityError:
            raise IntegrityError(BAD_SIGNATURE) from None

    def encode(self) -> bytes:
        """The stored document: the body plus the signature, indented JSON for people to read."""
        document = {**self.body(), "signature": base64.b64encode(self.signature).decode("ascii")}
        return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def decode(cls, document: bytes) -> Receipt:
        """Parse a stored receipt (without checking its signature: call `check`).

        Raises:
            FormatError: not a receipt, an unknown version, or malformed.
        """
        if len(document) > MAX_RECEIPT_BYTES:
            raise FormatError(f"escrow receipt is larger than {MAX_RECEIPT_BYTES} bytes")
        try:
            data = json.loads(document)
        except (ValueError, RecursionError):
            raise FormatError("escrow receipt is not JSON") from None
        if not isinstance(data, dict) or data.get("format") != RECEIPT_FORMAT:
            raise FormatError("not an escrow receipt")
        if data.get("version") != RECEIPT_VERSION:
            raise FormatError(
                f"escrow receipt version {data.get('version')!r}; this release reads "
                f"version {RECEIPT_VERSION}"
            )
        try:
            receipt = _from_data(data)
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as err:
            if isinstance(err, FormatError):
                raise
            raise FormatError("escrow receipt is malformed") from None
        if canonical({**receipt.body(), "signature": data["signature"]}) != canonical(data):
            raise FormatError("escrow receipt has unexpected or inconsistent fields")
        return receipt


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _count(value: object) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("expected a count")
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)


def _from_data(data: dict[str, Any]) -> Receipt:
    archive, cipher, source = data["archive"], data["ciphertext"], data["source"]
    try:
        recipients = tuple(RecipientKey.from_text(r["public_key"]) for r in data["recipients"])
        signer = VerifyKey.from_text(data["signer"]["public_key"])
    except ConfigurationError:
        raise FormatError("escrow receipt holds a malformed key") from None
    return Receipt(
        deposit=_text(data["deposit"]),
        created=datetime.strptime(_text(data["created"]), _TIME).replace(tzinfo=UTC),
        source_kind=_text(source["kind"]),
        source=_text(source["description"]),
        ref=_optional(source["ref"]),
        commit=_optional(source["commit"]),
        archive_format=_text(archive["format"]),
        archive_sha256=_text(archive["sha256"]),
        archive_size=_count(archive["size"]),
        archive_entries=_count(archive["entries"]),
        ciphertext_object=_text(cipher["object"]),
        ciphertext_sha256=_text(cipher["sha256"]),
        ciphertext_size=_count(cipher["size"]),
        cipher=_text(cipher["cipher"]),
        chunk_size=_count(cipher["chunk_size"]),
        recipients=recipients,
        signer=signer,
        signature=base64.b64decode(_text(data["signature"]), validate=True),
    )
