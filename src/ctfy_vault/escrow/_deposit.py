"""Deposit, verify and open: the escrow workflow over a storage target."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from ctfy_vault.crypto import ESCROW_CHUNK_SIZE as CHUNK_SIZE
from ctfy_vault.crypto import (
    Cipher,
    RecipientIdentity,
    RecipientKey,
    SigningKey,
    VerifyKey,
    decrypt_from_recipient,
    encrypt_to_recipients,
    read_escrow_header,
)
from ctfy_vault.escrow._archive import ARCHIVE_FORMAT, SourceKind, SourceTree, source_tree
from ctfy_vault.escrow._receipt import Receipt
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError

if TYPE_CHECKING:  # only a target's methods are used
    from ctfy_vault.storage import Target

RandomBytes = Callable[[int], bytes]

DEFAULT_PREFIX: Final = "escrow/"
CIPHERTEXT_SUFFIX: Final = ".escrow"
RECEIPT_SUFFIX: Final = ".receipt.json"
_CIPHER_NAMES: Final = {
    Cipher.AES_256_GCM: "AES-256-GCM",
    Cipher.CHACHA20_POLY1305: "ChaCha20-Poly1305",
}
_NAME = re.compile(r"(?:[A-Za-z0-9._-]+/)*[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}")
_MAX_HEADER: Final = 60 + 88 * 255  # escrow format v1 with 255 recipients
MISMATCH: Final = "escrow deposit does not match its receipt (altered, truncated or replaced)"


class _Counted:
    """Passes blocks through, counting bytes and hashing them with SHA-256."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = blocks
        self.size = 0
        self._hash = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for block in self._blocks:
            self.size += len(block)
            self._hash.update(block)
            yield block

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def _aware(now: datetime) -> datetime:
    if now.utcoffset() is None:
        raise ConfigurationError("now must be an aware datetime")
    return now.astimezone(UTC)


def _check_prefix(prefix: str) -> str:
    if prefix and not re.fullmatch(r"(?:[A-Za-z0-9._-]+/)+", prefix):
        raise ConfigurationError("an escrow prefix is empty or folder names ending in '/'")
    return prefix


def deposit(
    source: str | os.PathLike[str] | SourceTree,
    target: Target,
    *,
    recipients: Sequence[RecipientKey],
    signing_key: SigningKey,
    now: datetime,
    ref: str | None = None,
    kind: SourceKind | None = None,
    prefix: str = DEFAULT_PREFIX,
    cipher: Cipher = Cipher.AES_256_GCM,
    chunk_size: int = CHUNK_SIZE,
    randbytes: RandomBytes = os.urandom,
) -> Receipt:
    """Archive a folder or a git commit, encrypt it to ``recipients`` and store it with a receipt.

    The archive is deterministic (the same commit gives the same bytes) and streamed: memory stays at
    about one target part (8 MiB by default) whatever its size. The ciphertext is written
    create-only as ``<deposit>.escrow``, then the signed receipt as ``<deposit>.receipt.json``; the
    receipt is the commit point, so a crash leaves at most a ciphertext without a receipt. The
    depositor cannot decrypt the result: only the recipients' private keys can.

    Args:
        source: a folder, a git repository (its committed tree at ``ref``), or a `SourceTree`.
        target: where the deposit is written.
        recipients: the public keys that may open it (the notary's, a trustee's).
        signing_key: the depositor's key that signs the receipt.
        now: the deposit time, recorded in its name and receipt (aware).
        ref: the git ref (``HEAD`` by default); only for git sources.
        kind: ``"folder"`` or ``"git"``; detected by default.
        prefix: the folder of the target deposits go in.
        cipher: the payload AEAD.
        chunk_size: the payload chunk size.
        randbytes: the source of the deposit id, file key and ephemeral keys.

    Returns:
        The signed receipt.

    Raises:
        ConfigurationError: a bad source, ref, recipient list or option.
        ObjectExistsError: the deposit's name is taken (never overwritten).
        StorageError: the target failed; no receipt was written.
    """
    created = _aware(now)
    tree = source if isinstance(source, SourceTree) else source_tree(source, ref=ref, kind=kind)
    name = f"{_check_prefix(prefix)}{created:%Y%m%dT%H%M%SZ}-{randbytes(8).hex()}"
    archive = tree.archive()
    plain = _Counted(archive)
    sealed = _Counted(
        encrypt_to_recipients(
            plain, recipients, cipher=cipher, chunk_size=chunk_size, randbytes=randbytes
        )
    )
    ciphertext_object = name + CIPHERTEXT_SUFFIX
    target.write_stream(ciphertext_object, iter(sealed))
    receipt = Receipt(
        deposit=name,
        created=created,
        source_kind=tree.kind,
        source=tree.description,
        ref=tree.ref,
        commit=tree.commit,
        archive_format=ARCHIVE_FORMAT,
        archive_sha256=plain.sha256,
        archive_size=plain.size,
        archive_entries=archive.entries,
        ciphertext_object=ciphertext_object,
        ciphertext_sha256=sealed.sha256,
        ciphertext_size=sealed.size,
        cipher=_CIPHER_NAMES[cipher],
        chunk_size=chunk_size,
        recipients=tuple(recipients),
        signer=signing_key.public,
    ).sign(signing_key)
    target.write(receipt.receipt_object, receipt.encode())
    return receipt


