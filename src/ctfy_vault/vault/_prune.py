"""Prune: apply retention plans under the exclusive lock, then sweep unreferenced chunks.

The order keeps every step re-runnable and every crash harmless:

1. take ``locks/prune`` on every reachable target (create-only; exactly one prune wins);
2. per lineage that forgets something, write a prune record (naming the lineage's head and every
   forgotten snapshot's hash) to each target, and only then delete the forgotten manifests from the
   targets that hold the record, so ``verify`` can always explain the gap;
3. sweep chunks in two phases. A chunk no remaining manifest names is first *marked* (a plaintext
   list of chunk ids under ``locks/sweep/``); a later prune deletes it only if it is still
   unreferenced and was marked at least ``grace`` earlier. A backup running concurrently either
   commits within the grace period (its manifest then names the chunk, which is kept) or is older
   than the grace period allows; choose ``grace`` longer than your longest backup.

Chunk deletion is skipped entirely when any target could not be listed or any snapshot object
could not be opened: a manifest that cannot be read may name chunks that look unreferenced. Names
under ``snapshots/`` that are no snapshot object's (``snapshots/zzz``) are not listed at all and
hold nothing up.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import (
    AccessDeniedError,
    LockError,
    ObjectNotFoundError,
    StorageError,
)
from ctfy_vault.manifest import (
    Forgotten,
    Manifest,
    OpenedEntry,
    PruneRecord,
    lineage_head,
    seal_entry,
)
from ctfy_vault.repository import (
    Failures,
    LockInfo,
    Reader,
    Replicas,
    acquire,
    index_chunks,
    new_lock,
    release,
    snapshot_names,
)
from ctfy_vault.repository._layout import (
    DELETE_CHECK_KEY,
    SWEEP_PREFIX,
    KeyKind,
    chunk_key,
    kind_of,
    snapshot_key,
    sweep_mark_key,
)
from ctfy_vault.retention import RetentionPlan
from ctfy_vault.storage import Target
from ctfy_vault.vault._model import SnapshotInfo

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_LOCK_TTL",
    "PruneReport",
    "marked_chunks",
    "prune_targets",
]

log = logging.getLogger("ctfy_vault.vault")

#: How long an unreferenced chunk stays marked before a prune deletes it.
DEFAULT_GRACE = timedelta(hours=24)
#: How long a prune's lock protects it; a prune stops before deleting anything after that.
DEFAULT_LOCK_TTL = timedelta(hours=1)
_MARK_VERSION = 1

Plans = dict[str, RetentionPlan[SnapshotInfo]]


@attrs.frozen(kw_only=True)
class PruneReport:
    """What `Vault.prune` did (or, for a dry run, would do).

    Attributes:
        plans: each lineage's retention plan, by lineage name.
        records: names of the prune records written (one per lineage that forgot something).
        forgotten: the snapshots whose manifests were deleted (or would be), newest first.
        chunks_deleted: chunk objects deleted on at least one target.
        bytes_deleted: stored bytes those chunks took, summed over targets.
        chunks_pending: unreferenced chunks kept for now: marked, waiting out the grace period.
        sweep_skipped: why no chunk was deleted at all, or ``None`` when the sweep ran.
        dry_run: nothing was changed.
        errors: targets where something failed, with the error (the rest of the prune went on).
    """

    plans: Plans
    records: tuple[str, ...] = ()
    forgotten: tuple[SnapshotInfo, ...] = ()
    chunks_deleted: int = 0
    bytes_deleted: int = 0
    chunks_pending: int = 0
    sweep_skipped: str | None = None
    dry_run: bool = False
    errors: Mapping[str, BaseException] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """No target reported an error."""
        return not self.errors


@attrs.define
class _Clock:
    """``now`` advanced by the monotonic time elapsed since the prune started."""

    start: datetime
    began: float = attrs.field(factory=time.monotonic)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


@attrs.define
class _Run:
    targets: tuple[Target, ...]
    sealer: Sealer
    reader: Reader
    clock: _Clock
    lock: LockInfo | None
    host: str
    dry_run: bool
    listed: dict[str, set[str]]  # each target's snapshot names, kept current as records land
    failures: Failures

    def check_lock(self) -> None:
        """Refuse to delete once the lock has expired (another prune may have broken it)."""
        if self.lock is not None and self.clock.now() >= self.lock.expires:
            raise LockError(
                f"the prune lock expired at {self.lock.expires.isoformat()} before the prune "
                "finished; nothing more was deleted (run prune again)"
            )


def prune_targets(
    targets: Sequence[Target],
    sealer: Sealer,
    reader: Reader,
    plan_all: Callable[[], Plans],
    *,
    now: datetime,
    grace: timedelta,
    host: str,
    dry_run: bool,
    lock_ttl: timedelta = DEFAULT_LOCK_TTL,
    degraded: Mapping[str, BaseException] | None = None,
) -> PruneReport:
    """Apply retention to a repository's targets (see `Vault.prune`).

    Targets in ``degraded`` are listed (their snapshots still guard chunks from the sweep) but
    never written to or deleted from; each is reported in ``errors`` with its error.
    """
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    degraded = degraded or {}
    clock = _Clock(now.astimezone(UTC))
    listed, errors = _list_snapshots(targets)
    unlisted = bool(errors)
    reachable = tuple(t for t in targets if t.name in listed and t.name not in degraded)
    failures = Failures("prune")
    for name, err in [*errors.items(), *degraded.items()]:
        failures.fail(name, err, quiet=True)
    if not reachable:
        raise StorageError("no target of the repository could be listed", target="repository")
    lock = None if dry_run else new_lock(clock.now(), lock_ttl)
    if lock is not None:
        _check_can_delete(reachable)
        acquire(reachable, lock)
    run = _Run(
        targets=reachable,
        sealer=sealer,
        reader=reader,
        clock=clock,
        lock=lock,
        host=host,
        dry_run=dry_run,
        listed=listed,
        failures=failures,
    )
    try:
        plans = plan_all()
        catalog = reader.catalog()
        records, forgotten = _forget(run, plans, catalog)
        deleted, size, pending, skipped = _sweep(run, grace, unlisted)
    finally:
        if lock is not None:
            for name, err in release(reachable, lock).items():
                run.failures.fail(name, err)
    return PruneReport(
        plans=plans,
        records=records,
        forgotten=forgotten,
        chunks_deleted=deleted,
        bytes_deleted=size,
        chunks_pending=pending,
        sweep_skipped=skipped,
        dry_run=dry_run,
        errors=run.failures.errors(),
    )


def _list_snapshots(
    targets: Sequence[Target],
) -> tuple[dict[str, set[str]], dict[str, BaseException]]:
    """List ``snapshots/`` once per target: the names, by target; and the targets that failed."""
    listed: dict[str, set[str]] = {}
    errors: dict[str, BaseException] = {}
    for target in targets:
        try:
            listed[target.name] = snapshot_names(target)
        except StorageError as err:
            errors[target.name] = err
    return listed, errors


def _check_can_delete(targets: Sequence[Target]) -> None:
    """Fail before changing anything when a credential may write but not delete.

    Deleting a key that does not exist is harmless where deletion is allowed, and refused
    (before the key is even looked up) where it is not.
    """
    for target in targets:
        try:
            target.delete(DELETE_CHECK_KEY)
        except AccessDeniedError as err:
            raise AccessDeniedError(
                "prune deletes, and this target's credential may not delete: use the prune "
                "credential (backup and heal need none)",
                target=target.name,
                key=DELETE_CHECK_KEY,
            ) from err


# -- forgetting snapshots ----------------------------------------------------------------------


def _forget(
    run: _Run, plans: Plans, catalog: Mapping[str, OpenedEntry]
) -> tuple[tuple[str, ...], tuple[SnapshotInfo, ...]]:
    """Write a prune record per lineage, then delete what it forgot (and what earlier ones did)."""
    records: list[str] = []
    forgotten: list[SnapshotInfo] = []
    doomed: dict[str, set[str]] = {}  # snapshot object name -> record names that forgot it
    by_hash = {opened.hash: opened for opened in catalog.values()}
    for opened in catalog.values():
        if isinstance(opened.entry, PruneRecord):
            for item in opened.entry.forgotten:
                gone = by_hash.get(item.hash)
                if gone is not None:
                    doomed.setdefault(gone.name, set()).add(opened.name)
    for lineage, lineage_plan in sorted(plans.items()):
        infos = [info for info in lineage_plan.forget if info.name in catalog]
        if not infos:
            continue
        forgotten.extend(infos)
        if run.dry_run:
            continue
        record = PruneRecord(
            record_id=secrets.token_hex(16),
            lineage=lineage,
            created=run.clock.now(),
            host=run.host,
            forgotten=[Forgotten(info.snapshot_id, info.hash) for info in infos],
            previous=_head(catalog, lineage),
        )
        sealed = seal_entry(run.sealer, record)
        written = _write_everywhere(run, snapshot_key(sealed.name), bytes(sealed.blob))
        if not written:
            continue
        for target in written:
            run.listed[target.name].add(sealed.name)
        records.append(sealed.name)
        for info in infos:
            doomed.setdefault(info.name, set()).add(sealed.name)
    if not run.dry_run:
        _delete_manifests(run, doomed)
    forgotten.sort(key=lambda info: (info.created, info.name), reverse=True)
    return tuple(records), tuple(forgotten)


def _head(catalog: Mapping[str, OpenedEntry], lineage: str) -> bytes | None:
    head = lineage_head(catalog.values(), lineage)
    return None if head is None else head.hash


def _write_everywhere(run: _Run, key: str, data: bytes) -> list[Target]:
    """Write a new object (a record's or mark's name is unique) create-only to every target."""
    outcome = Replicas(run.targets).write(key, data, exists_ok=False)
    for name, err in outcome.failed.items():
        run.failures.fail(name, err)
    return [target for target in run.targets if target.name in outcome.results]


def _delete_manifests(run: _Run, doomed: Mapping[str, set[str]]) -> None:
    """Delete each doomed snapshot object from the targets that hold a record forgetting it."""
    if not doomed:
        return
    run.check_lock()
    for target in run.targets:
        present = run.listed[target.name]
        for name, by_records in sorted(doomed.items()):
            if name in present and present & by_records:
                try:
                    target.delete(snapshot_key(name))
                except StorageError as err:
                    run.failures.fail(target, err)
    run.reader.forget_names(doomed)


# -- sweeping chunks ---------------------------------------------------------------------------


def _sweep(run: _Run, grace: timedelta, degraded: bool) -> tuple[int, int, int, str | None]:
    """Mark unreferenced chunks; delete those marked at least ``grace`` ago.

    Returns:
        Chunks deleted, bytes deleted, chunks pending, and why the sweep was skipped (or None).
    """
    if degraded:
        return 0, 0, 0, "a target could not be listed; no chunk was deleted"
    catalog = run.reader.catalog()
    if run.reader.broken_names():
        return (
            0,
            0,
            0,
            (
                "a snapshot object could not be opened; no chunk was deleted (check names it; "
                "heal --repair replaces or quarantines it)"
            ),
        )
    referenced = {
        chunk
        for opened in catalog.values()
        if isinstance(opened.entry, Manifest)
        for entry in opened.entry.files
        for chunk in entry.chunks
    }
    holders: dict[bytes, list[Target]] = {}
    for target in run.targets:
        try:
            for chunk in index_chunks(target) - referenced:
                holders.setdefault(chunk, []).append(target)
        except StorageError as err:
            run.failures.fail(target, err)
            return 0, 0, 0, f"{target.name} could not be listed; no chunk was deleted"
    marks, mark_keys = _read_marks(run)
    now = run.clock.now()
    ripe = {c for c in holders if grace == timedelta(0) or marks.get(c, (now,))[0] <= now - grace}
    pending = set(holders) - ripe
    if run.dry_run:
        return len(ripe), 0, len(pending), None
    run.check_lock()
    new = sorted(pending - set(marks))
    if new:
        _write_mark(run, now, new)
    deleted, size = _delete_chunks(run, ripe, holders)
    _drop_spent_marks(run, marks, mark_keys, set(holders) - ripe)
    return deleted, size, len(pending), None


def _iter_marks(
    targets: Sequence[Target], on_list_error: Callable[[Target, StorageError], object]
) -> Iterator[tuple[str, datetime, list[bytes]]]:
    """Yield each sweep mark once (the first target listing it gives it): key, time, chunk ids.

    An unreadable or malformed mark is skipped with a warning.
    """
    seen: set[str] = set()
    for target in targets:
        try:
            listed = target.list(SWEEP_PREFIX)
            keys = sorted(k for k in listed if kind_of(k) is KeyKind.SWEEP_MARK)
        except StorageError as err:
            on_list_error(target, err)
            continue
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            try:
                created, chunks = _parse_mark(target.read(key))
            except (StorageError, ValueError) as err:
                log.warning("sweep mark %s on %s ignored: %s", key, target.name, err)
                continue
            yield key, created, chunks


def _read_marks(run: _Run) -> tuple[dict[bytes, tuple[datetime, str]], set[str]]:
    """Every marked chunk with the earliest time it was marked and that mark's name; all marks."""
    marks: dict[bytes, tuple[datetime, str]] = {}
    keys: set[str] = set()
    for key, created, chunks in _iter_marks(run.targets, run.failures.fail):
        keys.add(key)
        for chunk in chunks:
            if chunk not in marks or created < marks[chunk][0]:
                marks[chunk] = (created, key)
    return marks, keys


