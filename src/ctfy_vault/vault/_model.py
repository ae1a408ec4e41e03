"""Frozen values the vault hands back: snapshot info, backup and restore reports."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import attrs

from ctfy_vault.manifest import Manifest
from ctfy_vault.repository._heads import LineageHead
from ctfy_vault.writer import BackupResult, SourceWarning, TargetOutcome

__all__ = ["BackupInfo", "CopyReport", "RestoreReport", "SnapshotInfo"]


@attrs.frozen(kw_only=True)
class SnapshotInfo:
    """One snapshot as listed by `Vault.snapshots`.

    Attributes:
        name: the object name under ``snapshots/`` (creation time, then id; sorts by time).
        snapshot_id: the snapshot's id.
        lineage: its lineage (``db``, ``server-files``...).
        created: when it was taken (UTC).
        host: where it was taken.
        tags: its tags, sorted.
        hash: its entry hash, which the lineage's next entry names.
        previous: the hash of the lineage's entry before it, or ``None`` for the first.
        files: entries of every type.
        size: bytes over all regular files.
    """

    name: str
    snapshot_id: str
    lineage: str
    created: datetime
    host: str
    tags: tuple[str, ...]
    hash: bytes = attrs.field(repr=False)
    previous: bytes | None = attrs.field(repr=False)
    files: int
    size: int

    @property
    def time(self) -> datetime:
        """The creation time, so a list of snapshots can go straight to `ctfy_vault.plan`."""
        return self.created

    @property
    def head(self) -> LineageHead:
        """This snapshot as its lineage's head (for `KnownHeads.advance` after a backup)."""
        return LineageHead(lineage=self.lineage, name=self.name, hash=self.hash)

    @classmethod
    def of(cls, manifest: Manifest, entry_hash: bytes) -> SnapshotInfo:
        """Describe a manifest whose entry hash is known."""
        return cls(**_fields(manifest, entry_hash))


class _Fields(TypedDict):
    name: str
    snapshot_id: str
    lineage: str
    created: datetime
    host: str
    tags: tuple[str, ...]
    hash: bytes
    previous: bytes | None
    files: int
    size: int


def _fields(manifest: Manifest, entry_hash: bytes) -> _Fields:
    return {
        "name": manifest.name,
        "snapshot_id": manifest.snapshot_id,
        "lineage": manifest.lineage,
        "created": manifest.created,
        "host": manifest.host,
        "tags": manifest.tags,
        "hash": entry_hash,
        "previous": manifest.previous,
        "files": manifest.totals.files,
        "size": manifest.totals.size,
    }


@attrs.frozen(kw_only=True)
class BackupInfo(SnapshotInfo):
    """The snapshot a `Vault.backup` wrote, with what the run did on each target.

    Attributes:
        outcomes: one outcome per target (committed or not, chunks uploaded, chunks present).
        warnings: source entries skipped or flagged (permission denied, changed while read...).
        bytes_read: plaintext bytes read from the sources (unchanged files are not read).
        chunks_sealed: chunks compressed and sealed in this run (the rest were already stored).
        unlockable: with ``lock_policy``, the targets that cannot lock (no Object Lock).
    """

    outcomes: tuple[TargetOutcome, ...]
    warnings: tuple[SourceWarning, ...] = ()
    bytes_read: int = 0
    chunks_sealed: int = 0
    unlockable: tuple[str, ...] = ()

    @classmethod
    def of_result(cls, result: BackupResult) -> BackupInfo:
        """Describe a writer's result."""
        return cls(
            **_fields(result.manifest, result.hash),
            outcomes=result.outcomes,
            warnings=result.warnings,
            bytes_read=result.bytes_read,
            chunks_sealed=result.chunks_sealed,
        )


@attrs.frozen(kw_only=True)
class RestoreReport:
    """What `Vault.restore` wrote.

    Attributes:
        files: regular files written.
        dirs: directories created or updated.
        symlinks: symbolic links created.
        bytes: plaintext bytes written.
        refused: ``(path, reason)`` for entries not restored (a link pointing outside the
            destination, a device the process may not create).
        fallbacks: ``(chunk key, target)`` for each chunk a target could not give intact, so
            the next target was read instead.
        hardlinks: hard links created (to an entry restored before them).
        specials: FIFOs and devices created.
        warnings: ``(path, reason)`` for metadata left as it is, each kind said once with the
            first path it concerns and how many: an owner only root may give, an extended
            attribute the process or filesystem refused.
    """

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    refused: tuple[tuple[str, str], ...] = ()
    fallbacks: tuple[tuple[str, str], ...] = ()
    hardlinks: int = 0
    specials: int = 0
    warnings: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class CopyReport:
    """What `Vault.copy` did: the snapshots it copied, those already there, and each target's share.

    Attributes:
        source_repo_id: the id of the repository copied from.
        time: the moment of the copy (the ``now`` given; copied snapshots keep their own times).
        copied: each snapshot written to the destination, oldest first, with what the run did on
            each target (as a backup reports it).
        skipped: the source's chosen snapshots the destination already held (same lineage and
            id, or the origin tag naming them), oldest first.
        bytes_read: plaintext bytes read from the source (files whose content the destination
            already held are not read).
        bytes_written: sealed bytes stored on the destination, over all targets.
        outcomes: one outcome per destination target over the whole run: ``committed`` when
            every copied snapshot was committed there (also when nothing needed copying), the
            first error met there, and the chunk and byte counts summed.
    """

    source_repo_id: bytes
    time: datetime
    copied: tuple[BackupInfo, ...]
    skipped: tuple[SnapshotInfo, ...]
    bytes_read: int
    bytes_written: int
    outcomes: tuple[TargetOutcome, ...]

    @property
    def ok(self) -> bool:
        """Whether every destination target committed every copied snapshot."""
        return all(outcome.committed for outcome in self.outcomes)