def _receipt_object(name: str) -> str:
    name = name.removesuffix(RECEIPT_SUFFIX).removesuffix(CIPHERTEXT_SUFFIX)
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"{name!r} is not a deposit name (<prefix><YYYYMMDDTHHMMSSZ>-<16 hex digits>)"
        )
    return name + RECEIPT_SUFFIX


def read_receipt(target: Target, name: str, *, signer: VerifyKey | None = None) -> Receipt:
    """Read a deposit's receipt and check its signature.

    Args:
        target: where the deposit is.
        name: the deposit's name (its receipt or ciphertext object key also works).
        signer: the depositor's public key, to pin who signed; otherwise the receipt's own key.

    Returns:
        The receipt.

    Raises:
        IntegrityError: the signature does not verify (or another signer than ``signer``).
        FormatError: not a receipt this release can read.
        ObjectNotFoundError: no such deposit.
    """
    key = _receipt_object(name)
    receipt = Receipt.decode(target.read(key))
    receipt.check(signer)
    if receipt.receipt_object != key:
        raise IntegrityError(MISMATCH)  # a valid receipt copied under another deposit's name
    return receipt


def _check_header(receipt: Receipt, first: Iterable[bytes]) -> None:
    header = read_escrow_header(first)
    expected = tuple(r.key_id for r in receipt.recipients)
    if (
        header.recipients != expected
        or _CIPHER_NAMES.get(header.cipher) != receipt.cipher
        or header.chunk_size != receipt.chunk_size
    ):
        raise IntegrityError(MISMATCH)


def verify_deposit(target: Target, name: str, *, signer: VerifyKey | None = None) -> Receipt:
    """Check a deposit without any private key: receipt signature, ciphertext size and SHA-256.

    Reads the ciphertext once, in blocks of the target's part size.

    Args:
        target: where the deposit is.
        name: the deposit's name.
        signer: the depositor's public key, to pin who signed.

    Returns:
        The verified receipt.

    Raises:
        IntegrityError: a bad signature, or the ciphertext differs from what the receipt names.
        FormatError: a receipt or ciphertext this release cannot read.
        ObjectNotFoundError: the receipt or ciphertext is missing.
    """
    receipt = read_receipt(target, name, signer=signer)
    counted = _Counted(target.read_stream(receipt.ciphertext_object))
    blocks = iter(counted)
    first = next(blocks, b"")
    try:
        _check_header(receipt, [first, *_take(blocks, first)])
    except FormatError:
        raise IntegrityError(MISMATCH) from None
    for _block in blocks:
        pass
    if counted.size != receipt.ciphertext_size or counted.sha256 != receipt.ciphertext_sha256:
        raise IntegrityError(MISMATCH)
    return receipt