def marked_chunks(targets: Sequence[Target]) -> frozenset[bytes]:
    """Every chunk id some sweep mark names, on any target (unreadable marks are skipped).

    A backup reusing one of these must check it still exists right before it commits (see
    `ctfy_vault.writer.Writer.backup`'s ``recheck``).
    """
    return frozenset(
        chunk for _key, _created, chunks in _iter_marks(targets, _ignore) for chunk in chunks
    )


def _ignore(_target: Target, _err: StorageError) -> None:
    """A backup goes on without the marks of a target it cannot list."""


def _parse_mark(data: bytes) -> tuple[datetime, list[bytes]]:
    try:
        document: Any = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != _MARK_VERSION:
            raise ValueError("not a version 1 sweep mark")
        created = datetime.fromisoformat(document["created"])
        if created.tzinfo is None:
            raise ValueError("naive time in a sweep mark")
        return created, [bytes.fromhex(item) for item in document["chunks"]]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"malformed sweep mark: {err}") from err


def _write_mark(run: _Run, now: datetime, chunks: Iterable[bytes]) -> None:
    key = sweep_mark_key(now, secrets.token_hex(4))
    document = {
        "version": _MARK_VERSION,
        "created": now.isoformat(),
        "chunks": [chunk.hex() for chunk in chunks],
    }
    _write_everywhere(run, key, json.dumps(document).encode())


def _delete_chunks(
    run: _Run, ripe: set[bytes], holders: Mapping[bytes, list[Target]]
) -> tuple[int, int]:
    deleted = 0
    size = 0
    for chunk in sorted(ripe):
        run.check_lock()
        gone = False
        for target in holders[chunk]:
            key = chunk_key(chunk)
            try:
                stored = target.size(key)
                target.delete(key)
            except ObjectNotFoundError:
                continue
            except StorageError as err:
                run.failures.fail(target, err)
                continue
            size += stored
            gone = True
        deleted += gone
    return deleted, size


def _drop_spent_marks(
    run: _Run,
    marks: Mapping[bytes, tuple[datetime, str]],
    mark_keys: set[str],
    still_pending: set[bytes],
) -> None:
    """Delete marks none of whose chunks still wait on them.

    A mark is spent when each of its chunks was deleted, is referenced again, or is covered by an
    earlier mark.
    """
    live = {marks[chunk][1] for chunk in still_pending if chunk in marks}
    spent = mark_keys - live
    for target in run.targets:
        for key in sorted(spent):
            try:
                target.delete(key)
            except StorageError as err:
                run.failures.fail(target, err)
