"""Key slots: the master keys wrapped under a passphrase (scrypt) or a raw 32-byte key (HKDF).

One slot per access key, stored as JSON under ``keys/<key-id>`` by `ctfy_vault.repository`. The slot's
public part (id, type, KDF parameters, creation time) is readable without a key; the wrapped part is a
sealed blob of kind `Kind.KEY_SLOT`, bound to the repository id and the key id, whose plaintext repeats
the public part so that any edit of it is detected when the slot is opened.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ctfy_vault.crypto._seal import (
    KEY_SIZE,
    NONCE_SIZE,
    Cipher,
    Kind,
    check_name,
    make_aead,
    open_payload,
    seal_payload,
)
from ctfy_vault.crypto._sealer import MasterKeys, RandomBytes
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

SLOT_FORMAT: Final = 1
SALT_SIZE: Final = 16
_MAX_SLOT_BYTES: Final = 64 * 1024
_MAX_SCRYPT_MEMORY: Final = 2**30
_KEY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_HKDF_INFO: Final = b"ctfy-vault v1 key slot"
NO_SLOT_OPENS: Final = "no key slot opens with this passphrase or key"


def _power_of_two(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or value < 2 or value & (value - 1):
        raise ConfigurationError("scrypt n must be a power of two, at least 2")


def _positive(_instance: object, attribute: attrs.Attribute[int], value: Any) -> None:
    if type(value) is not int or not 1 <= value <= 64:
        raise ConfigurationError(f"scrypt {attribute.name} must be between 1 and 64")


@attrs.frozen(kw_only=True)
class ScryptParams:
    """Scrypt cost parameters, stored in each passphrase slot.

    The defaults (n=2**17, r=8, p=1: 128 MiB, about 0.7 s on the reference machine) keep a guessing
    attacker slow; tests pass far cheaper values explicitly. Memory (128 * n * r bytes) is capped at
    1 GiB so that a tampered slot cannot make the reader allocate without bound.
    """

    n: int = attrs.field(default=2**17, validator=_power_of_two)
    r: int = attrs.field(default=8, validator=_positive)
    p: int = attrs.field(default=1, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if 128 * self.n * self.r > _MAX_SCRYPT_MEMORY:
            raise ConfigurationError("scrypt parameters need more than 1 GiB of memory")


DEFAULT_SCRYPT: Final = ScryptParams()


def _check_passphrase(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError("a passphrase must be a non-empty string")


@attrs.frozen
class Passphrase:
    """A passphrase that opens (or creates) a passphrase key slot; never shown in reprs.

    The text is normalised to Unicode NFC and encoded as UTF-8 before scrypt, so the same passphrase
    typed on different systems opens the same slot.

    Attributes:
        value: the passphrase.
        scrypt: the cost parameters for a new slot (opening uses the slot's own).
    """

    value: str = attrs.field(repr=False, validator=_check_passphrase)
    scrypt: ScryptParams = attrs.field(default=DEFAULT_SCRYPT, kw_only=True)

    def derive(self, salt: bytes, params: ScryptParams) -> bytes:
        """Derive the 32-byte slot key.

        Args:
            salt: the slot's salt.
            params: the slot's scrypt parameters.

        Returns:
            The slot key.
        """
        secret = unicodedata.normalize("NFC", self.value).encode("utf-8")
        kdf = Scrypt(salt=salt, length=KEY_SIZE, n=params.n, r=params.r, p=params.p)
        return kdf.derive(secret)


def _check_raw(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise ConfigurationError(f"a raw key must be exactly {KEY_SIZE} bytes")


@attrs.frozen
class RawKey:
    """A 32-byte key from the application (an environment variable, a KMS); never shown in reprs.

    Attributes:
        value: the key.
    """

    value: bytes = attrs.field(repr=False, validator=_check_raw)

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str]) -> RawKey:
        """Read a key written as 64 hex digits or as base64 of 32 bytes.

        Args:
            name: the variable's name.
            environ: the environment to read (pass ``os.environ``).

        Returns:
            The key.

        Raises:
            ConfigurationError: the variable is missing (the message does not repeat ``name``,
                which may be a key passed by mistake) or does not hold 32 bytes (the message names
                the variable, never its value).
        """
        text = environ.get(name)
        if text is None:
            # Not named: what was passed as the name may be the key itself, given by mistake.
            raise ConfigurationError(
                "the environment variable named for RawKey.from_env is not set"
            )
        text = text.strip()
        value: bytes | None = None
        if re.fullmatch(r"[0-9a-fA-F]{64}", text):
            value = bytes.fromhex(text)
        else:
            try:
                value = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                value = None
        if value is None or len(value) != KEY_SIZE:
            raise ConfigurationError(
                f"environment variable {name} must hold 32 bytes as 64 hex digits or base64"
            )
        return cls(value)

    def derive(self, salt: bytes) -> bytes:
        """Derive the 32-byte slot key with HKDF-SHA-256.

        Args:
            salt: the slot's salt.

        Returns:
            The slot key.
        """
        return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_HKDF_INFO).derive(
            self.value
        )


Credential = Passphrase | RawKey


@attrs.frozen(kw_only=True)
class KeySlot:
    """The public part of a key slot: everything `list_key_slots` shows, no secret.

    Attributes:
        key_id: the slot's id; the object is ``keys/<key_id>``.
        type: ``"passphrase"`` or ``"raw"``.
        created: when the slot was written (aware, UTC).
        salt: the KDF salt.
        scrypt: the scrypt parameters of a passphrase slot, ``None`` for a raw-key slot.
    """

    key_id: str
    type: Literal["passphrase", "raw"]
    created: datetime
    salt: bytes = attrs.field(repr=False)
    scrypt: ScryptParams | None = None

    @property
    def object_key(self) -> str:
        """Where the slot is stored in a target (``ctfy_vault.repository.slot_key``)."""
        from ctfy_vault.repository._layout import slot_key  # noqa: PLC0415 - the layout's name

        return slot_key(self.key_id)


def _public(slot: KeySlot) -> dict[str, Any]:
    kdf: dict[str, Any] = {"name": "hkdf-sha256", "salt": slot.salt.hex()}
    if slot.scrypt is not None:
        kdf = {
            "n": slot.scrypt.n,
            "name": "scrypt",
            "p": slot.scrypt.p,
            "r": slot.scrypt.r,
            "salt": slot.salt.hex(),
        }
    return {
        "created": _time_text(slot.created),
        "format": SLOT_FORMAT,
        "kdf": kdf,
        "key_id": slot.key_id,
        "type": slot.type,
    }


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def is_key_id(text: str) -> bool:
    """Whether ``text`` is a valid key slot id (1 to 64 of a-z, 0-9, ``-``, ``_``)."""
    return _KEY_ID.fullmatch(text) is not None


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not is_key_id(key_id):
        raise ConfigurationError(
            "a key id has 1 to 64 characters from a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    return key_id


def _aware(now: object) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ConfigurationError("now must be an aware datetime")
    return now.astimezone(UTC)


def _slot_key(slot: KeySlot, credential: Credential) -> bytes:
    if isinstance(credential, Passphrase):
        if slot.scrypt is None:
            raise IntegrityError(NO_SLOT_OPENS)
        return credential.derive(slot.salt, slot.scrypt)
    return credential.derive(slot.salt)


def _slot_type(credential: Credential) -> Literal["passphrase", "raw"]:
    return "passphrase" if isinstance(credential, Passphrase) else "raw"


# -- encoding --------------------------------------------------------------------------------


def encode_slot(
    slot: KeySlot, keys: MasterKeys, credential: Credential, *, repo_id: bytes, nonce: bytes
) -> bytes:
    """Encode a key slot as the JSON document stored under ``keys/<key-id>``.

    Args:
        slot: the slot's public part.
        keys: the master keys to wrap.
        credential: the passphrase or raw key that will open the slot.
        repo_id: the 16-byte repository id.
        nonce: 12 fresh random bytes.

    Returns:
        The document, canonical JSON in UTF-8.
    """
    public = _public(slot)
    secret = {
        "chunk_id_key": keys.chunk_id_key.hex(),
        "data_key": keys.data_key.hex(),
        "slot": public,
    }
    blob = seal_payload(
        make_aead(Cipher.AES_256_GCM, _slot_key(slot, credential)),
        cipher=Cipher.AES_256_GCM,
        kind=Kind.KEY_SLOT,
        flags=0,
        nonce=nonce,
        repo_id=repo_id,
        name=check_name(slot.key_id),
        payload=_canonical(secret),
    )
    return _canonical({**public, "wrapped": base64.b64encode(blob).decode("ascii")})


def decode_slot(document: bytes) -> tuple[KeySlot, bytes]:
    """Parse a stored key slot's public part, without opening it.

    Args:
        document: the bytes stored under ``keys/<key-id>``.

    Returns:
        The public part and the wrapped (sealed) blob.

    Raises:
        FormatError: not a format 1 key slot, or a malformed one.
    """
    if len(document) > _MAX_SLOT_BYTES:
        raise FormatError(f"key slot is larger than {_MAX_SLOT_BYTES} bytes")
    try:
        data = json.loads(document)
    except (ValueError, RecursionError):
        raise FormatError("key slot is not JSON") from None
    if not isinstance(data, dict):
        raise FormatError("key slot is not a JSON object")
    if data.get("format") != SLOT_FORMAT:
        raise FormatError(f"key slot format {data.get('format')!r} is not {SLOT_FORMAT}")
    try:
        kdf = data["kdf"]
        slot_type = data["type"]
        created = datetime.strptime(data["created"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        salt = bytes.fromhex(kdf["salt"])
        scrypt: ScryptParams | None = None
        if slot_type == "passphrase" and kdf["name"] == "scrypt":
            scrypt = ScryptParams(n=kdf["n"], r=kdf["r"], p=kdf["p"])
        elif not (slot_type == "raw" and kdf["name"] == "hkdf-sha256"):
            raise FormatError("key slot has an unknown type or KDF")
        slot = KeySlot(
            key_id=_check_key_id(data["key_id"]),
            type=slot_type,
            created=created,
            salt=salt,
            scrypt=scrypt,
        )
        blob = base64.b64decode(data["wrapped"], validate=True)
        if set(data) != {"created", "format", "kdf", "key_id", "type", "wrapped"}:
            raise FormatError("key slot has unexpected fields")
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise FormatError("key slot is malformed") from None
    return slot, blob


def open_slot(slot: KeySlot, blob: bytes, credential: Credential, *, repo_id: bytes) -> MasterKeys:
    """Unwrap the master keys from a key slot.

    Args:
        slot: the slot's public part, as parsed by `decode_slot`.
        blob: the wrapped part.
        credential: the passphrase or raw key.
        repo_id: the 16-byte repository id.

    Returns:
        The master keys.

    Raises:
        IntegrityError: the credential does not open this slot, or the slot was altered.
        FormatError: an unknown seal version, or garbage inside a valid seal.
    """
    if _slot_type(credential) != slot.type:
        raise IntegrityError(NO_SLOT_OPENS)
    _kind, _flags, payload = open_payload(
        make_aead(Cipher.AES_256_GCM, _slot_key(slot, credential)),
        cipher=Cipher.AES_256_GCM,
        kinds=(Kind.KEY_SLOT,),
        repo_id=repo_id,
        name=check_name(slot.key_id),
        blob=blob,
    )
    try:
        secret = json.loads(payload)
        keys = MasterKeys(
            data_key=bytes.fromhex(secret["data_key"]),
            chunk_id_key=bytes.fromhex(secret["chunk_id_key"]),
        )
        public = secret["slot"]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise FormatError("key slot holds malformed keys") from None
    if public != _public(slot):
        # The readable part was edited after sealing (say, to a cheaper KDF or an older date).
        raise IntegrityError(NO_SLOT_OPENS)
    return keys


# -- making a slot ------------------------------------------------------------------------------


def new_slot(
    *,
    repo_id: bytes,
    keys: MasterKeys,
    credential: Credential,
    now: datetime,
    key_id: str | None = None,
    randbytes: RandomBytes = os.urandom,
) -> tuple[KeySlot, bytes]:
    """Wrap the master keys under ``credential`` in a new key slot (stored by the repository).

    Args:
        repo_id: the 16-byte repository id.
        keys: the master keys.
        credential: the passphrase (with its scrypt parameters) or raw key that will open it.
        now: the creation time recorded in the slot (aware).
        key_id: the slot id; a random 16-hex-digit id by default.
        randbytes: the source of salts, nonces and ids.

    Returns:
        The slot's public part and the document to store under ``keys/<key-id>``.

    Raises:
        ConfigurationError: a bad key id or a naive ``now``.
    """
    slot = KeySlot(
        key_id=_check_key_id(key_id if key_id is not None else randbytes(8).hex()),
        type=_slot_type(credential),
        created=_aware(now),
        salt=randbytes(SALT_SIZE),
        scrypt=credential.scrypt if isinstance(credential, Passphrase) else None,
    )
    document = encode_slot(slot, keys, credential, repo_id=repo_id, nonce=randbytes(NONCE_SIZE))
    return slot, document


def check_key_id(key_id: object) -> str:
    """Return ``key_id`` when it is a valid key slot id.

    Raises:
        ConfigurationError: it is not one.
    """
    return _check_key_id(key_id)
