"""Frozen values the vault hands back: snapshot info, backup, restore and verify reports."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import attrs

from ctfy_vault.manifest import ChainReport, Manifest
from ctfy_vault.vault._heads import KnownHeads, LineageHead
from ctfy_vault.writer import BackupResult, SourceWarning, TargetOutcome

__all__ = ["BackupInfo", "Problem", "RestoreReport", "SnapshotInfo", "VerifyReport"]


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
    """

    outcomes: tuple[TargetOutcome, ...]
    warnings: tuple[SourceWarning, ...] = ()
    bytes_read: int = 0
    chunks_sealed: int = 0

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
            destination).
        fallbacks: ``(chunk key, target)`` for each chunk a target could not give intact, so
            the next target was read instead.
    """

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    refused: tuple[tuple[str, str], ...] = ()
    fallbacks: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class Problem:
    """One thing `Vault.verify` found wrong.

    Attributes:
        kind: ``unreachable`` (a target could not be listed), ``manifest`` (a snapshot object
            does not open), ``missing-chunk`` (a manifest names a chunk its target lacks),
            ``corrupt-chunk`` (a chunk fails authentication when re-read), ``lacking`` (another
            target holds an object this one lacks), ``key-slot`` (a key slot's copy does not
            parse or differs from the bytes most targets hold), ``chain`` (a gap, fork or
            rollback, including a known head that was deleted or that a head does not descend
            from), ``unexpected`` (a name under ``objects/`` or ``snapshots/`` that is no
            object of the repository; a warning) or ``quarantined`` (an object ``heal`` moved
            aside; a warning).
        target: the target concerned, or ``None`` for repository-wide problems (the chain).
        key: the object key concerned, or ``None``.
        detail: what was seen, in words (never a secret).
        severity: ``error`` (something stored is damaged, missing or inconsistent) or
            ``warning`` (something is there that does not belong, and nothing depends on it).
    """

    kind: str
    target: str | None
    key: str | None
    detail: str
    severity: str = attrs.field(
        default="error", validator=attrs.validators.in_(("error", "warning"))
    )


@attrs.frozen(kw_only=True)
class VerifyReport:
    """What `Vault.verify` checked and found.

    Attributes:
        targets: the targets checked, in the vault's order.
        snapshots: distinct snapshot objects (manifests and prune records) over all targets.
        chunks_read: chunk objects re-read and authenticated (0 unless ``read_data``).
        chain: the hash-chain report over every entry any target holds.
        problems: everything found wrong, errors and warnings, sorted by kind, target and key.
        heads: each lineage's current head over every target (the newest one where a fork left
            several). Persist them only when the report is ``ok``, and pass them as
            ``known_heads`` to the next verify.
    """

    targets: tuple[str, ...]
    snapshots: int
    chunks_read: int
    chain: ChainReport = attrs.field(repr=False)
    problems: tuple[Problem, ...]
    heads: KnownHeads = attrs.field(repr=False)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong: structure, chain, agreement and (when read) data.

        Warnings (stray or quarantined objects) are listed in ``problems`` but do not count.
        """
        return self.chain.ok and not any(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The warning-level problems: objects that do not belong, on which nothing depends."""
        return tuple(p for p in self.problems if p.severity == "warning")
