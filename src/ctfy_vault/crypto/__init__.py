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

from ctfy_vault._compat import forward
from ctfy_vault.crypto._chunker_key import CHUNKER_KEY_INFO, ChunkerKey, derive_chunker_key
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

#: Storing key slots on a target moved to `ctfy_vault.repository`; the names still import here.
_SLOT_STORAGE = ("add_key_slot", "create_key_slot", "list_key_slots", "remove_key_slot")
__getattr__ = forward(
    __name__,
    dict.fromkeys((*_SLOT_STORAGE, "rotate_key_slot", "unlock"), "ctfy_vault.repository"),
)

__all__ = [
    "CHUNKER_KEY_INFO",
    "CHUNK_ID_SIZE",
    "DEFAULT_SCRYPT",
    "ESCROW_CHUNK_SIZE",
    "ESCROW_FORMAT_VERSION",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAX_CHUNK_SIZE",
    "OVERHEAD",
    "REPO_ID_SIZE",
    "ChunkerKey",
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
    "decrypt_from_recipient",
    "derive_chunker_key",
    "encrypt_to_recipients",
    "new_repo_id",
    "read_escrow_header",
]
