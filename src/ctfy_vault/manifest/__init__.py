"""Snapshot manifests: the model, its canonical encoding, sealing through `crypto`, and the hash chain.

A manifest lists every file of a snapshot (path, type, mode, mtime, size, ordered chunk ids, SHA-256)
and names the hash of the previous entry of its lineage; a prune appends a `PruneRecord` naming what
it forgot, so `verify_chain` tells an authorised prune from a deleted or rolled-back snapshot. No I/O
here: callers read and write the sealed bytes. ``docs/format.md`` gives the encoding.

    >>> from datetime import datetime, timezone
    >>> from ctfy_vault.manifest import Manifest, verify_chain
    >>> first = Manifest(
    ...     snapshot_id="a1", lineage="db", created=datetime(2026, 11, 1, tzinfo=timezone.utc), host="h"
    ... )
    >>> verify_chain([first]).ok
    True
"""

from ctfy_vault.manifest._chain import (
    ChainReport,
    Fork,
    Gap,
    Rollback,
    check_known_heads,
    lineage_head,
    verify_chain,
)
from ctfy_vault.manifest._codec import (
    MANIFEST_FORMAT,
    MAX_LINE_BYTES,
    OpenedEntry,
    SealedEntry,
    decode,
    encode,
    entry_hash,
    open_entry,
    seal_entry,
)
from ctfy_vault.manifest._model import (
    HASH_SIZE,
    IDENTIFIER,
    Entry,
    FileEntry,
    FileType,
    Forgotten,
    Manifest,
    PruneRecord,
    TagRecord,
    Totals,
    parse_entry_name,
)

__all__ = [
    "HASH_SIZE",
    "IDENTIFIER",
    "MANIFEST_FORMAT",
    "MAX_LINE_BYTES",
    "ChainReport",
    "Entry",
    "FileEntry",
    "FileType",
    "Forgotten",
    "Fork",
    "Gap",
    "Manifest",
    "OpenedEntry",
    "PruneRecord",
    "Rollback",
    "SealedEntry",
    "TagRecord",
    "Totals",
    "check_known_heads",
    "decode",
    "encode",
    "entry_hash",
    "lineage_head",
    "open_entry",
    "parse_entry_name",
    "seal_entry",
    "verify_chain",
]
