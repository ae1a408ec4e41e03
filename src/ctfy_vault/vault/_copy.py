"""Copying snapshots from one repository into another: re-chunked, re-sealed, chained in order.

A copied snapshot is written by the destination's own `ctfy_vault.writer.Writer`, as a backup
would be: every file is read from the source chunk by chunk (never whole), cut with the
destination's chunker, named with its chunk-id key and sealed under its keys; the snapshot keeps
its lineage, id, creation time (so its name), host, tags, labels, sources and every entry's
metadata, and chains onto the destination lineage's head. The destination records where it came
from in one more tag, ``copied-from=<source repository id, hex>/<snapshot id>`` (`origin_tag`),
so the manifest format does not change.

The choice (`choose`) and the plan (`plan_copy`) are pure: what is already in the destination is
skipped (a snapshot with the same lineage and id, or with the origin tag), and a snapshot older
than its destination lineage's head is refused before anything is written (`ChainOrderError`).
An interrupted copy therefore resumes: run again, it copies only what is missing, and chunks
already stored are deduplicated as in any backup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Final

import attrs

from ctfy_vault.exceptions import (
    ChainOrderError,
    ConfigurationError,
    ObjectExistsError,
    SnapshotNotFoundError,
)
from ctfy_vault.manifest import IDENTIFIER, FileEntry, FileType, Manifest, OpenedEntry, lineage_head
from ctfy_vault.repository import ChunkStream
from ctfy_vault.storage import Target
from ctfy_vault.vault._find import check_reference, find_snapshot
from ctfy_vault.vault._model import BackupInfo, CopyReport, SnapshotInfo
from ctfy_vault.writer import EntrySource, TargetOutcome, Writer

__all__ = [
    "ORIGIN_TAG",
    "Destination",
    "Origin",
    "choose",
    "copy_snapshots",
    "origin_tag",
    "plan_copy",
]

#: The name of the tag a copied snapshot carries: ``copied-from=<repo id hex>/<snapshot id>``.
ORIGIN_TAG: Final = "copied-from"
#: Told ``(bytes, files)`` as the source's files are read (or taken from known chunks).
Progress = Callable[[int, int], None]
#: A file's content as the destination knows it: its SHA-256 and size.
_Content = tuple[bytes, int]


def origin_tag(repo_id: bytes, snapshot_id: str) -> str:
    """The tag recording that a snapshot was copied from ``snapshot_id`` of repository ``repo_id``.

    Args:
        repo_id: the source repository's 16-byte id.
        snapshot_id: the snapshot's id there.

    Returns:
        ``copied-from=<repo id, 32 hex digits>/<snapshot id>``.
    """
    return f"{ORIGIN_TAG}={repo_id.hex()}/{snapshot_id}"


@attrs.frozen(kw_only=True)
class Origin:
    """The repository copied from, as the copy reads it.

    Attributes:
        repo_id: its id.
        snapshots: lists its snapshots.
        manifest: opens one snapshot's manifest.
        content: yields one file's plaintext chunk by chunk, its SHA-256 checked at the end.
    """

    repo_id: bytes
    snapshots: Callable[[], list[SnapshotInfo]]
    manifest: Callable[[SnapshotInfo], Manifest]
    content: Callable[[FileEntry], Iterator[bytes]]


@attrs.frozen(kw_only=True)
class Destination:
    """The repository copied into, as the copy writes it.

    Attributes:
        repo_id: its id.
        writer: its writer (its targets, sealer and chunker; the quorum required).
        catalog: opens every snapshot object its targets hold.
        head: the hash of a lineage's head, checked as a backup checks it (an unreadable newer
            object refuses).
        guard: asked about each target right before a manifest is written there.
        refused: degraded targets, left alone, each with its error.
        recheck: the chunk ids a prune has marked (checked again before each commit).
    """

    repo_id: bytes
    writer: Writer
    catalog: Callable[[], Iterable[OpenedEntry]]
    head: Callable[[str], bytes | None]
    guard: Callable[[Target], BaseException | None]
    refused: Mapping[str, BaseException]
    recheck: Callable[[], frozenset[bytes]]


def _oldest_first(info: SnapshotInfo) -> tuple[datetime, str]:
    return info.created, info.name


def _lineage_names(lineages: str | Iterable[str] | None) -> list[str] | None:
    if lineages is None:
        return None
    given: list[object] = [lineages] if isinstance(lineages, str) else list(lineages)
    names: list[str] = []
    for name in given:
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            raise ConfigurationError(f"{name!r} is not a lineage name")
        names.append(name)
    return names


def _references(
    snapshots: str | SnapshotInfo | Iterable[str | SnapshotInfo] | None,
) -> list[str | SnapshotInfo] | None:
    if snapshots is None:
        return None
    refs = [snapshots] if isinstance(snapshots, (str, SnapshotInfo)) else list(snapshots)
    for ref in refs:
        if isinstance(ref, str):
            check_reference(ref)
        elif not isinstance(ref, SnapshotInfo):
            raise ConfigurationError("a snapshot reference is a string or a SnapshotInfo")
    return refs


def choose(
    listed: Sequence[SnapshotInfo],
    *,
    snapshots: str | SnapshotInfo | Iterable[str | SnapshotInfo] | None = None,
    lineages: str | Iterable[str] | None = None,
) -> list[SnapshotInfo]:
    """Pick the source snapshots a copy takes: all, those of some lineages, or those named.

    References are looked up as `ctfy_vault.vault.find_snapshot` does, among the snapshots of the
    chosen lineages only (so ``latest`` with ``lineages=["db"]`` is the newest of ``db``). A
    `SnapshotInfo` names the source snapshot with its name.

    Args:
        listed: the source's snapshots, in any order.
        snapshots: references (``latest``, ``latest:LINEAGE``, names, ids, id prefixes) or
            `SnapshotInfo` values; one alone is accepted. ``None`` takes every snapshot.
        lineages: only these lineages (one name alone is accepted); ``None`` for all.

    Returns:
        The chosen snapshots, each once, oldest first.

    Raises:
        ConfigurationError: a malformed reference or lineage name (before anything is chosen).
        SnapshotNotFoundError: a reference matches nothing, or a lineage has no snapshot.
        AmbiguousSnapshotError: a prefix of several ids.
    """
    names = _lineage_names(lineages)
    refs = _references(snapshots)
    pool = list(listed)
    if names is not None:
        present = {info.lineage for info in pool}
        for name in names:
            if name not in present:
                raise SnapshotNotFoundError(
                    f"the source has no snapshot of lineage {name}",
                    target="repository",
                    key=f"latest:{name}",
                )
        pool = [info for info in pool if info.lineage in names]
    if refs is None:
        return sorted(pool, key=_oldest_first)
    chosen: dict[str, SnapshotInfo] = {}
    for ref in refs:
        found = find_snapshot(pool, ref.name if isinstance(ref, SnapshotInfo) else ref)
        chosen[found.name] = found
    return sorted(chosen.values(), key=_oldest_first)


def _order_error(info: SnapshotInfo, head: OpenedEntry, *, done: str) -> ChainOrderError:
    return ChainOrderError(
        f"lineage {info.lineage}: snapshot {info.name} is older than the destination lineage's "
        f"head {head.name}; copying it would break the time order of the chain ({done}; copy "
        "older snapshots before newer ones, or into a destination whose lineage is older)",
        lineage=info.lineage,
        snapshot=info.name,
        head=head.name,
    )


def plan_copy(
    chosen: Sequence[SnapshotInfo],
    destination: Iterable[OpenedEntry],
    *,
    source_repo_id: bytes,
) -> tuple[list[SnapshotInfo], list[SnapshotInfo]]:
    """Split the chosen snapshots into those to copy and those the destination already holds.

    A snapshot is present when the destination holds a snapshot of the same lineage and id, or
    one tagged with its `origin_tag`. Every snapshot to copy must be no older than its
    destination lineage's head (a snapshot, or a prune record), since each is chained onto it.

    Args:
        chosen: the source snapshots, in any order.
        destination: the destination's entries (its catalog).
        source_repo_id: the source repository's id.

    Returns:
        ``(to copy, present)``, each oldest first.

    Raises:
        ChainOrderError: a snapshot to copy is older than its destination lineage's head.
        ObjectExistsError: the destination holds a snapshot with the same id in another lineage
            (the id would name two snapshots).
    """
    entries = list(destination)
    manifests = [o.entry for o in entries if isinstance(o.entry, Manifest)]
    held = {(m.lineage, m.snapshot_id) for m in manifests}
    tags = {tag for m in manifests for tag in m.tags}
    lineage_of = {m.snapshot_id: m.lineage for m in manifests}
    missing: list[SnapshotInfo] = []
    present: list[SnapshotInfo] = []
    for info in sorted(chosen, key=_oldest_first):
        if (info.lineage, info.snapshot_id) in held or origin_tag(
            source_repo_id, info.snapshot_id
        ) in tags:
            present.append(info)
            continue
        other = lineage_of.get(info.snapshot_id)
        if other is not None:
            raise ObjectExistsError(
                f"the destination already holds a snapshot with id {info.snapshot_id} in lineage "
                f"{other}; snapshot {info.name} of lineage {info.lineage} cannot be copied there",
                target="repository",
                key=info.snapshot_id,
            )
        missing.append(info)
    first: dict[str, SnapshotInfo] = {}
    for info in missing:
        first.setdefault(info.lineage, info)
    for lineage, info in sorted(first.items()):
        head = lineage_head(entries, lineage)
        if head is not None and info.created < head.entry.created:
            raise _order_error(info, head, done="nothing was copied")
    return missing, present


def _known_contents(entries: Iterable[OpenedEntry]) -> dict[_Content, tuple[bytes, ...]]:
    """The destination's chunk ids for each file content its snapshots name."""
    known: dict[_Content, tuple[bytes, ...]] = {}
    for opened in entries:
        if isinstance(opened.entry, Manifest):
            _learn(known, opened.entry)
    return known


