"""Escrow key files: a private key written once with mode 0600, its public key next to it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import attrs

from ctfy_vault._files import read_regular_file
from ctfy_vault.crypto import RecipientIdentity, RecipientKey, SigningKey, VerifyKey
from ctfy_vault.exceptions import ConfigurationError

#: A key file holds a few comment lines and one key line.
_KEY_FILE_LIMIT = 64 * 1024

KeyRole = Literal["recipient", "signing"]
RandomBytes = Callable[[int], bytes]
PUBLIC_SUFFIX = ".pub"
_KEY_TEXT = "ctfy-escrow-"


@attrs.frozen(kw_only=True)
class KeyFiles:
    """What `generate_key_files` wrote: paths and the public key (the private key stays on disk).

    Attributes:
        role: ``"recipient"`` (X25519, opens deposits) or ``"signing"`` (Ed25519, signs receipts).
        private_path: the private key file (mode 0600).
        public_path: the public key file.
        public_key: the public key's text form.
        key_id: the public key's id.
    """

    role: KeyRole
    private_path: Path
    public_path: Path
    public_key: str
    key_id: str


def _write_new(path: Path, text: str, mode: int) -> None:
    # O_EXCL: an existing key file is never replaced; the mode is set at creation, not after.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists; key files are never overwritten") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def generate_key_files(
    path: str | os.PathLike[str],
    *,
    role: KeyRole = "recipient",
    now: datetime,
    randbytes: RandomBytes = os.urandom,
) -> KeyFiles:
    """Generate a key pair and write ``path`` (private, mode 0600) and ``path.pub`` (public).

    Args:
        path: the private key file to create; neither it nor ``path.pub`` may exist.
        role: ``"recipient"`` for a notary or trustee, ``"signing"`` for a depositor.
        now: the creation time written in the files' comments (aware).
        randbytes: the source of the key.

    Returns:
        The paths and the public key.

    Raises:
        ConfigurationError: a file exists, or an unknown role.
    """
    private = Path(path)
    public = private.with_name(private.name + PUBLIC_SUFFIX)
    if now.utcoffset() is None:
        raise ConfigurationError("now must be an aware datetime")
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if role == "recipient":
        identity = RecipientIdentity.generate(randbytes)
        secret, public_key, key_id = identity.secret_text(), identity.public.text, identity.key_id
        what = "escrow recipient key (X25519): opens deposits made to its public key"
    elif role == "signing":
        signer = SigningKey.generate(randbytes)
        secret, public_key, key_id = signer.secret_text(), signer.public.text, signer.key_id
        what = "escrow signing key (Ed25519): signs deposit receipts"
    else:
        raise ConfigurationError(f"key role must be 'recipient' or 'signing', not {role!r}")
    if public.exists():
        raise ConfigurationError(f"{public} exists; key files are never overwritten")
    header = f"# ctfy-vault {what}\n# created: {stamp}\n# key id: {key_id}\n"
    _write_new(private, f"{header}# public key: {public_key}\n{secret}\n", 0o600)
    _write_new(public, f"{header}{public_key}\n", 0o644)
    return KeyFiles(
        role=role, private_path=private, public_path=public, public_key=public_key, key_id=key_id
    )


def _key_line(text: str, what: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if len(keys) != 1:
        raise ConfigurationError(f"{what} must hold exactly one key line")
    return keys[0]


def _read_text(path: str | os.PathLike[str], what: str) -> str:
    # A regular file only: a FIFO or a device named as a key file would block or never end.
    return read_regular_file(path, what=what, limit=_KEY_FILE_LIMIT)[0].decode("ascii")


def _read(path: str | os.PathLike[str], what: str) -> str:
    try:
        text = _read_text(path, what)
    except ConfigurationError:
        raise
    except (OSError, ValueError) as err:
        raise ConfigurationError(f"cannot read {what} {os.fspath(path)}") from err
    return _key_line(text, what)


def _read_quiet(value: str, what: str) -> str:
    # The value may be a mistyped or truncated key rather than a path: never echo it.
    try:
        text = _read_text(value, what + " file")
    except (OSError, ValueError):  # ConfigurationError too: its text would name the value
        raise ConfigurationError(
            f"{what} must be key text (ctfy-escrow-...) or the path of a readable regular .pub file"
        ) from None
    return _key_line(text, what + " file")


def read_identity(path: str | os.PathLike[str]) -> RecipientIdentity:
    """Read a recipient private key file written by `generate_key_files`.

    Raises:
        ConfigurationError: missing, unreadable, or not a recipient private key.
    """
    return RecipientIdentity.from_text(_read(path, "recipient key file"))


def read_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a signing key file written by ``generate_key_files(role="signing")``.

    Raises:
        ConfigurationError: missing, unreadable, or not a signing key.
    """
    return SigningKey.from_text(_read(path, "signing key file"))


def recipient_key(text_or_path: str) -> RecipientKey:
    """Parse a recipient public key given as its text or as the path of its ``.pub`` file.

    Raises:
        ConfigurationError: neither a public key text nor a readable public key file.
    """
    if text_or_path.strip().startswith(_KEY_TEXT):
        return RecipientKey.from_text(text_or_path)
    return RecipientKey.from_text(_read_quiet(text_or_path, "recipient public key"))


def verify_key(text_or_path: str) -> VerifyKey:
    """Parse a signer public key given as its text or as the path of its ``.pub`` file.

    Raises:
        ConfigurationError: neither a signer public key text nor a readable public key file.
    """
    if text_or_path.strip().startswith(_KEY_TEXT):
        return VerifyKey.from_text(text_or_path)
    return VerifyKey.from_text(_read_quiet(text_or_path, "signer public key"))