def _take(blocks: Iterator[bytes], first: bytes) -> list[bytes]:
    # The header is at most 22 KiB; one part normally holds it whole.
    taken: list[bytes] = []
    have = len(first)
    while have < _MAX_HEADER:
        block = next(blocks, None)
        if block is None:
            break
        taken.append(block)
        have += len(block)
    return taken


@attrs.frozen(kw_only=True)
class OpenedDeposit:
    """What `open_deposit` produced.

    Attributes:
        receipt: the deposit's verified receipt.
        path: the archive file written, or the folder it was extracted into.
        extracted: whether ``path`` is an extracted folder.
        size: the plaintext archive's size.
        sha256: its SHA-256, hex (equal to the receipt's).
    """

    receipt: Receipt
    path: Path
    extracted: bool
    size: int
    sha256: str


def open_deposit(
    target: Target,
    name: str,
    identity: RecipientIdentity,
    *,
    out: str | os.PathLike[str],
    extract: bool = False,
    signer: VerifyKey | None = None,
) -> OpenedDeposit:
    """Decrypt a deposit with a recipient's key, check it against its receipt and write it out.

    The plaintext goes to a temporary file beside ``out``; only when the ciphertext matches the
    receipt and the plaintext's SHA-256 equals the receipt's is it renamed to ``out`` (created, never
    overwritten) or extracted into ``out`` (a new or empty folder, with tarfile's ``data`` filter).

    Args:
        target: where the deposit is.
        name: the deposit's name.
        identity: the recipient's private key.
        out: the archive file to create, or with ``extract`` the folder to extract into.
        extract: extract the tar archive instead of writing it.
        signer: the depositor's public key, to pin who signed the receipt.

    Returns:
        Where the result is, and the verified hashes.

    Raises:
        IntegrityError: not a recipient's key, a bad receipt signature, or any altered byte.
        ConfigurationError: ``out`` exists (or, for ``extract``, is a non-empty folder).
    """
    destination = Path(out)
    if extract:
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise ConfigurationError(f"{destination} must be a new or empty folder")
    elif destination.exists():
        raise ConfigurationError(f"{destination} exists; open never overwrites")
    receipt = read_receipt(target, name, signer=signer)
    sealed = _Counted(target.read_stream(receipt.ciphertext_object))
    plain = _Counted(decrypt_from_recipient(sealed, identity))
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".ctfy-escrow-", suffix=".tar", dir=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for block in plain:
                handle.write(block)
        if (
            sealed.size != receipt.ciphertext_size
            or sealed.sha256 != receipt.ciphertext_sha256
            or plain.size != receipt.archive_size
            or plain.sha256 != receipt.archive_sha256
        ):
            raise IntegrityError(MISMATCH)
        if extract:
            destination.mkdir(exist_ok=True)
            with tarfile.open(temporary, "r:") as archive:
                archive.extractall(destination, filter="data")
        else:
            _publish(Path(temporary), destination)
    finally:
        os.unlink(temporary)
    return OpenedDeposit(
        receipt=receipt,
        path=destination,
        extracted=extract,
        size=plain.size,
        sha256=plain.sha256,
    )


def _publish(temporary: Path, destination: Path) -> None:
    # A hard link is an atomic create-only rename; where links are unsupported, copy with O_EXCL.
    try:
        os.link(temporary, destination)
    except FileExistsError:
        raise ConfigurationError(f"{destination} exists; open never overwrites") from None
    except OSError:
        try:
            with temporary.open("rb") as source, destination.open("xb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
        except FileExistsError:
            raise ConfigurationError(f"{destination} exists; open never overwrites") from None


def list_deposits(target: Target, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """List the names of the deposits with a receipt under ``prefix``, oldest first.

    Returns:
        Deposit names, for `verify_deposit` and `open_deposit`.
    """
    folder = _check_prefix(prefix).rstrip("/")
    names = [
        key.removesuffix(RECEIPT_SUFFIX)
        for key in target.list(folder)
        if key.endswith(RECEIPT_SUFFIX) and _NAME.fullmatch(key.removesuffix(RECEIPT_SUFFIX))
    ]
    return sorted(names)