def _learn(known: dict[_Content, tuple[bytes, ...]], manifest: Manifest) -> None:
    for entry in manifest.files:
        if entry.type is FileType.FILE and entry.sha256 is not None:
            known.setdefault((entry.sha256, entry.size), entry.chunks)


def _source(
    origin: Origin, entry: FileEntry, known: Mapping[_Content, tuple[bytes, ...]]
) -> EntrySource:
    if entry.type is not FileType.FILE or entry.sha256 is None:
        return EntrySource(entry=entry)

    def content() -> ChunkStream:
        return ChunkStream(origin.content(entry))

    return EntrySource(entry=entry, content=content, chunks=known.get((entry.sha256, entry.size)))


def _copy_one(
    origin: Origin,
    destination: Destination,
    info: SnapshotInfo,
    known: dict[_Content, tuple[bytes, ...]],
    progress: Progress | None,
) -> BackupInfo:
    """Write one source snapshot into the destination, chained onto its lineage's head."""
    manifest = origin.manifest(info)
    previous = destination.head(info.lineage)
    if previous is not None:
        head = next((o for o in destination.catalog() if o.hash == previous), None)
        if head is not None and info.created < head.entry.created:
            # A backup of the lineage ran since the copy was planned.
            raise _order_error(info, head, done="the snapshots before it were copied")
    result = destination.writer.backup(
        [_source(origin, entry, known) for entry in manifest.files],
        lineage=manifest.lineage,
        host=manifest.host,
        now=manifest.created,
        snapshot_id=manifest.snapshot_id,
        previous=previous,
        tags=(*manifest.tags, origin_tag(origin.repo_id, manifest.snapshot_id)),
        labels=dict(manifest.labels),
        progress=progress,
        recheck=destination.recheck(),
        degraded=destination.refused,
        guard=destination.guard,
        recorded_sources=manifest.sources,
    )
    _learn(known, result.manifest)
    return BackupInfo.of_result(result)


