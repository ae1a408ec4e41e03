"""Source-code escrow: deterministic archives encrypted to a notary's key, with signed receipts.

`deposit` archives a folder or a git commit's tree (never the working files) into a deterministic tar,
encrypts it to one or more X25519 recipients (the notary, a customer's trustee) so that the depositor
itself cannot read it back, and writes it create-only with a receipt signed by the depositor's Ed25519
key. Anyone can `verify_deposit` with no private key; a recipient can `open_deposit`. Key and file
formats are in ``docs/escrow.md``; the cryptography lives in `ctfy_vault.crypto`.

    >>> from datetime import datetime, timezone
    >>> from ctfy_vault.crypto import RecipientIdentity, SigningKey
    >>> from ctfy_vault.testing import memory_target
    >>> notary, depositor = RecipientIdentity.generate(), SigningKey.generate()
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "main.py").write_text("print('hello')")
    >>> receipt = deposit(folder, memory_target(), recipients=[notary.public],
    ...                   signing_key=depositor, now=datetime.now(timezone.utc))
    >>> receipt.archive_entries
    1
"""

from ctfy_vault.escrow._archive import (
    ARCHIVE_FORMAT,
    ArchiveStream,
    SourceKind,
    SourceTree,
    source_tree,
)
from ctfy_vault.escrow._deposit import (
    DEFAULT_PREFIX,
    OpenedDeposit,
    deposit,
    list_deposits,
    open_deposit,
    read_receipt,
    verify_deposit,
)
from ctfy_vault.escrow._keys import (
    KeyFiles,
    KeyRole,
    generate_key_files,
    read_identity,
    read_signing_key,
    recipient_key,
    verify_key,
)
from ctfy_vault.escrow._receipt import RECEIPT_VERSION, Receipt

__all__ = [
    "ARCHIVE_FORMAT",
    "DEFAULT_PREFIX",
    "RECEIPT_VERSION",
    "ArchiveStream",
    "KeyFiles",
    "KeyRole",
    "OpenedDeposit",
    "Receipt",
    "SourceKind",
    "SourceTree",
    "deposit",
    "generate_key_files",
    "list_deposits",
    "open_deposit",
    "read_identity",
    "read_receipt",
    "read_signing_key",
    "recipient_key",
    "source_tree",
    "verify_deposit",
    "verify_key",
]
