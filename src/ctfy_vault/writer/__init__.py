"""Append-only, multi-target writes: read once, chunk, seal once, write everywhere; and heal.

A `Writer` cuts each source with FastCDC, names every chunk with the repository's keyed hash,
compresses and seals it once, and writes the same bytes to every target concurrently with
create-only writes. An object already there is a deduplication hit, never an overwrite; the
manifest is each target's commit point. A stream or a program's output (`CommandSource`) is
committed only once it is complete: a program that exits non-zero or is killed commits nothing.
`heal` (now `ctfy_vault.repository.heal`, still importable here) copies what one target lacks
from another. Nothing in this package deletes. ``docs/writer.md`` explains the guarantees.

    >>> from datetime import datetime, timezone
    >>> from io import BytesIO
    >>> from ctfy_vault.crypto import MasterKeys, Sealer, new_repo_id
    >>> from ctfy_vault.storage import Target
    >>> from ctfy_vault.writer import StreamSource, Writer
    >>> targets = [Target.from_url("memory://doc-writer-a"), Target.from_url("memory://doc-writer-b")]
    >>> writer = Writer(targets, Sealer(repo_id=new_repo_id(), keys=MasterKeys.generate()))
    >>> result = writer.backup(
    ...     [StreamSource(name="dump.sql", stream=BytesIO(b"INSERT 1;" * 1000))],
    ...     lineage="db", host="h", now=datetime(2026, 11, 1, tzinfo=timezone.utc),
    ... )
    >>> [outcome.committed for outcome in result.outcomes]
    [True, True]
"""

from ctfy_vault._compat import forward
from ctfy_vault.repository import (
    OBJECTS_PREFIX,
    QUARANTINE_PREFIX,
    SNAPSHOTS_PREFIX,
    HealOutcome,
    HealReport,
    chunk_id_of,
    chunk_key,
    heal,
    index_chunks,
    unexpected_key,
)
from ctfy_vault.writer._chunker import DEFAULT_CHUNKER, ChunkerParams, Readable, iter_chunks
from ctfy_vault.writer._command import CommandSource
from ctfy_vault.writer._outcome import BackupResult, SourceWarning, TargetOutcome
from ctfy_vault.writer._preview import BackupPreview, preview
from ctfy_vault.writer._sources import BackupSource, EntrySource, Selection, StreamSource
from ctfy_vault.writer._writer import COMMIT_INTERRUPTED, Require, Writer

__all__ = [
    "COMMIT_INTERRUPTED",
    "DEFAULT_CHUNKER",
    "OBJECTS_PREFIX",
    "QUARANTINE_PREFIX",
    "SNAPSHOTS_PREFIX",
    "BackupPreview",
    "BackupResult",
    "BackupSource",
    "ChunkerParams",
    "CommandSource",
    "EntrySource",
    "HealOutcome",
    "HealReport",
    "Readable",
    "Require",
    "Selection",
    "SourceWarning",
    "StreamSource",
    "TargetOutcome",
    "Writer",
    "chunk_id_of",
    "chunk_key",
    "heal",
    "index_chunks",
    "iter_chunks",
    "preview",
    "unexpected_key",
]


#: ``Source`` is the old name of `BackupSource`.
__getattr__ = forward(__name__, {"Source": "ctfy_vault.writer:BackupSource"})