def _overall(names: Sequence[str], copied: Sequence[BackupInfo]) -> tuple[TargetOutcome, ...]:
    """One outcome per target over every snapshot copied."""
    found: list[TargetOutcome] = []
    for name in names:
        mine = [o for info in copied for o in info.outcomes if o.target == name]
        found.append(
            TargetOutcome(
                target=name,
                committed=all(o.committed for o in mine),
                error=next((o.error for o in mine if o.error is not None), None),
                chunks_uploaded=sum(o.chunks_uploaded for o in mine),
                chunks_present=sum(o.chunks_present for o in mine),
                bytes_uploaded=sum(o.bytes_uploaded for o in mine),
            )
        )
    return tuple(found)


def copy_snapshots(
    origin: Origin,
    destination: Destination,
    *,
    snapshots: str | SnapshotInfo | Iterable[str | SnapshotInfo] | None,
    lineages: str | Iterable[str] | None,
    now: datetime,
    progress: Progress | None,
) -> CopyReport:
    """Copy the chosen snapshots that the destination lacks, oldest first (see `Vault.copy`)."""
    if now.utcoffset() is None:
        raise ConfigurationError("now must be an aware datetime")
    if origin.repo_id == destination.repo_id:
        raise ConfigurationError(
            f"the source and the destination are the same repository ({origin.repo_id.hex()}); "
            "copy between two repositories"
        )
    # The references are checked before the source is listed.
    _references(snapshots)
    _lineage_names(lineages)
    chosen = choose(origin.snapshots(), snapshots=snapshots, lineages=lineages)
    entries = list(destination.catalog())
    missing, present = plan_copy(chosen, entries, source_repo_id=origin.repo_id)
    known = _known_contents(entries)
    copied = [_copy_one(origin, destination, info, known, progress) for info in missing]
    return CopyReport(
        source_repo_id=origin.repo_id,
        time=now,
        copied=tuple(copied),
        skipped=tuple(present),
        bytes_read=sum(info.bytes_read for info in copied),
        bytes_written=sum(o.bytes_uploaded for info in copied for o in info.outcomes),
        outcomes=_overall([t.name for t in destination.writer.targets], copied),
    )
