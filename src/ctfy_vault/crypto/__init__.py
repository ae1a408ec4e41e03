"""Keys, key slots and the sealed-object format v1 (AEAD + zstd), the only user of ``cryptography``.

Every object a repository stores (chunk, manifest, prune record, key slot) is sealed by one envelope:
a version byte, kind, cipher, flags and nonce, then AES-256-GCM or ChaCha20-Poly1305 ciphertext whose
associated data binds the blob to its repository id, kind and name. Any wrong key, flipped bit,
truncation, extension or move to another name fails with the one opaque `IntegrityError`; a version
this release cannot read fails with `FormatError`. ``docs/format.md`` gives every byte.

    >>> from ctfy_vault.crypto import Kind, MasterKeys, Sealer, new_repo_id
    >>> sealer = Sealer(repo_id=new_repo_id(), keys=MasterKeys.generate())
    >>> chunk = sealer.seal_chunk(b"INSERT INTO t VALUES (1);" * 100)
    >>> sealer.open_chunk(chunk.id, chunk.blob)[:25]
    b'INSERT INTO t VALUES (1);'
"""

from typing import TYPE_CHECKING, Any, Final

from ctfy_vault.crypto._recipients import (
    ESCROW_CHUNK_SIZE,
    ESCROW_FORMAT_VERSION,
    EscrowHeader,
    RecipientIdentity,
    RecipientKey,
    SigningKey,
    VerifyKey,
    decrypt_from_recipient,
    encrypt_to_recipients,
    read_escrow_header,
)
from ctfy_vault.crypto._seal import (
    FORMAT_VERSION,
    HEADER_SIZE,
    KEY_SIZE,
    OVERHEAD,
    REPO_ID_SIZE,
    Cipher,
    Kind,
)
from ctfy_vault.crypto._sealer import (
    CHUNK_ID_SIZE,
    MAX_CHUNK_SIZE,
    MasterKeys,
    SealedChunk,
    Sealer,
    new_repo_id,
)
from ctfy_vault.crypto._slots import (
    DEFAULT_SCRYPT,
    Credential,
    KeySlot,
    Passphrase,
    RawKey,
    ScryptParams,
)

if TYPE_CHECKING:
    from ctfy_vault.repository._slots import (
        add_key_slot,
        create_key_slot,
        list_key_slots,
        remove_key_slot,
        rotate_key_slot,
        unlock,
    )

    KEYS_PREFIX: Final = "keys/"

#: Storing key slots on a target moved to `ctfy_vault.repository`; these names still work here.
_MOVED: Final = frozenset(
    {
        "add_key_slot",
        "create_key_slot",
        "list_key_slots",
        "remove_key_slot",
        "rotate_key_slot",
        "unlock",
    }
)


def __getattr__(name: str) -> Any:
    """Resolve the key-slot storage names that moved to `ctfy_vault.repository` (PEP 562)."""
    if name == "KEYS_PREFIX":
        from ctfy_vault.repository import KEYS_PREFIX  # noqa: PLC0415 - lazy: repository imports crypto

        return f"{KEYS_PREFIX}/"
    if name in _MOVED:
        from ctfy_vault.repository import _slots  # noqa: PLC0415 - lazy: repository imports crypto

        return getattr(_slots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHUNK_ID_SIZE",
    "DEFAULT_SCRYPT",
    "ESCROW_CHUNK_SIZE",
    "ESCROW_FORMAT_VERSION",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "KEYS_PREFIX",
    "KEY_SIZE",
    "MAX_CHUNK_SIZE",
    "OVERHEAD",
    "REPO_ID_SIZE",
    "Cipher",
    "Credential",
    "EscrowHeader",
    "KeySlot",
    "Kind",
    "MasterKeys",
    "Passphrase",
    "RawKey",
    "RecipientIdentity",
    "RecipientKey",
    "ScryptParams",
    "SealedChunk",
    "Sealer",
    "SigningKey",
    "VerifyKey",
    "add_key_slot",
    "create_key_slot",
    "decrypt_from_recipient",
    "encrypt_to_recipients",
    "list_key_slots",
    "new_repo_id",
    "read_escrow_header",
    "remove_key_slot",
    "rotate_key_slot",
    "unlock",
]
