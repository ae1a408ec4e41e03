"""Prune: apply retention plans under the exclusive lock, then sweep unreferenced chunks.

The order keeps every step re-runnable and every crash harmless:

1. take ``locks/prune`` on every reachable target (create-only; exactly one prune wins);
2. per lineage that forgets something, write a prune record (naming the lineage's head and every
   forgotten snapshot's hash) to each target, and only then delete the forgotten manifests from the
   targets that hold the record, so ``verify`` can always explain the gap;
3. sweep chunks in two phases. A chunk no remaining manifest names is first *marked* (a plaintext
   list of chunk ids under ``locks/sweep/``, `ctfy_vault.vault._marks`); a later prune deletes it
   only if it is still unreferenced and was marked at least ``grace`` earlier. A backup running
   concurrently either commits within the grace period (its manifest then names the chunk, which
   is kept) or is older than the grace period allows; choose ``grace`` longer than your longest
   backup. Format 1 deletes chunk objects; format 2 deletes and repacks packs
   (`ctfy_vault.vault._repack`, which gives the order of its steps).

Chunk deletion is skipped entirely when any target could not be listed or any snapshot object
could not be opened: a manifest that cannot be read may name chunks that look unreferenced. Names
under ``snapshots/`` that are no snapshot object's (``snapshots/zzz``) are not listed at all and
hold nothing up.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

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
from ctfy_vault.repository._layout import DELETE_CHECK_KEY, chunk_key, snapshot_key
from ctfy_vault.repository._packs import DEFAULT_PACK_SIZE
from ctfy_vault.retention import RetentionPlan
from ctfy_vault.storage import Target
from ctfy_vault.vault._locks import HeldBack
from ctfy_vault.vault._marks import delete_marks, marked_chunks, read_marks, write_mark
from ctfy_vault.vault._model import SnapshotInfo
from ctfy_vault.vault._repack import (
    DEFAULT_REPACK_BELOW,
    SweepResult,
    check_repack_below,
    sweep_packs,
)

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_LOCK_TTL",
    "DEFAULT_REPACK_BELOW",
    "PruneReport",
    "forgotten_by_records",
    "forgotten_everywhere",
    "forgotten_keys",
    "marked_chunks",
    "prune_targets",
]

log = logging.getLogger("ctfy_vault.vault")

#: How long an unreferenced chunk stays marked before a prune deletes it.
DEFAULT_GRACE = timedelta(hours=24)
#: How long a prune's lock protects it; a prune stops before deleting anything after that.
DEFAULT_LOCK_TTL = timedelta(hours=1)

Plans = dict[str, RetentionPlan[SnapshotInfo]]


@attrs.frozen(kw_only=True)
class PruneReport:
    """What `Vault.prune` did (or, for a dry run, would do).

    Attributes:
        plans: each lineage's retention plan, by lineage name.
        records: names of the prune records written (one per lineage that forgot something).
        forgotten: the snapshots whose manifests were deleted (or would be), newest first.
        chunks_deleted: unreferenced chunks deleted on at least one target (format 1: chunk
            objects; format 2: chunks dropped with the packs deleted or repacked).
        bytes_deleted: stored bytes deleted, summed over targets (format 1: the chunk objects;
            format 2: every pack deleted, repacked ones included, so the space freed is
            ``bytes_deleted - bytes_repacked``).
        chunks_pending: unreferenced chunks kept for now: marked, waiting out the grace period.
        chunks_unused: format 2: unreferenced chunks past their grace period kept in packs whose
            live share is still at or above ``repack_below`` (they stay marked).
        packs_deleted: format 2: packs deleted on at least one target because every chunk in
            them was unreferenced past the grace period, or because they stayed loose (in no
            index object) for the grace period.
        packs_repacked: format 2: packs whose still-needed chunks were copied into new packs and
            that were then deleted on at least one target.
        packs_written: format 2: new packs the repacking wrote (for a dry run, would write).
        bytes_repacked: format 2: stored bytes of those new packs, summed over the targets
            they went to.
        packs_pending: format 2: loose packs kept for now: marked, waiting out the grace period.
        sweep_skipped: why no chunk was deleted at all, or ``None`` when the sweep ran.
        locked: objects left because they are still under Object Lock, each with its
            retain-until date (the latest over the targets): a later prune deletes them once
            that date has passed. A forgotten snapshot left so is no longer listed.
        target_plans: per-target retention: each target's plans, by target name (each planned
            on the snapshots not yet forgotten there); empty without target policies.
        dry_run: nothing was changed.
        errors: targets where something failed, with the error (the rest of the prune went on).
    """

    plans: Plans
    records: tuple[str, ...] = ()
    forgotten: tuple[SnapshotInfo, ...] = ()
    chunks_deleted: int = 0
    bytes_deleted: int = 0
    chunks_pending: int = 0
    chunks_unused: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    bytes_repacked: int = 0
    packs_pending: int = 0
    sweep_skipped: str | None = None
    locked: Mapping[str, datetime] = attrs.field(factory=dict)
    target_plans: Mapping[str, Plans] = attrs.field(factory=dict)
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
    held: HeldBack  # what is left because it is still locked

    def now(self) -> datetime:
        """The current time (aware)."""
        return self.clock.now()

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
    packed: bool = False,
    pack_size: int = DEFAULT_PACK_SIZE,
    repack_below: float = DEFAULT_REPACK_BELOW,
    plan_targets: Callable[[Sequence[str]], Mapping[str, Plans]] | None = None,
) -> PruneReport:
    """Apply retention to a repository's targets (see `Vault.prune`).

    ``plan_targets`` (per-target retention) plans the named reachable targets each on its
    own; each target then forgets what its own plans forget.

    Targets in ``degraded`` are listed (their snapshots still guard chunks from the sweep) but
    never written to or deleted from; each is reported in ``errors`` with its error. ``packed``
    (format 2) sweeps packs, writing new ones of ``pack_size`` when repacking.
    """
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    repack_below = check_repack_below(repack_below)
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
        held=HeldBack(clock.now()),
    )
    try:
        plans = plan_all()
        target_plans = None if plan_targets is None else plan_targets([t.name for t in reachable])
        catalog = reader.catalog()
        records, forgotten = _forget(run, plans, catalog, target_plans)
        swept = _sweep(
            run,
            grace,
            unlisted,
            packed=packed,
            pack_size=pack_size,
            repack_below=repack_below,
        )
    finally:
        reader.forget_packs()  # packs and index objects may have been replaced
        if lock is not None:
            for name, err in release(reachable, lock).items():
                run.failures.fail(name, err)
    return PruneReport(
        plans=plans,
        records=records,
        forgotten=forgotten,
        chunks_deleted=swept.chunks_deleted,
        bytes_deleted=swept.bytes_deleted,
        chunks_pending=swept.chunks_pending,
        chunks_unused=swept.chunks_unused,
        packs_deleted=swept.packs_deleted,
        packs_repacked=swept.packs_repacked,
        packs_written=swept.packs_written,
        bytes_repacked=swept.bytes_repacked,
        packs_pending=swept.packs_pending,
        sweep_skipped=swept.skipped,
        locked=dict(sorted(run.held.found.items())),
        target_plans=dict(target_plans or {}),
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
    run: _Run,
    plans: Plans,
    catalog: Mapping[str, OpenedEntry],
    target_plans: Mapping[str, Plans] | None = None,
) -> tuple[tuple[str, ...], tuple[SnapshotInfo, ...]]:
    """Write the prune records, then delete what they forgot (and what earlier ones did).

    Without ``target_plans``, one record per lineage that forgets something, on every target.
    With them (per-target retention), one record per lineage and set of forgotten snapshots,
    naming the targets it applies to; every record goes to every target (so each holds the
    whole chain), and a lineage's records of one prune follow each other in its chain.
    """
    records: list[str] = []
    forgotten: dict[str, SnapshotInfo] = {}
    names = [target.name for target in run.targets]
    doomed = {name: forgotten_by_records(catalog.values(), name) for name in names}
    for lineage, groups in _groups(plans, catalog, target_plans, names):
        previous = _head(catalog, lineage)
        for infos, scope in groups:
            forgotten.update((info.name, info) for info in infos)
            if run.dry_run:
                continue
            record = PruneRecord(
                record_id=secrets.token_hex(16),
                lineage=lineage,
                created=run.clock.now(),
                host=run.host,
                forgotten=[Forgotten(info.snapshot_id, info.hash) for info in infos],
                previous=previous,
                targets=scope,
            )
            sealed = seal_entry(run.sealer, record)
            written = _write_everywhere(run, snapshot_key(sealed.name), bytes(sealed.blob))
            if not written:
                continue
            previous = sealed.hash
            for target in written:
                run.listed[target.name].add(sealed.name)
            records.append(sealed.name)
            for name in names:
                if record.applies_to(name):
                    for info in infos:
                        doomed[name].setdefault(info.name, set()).add(sealed.name)
    if not run.dry_run:
        _delete_manifests(run, doomed)
    ordered = sorted(forgotten.values(), key=lambda info: (info.created, info.name), reverse=True)
    return tuple(records), tuple(ordered)


_Group = tuple[list[SnapshotInfo], tuple[str, ...] | None]


def _groups(
    plans: Plans,
    catalog: Mapping[str, OpenedEntry],
    target_plans: Mapping[str, Plans] | None,
    names: Sequence[str],
) -> list[tuple[str, list[_Group]]]:
    """Per lineage, what each record forgets and on which targets (``None``: every target)."""
    if target_plans is None:
        found = [
            (lineage, [info for info in lineage_plan.forget if info.name in catalog])
            for lineage, lineage_plan in sorted(plans.items())
        ]
        return [(lineage, [(infos, None)]) for lineage, infos in found if infos]
    out: list[tuple[str, list[_Group]]] = []
    lineages = sorted({lineage for by_lineage in target_plans.values() for lineage in by_lineage})
    for lineage in lineages:
        by_set: dict[tuple[str, ...], tuple[list[SnapshotInfo], list[str]]] = {}
        for name in names:
            lineage_plan = target_plans.get(name, {}).get(lineage)
            if lineage_plan is None:
                continue
            infos = [info for info in lineage_plan.forget if info.name in catalog]
            if infos:
                key = tuple(sorted(info.name for info in infos))
                by_set.setdefault(key, (infos, []))[1].append(name)
        if by_set:
            out.append(
                (
                    lineage,
                    [(infos, tuple(scope)) for _key, (infos, scope) in sorted(by_set.items())],
                )
            )
    return out


def forgotten_by_records(
    catalog: Iterable[OpenedEntry], target: str | None = None
) -> dict[str, set[str]]:
    """Each snapshot object that a prune record forgot, with the names of those records.

    Such an object is gone even while it is still stored (under Object Lock, or on a target
    a prune could not delete from). With ``target``, the records that forget on that target
    (per-target retention scopes a record to some targets); without it, only records that
    forget on every target.
    """
    entries = list(catalog)
    by_hash = {opened.hash: opened for opened in entries}
    doomed: dict[str, set[str]] = {}
    for opened in entries:
        entry = opened.entry
        if not isinstance(entry, PruneRecord):
            continue
        if entry.targets is not None and (target is None or target not in entry.targets):
            continue
        for item in entry.forgotten:
            gone = by_hash.get(item.hash)
            if gone is not None:
                doomed.setdefault(gone.name, set()).add(opened.name)
    return doomed


def forgotten_everywhere(catalog: Iterable[OpenedEntry], targets: Iterable[str]) -> set[str]:
    """The snapshot objects that prune records forgot on each of ``targets``."""
    entries = list(catalog)
    gone = set(forgotten_by_records(entries))
    scoped: set[str] | None = None
    for name in targets:
        here = set(forgotten_by_records(entries, name))
        scoped = here if scoped is None else scoped & here
    return gone | (scoped or set())


def forgotten_keys(
    catalog: Iterable[OpenedEntry], targets: Iterable[str]
) -> dict[str, frozenset[str]]:
    """Per target name, the keys of the snapshot objects that prune records forgot there."""
    entries = list(catalog)
    return {
        name: frozenset(map(snapshot_key, forgotten_by_records(entries, name))) for name in targets
    }


def _head(catalog: Mapping[str, OpenedEntry], lineage: str) -> bytes | None:
    head = lineage_head(catalog.values(), lineage)
    return None if head is None else head.hash


def _write_everywhere(run: _Run, key: str, data: bytes) -> list[Target]:
    """Write a new object (a record's or mark's name is unique) create-only to every target."""
    outcome = Replicas(run.targets).write(key, data, exists_ok=False)
    for name, err in outcome.failed.items():
        run.failures.fail(name, err)
    return [target for target in run.targets if target.name in outcome.results]


def _delete_manifests(run: _Run, doomed: Mapping[str, Mapping[str, set[str]]]) -> None:
    """Delete each doomed snapshot object from the targets that hold a record forgetting it there.

    ``doomed`` holds, per target name, each snapshot object forgotten on it, with the names of
    the records forgetting it.
    """
    if not any(doomed.values()):
        return
    run.check_lock()
    for target in run.targets:
        present = run.listed[target.name]
        for name, by_records in sorted(doomed.get(target.name, {}).items()):
            if name in present and present & by_records:
                try:
                    if run.held.locked(target, snapshot_key(name)):
                        continue
                    target.delete(snapshot_key(name))
                except StorageError as err:
                    run.failures.fail(target, err)
    run.reader.forget_names(set().union(*map(set, doomed.values())))


# -- sweeping chunks ---------------------------------------------------------------------------


def _sweep(
    run: _Run,
    grace: timedelta,
    degraded: bool,
    *,
    packed: bool,
    pack_size: int,
    repack_below: float,
) -> SweepResult:
    """Mark unreferenced chunks; delete those marked at least ``grace`` ago (format 2: by pack)."""
    if degraded:
        return SweepResult(skipped="a target could not be listed; no chunk was deleted")
    catalog = run.reader.catalog()
    if run.reader.broken_names():
        return SweepResult(
            skipped=(
                "a snapshot object could not be opened; no chunk was deleted (check names it; "
                "heal --repair replaces or quarantines it)"
            )
        )
    referenced = {
        chunk
        for opened in catalog.values()
        if isinstance(opened.entry, Manifest)
        for entry in opened.entry.files
        for chunk in entry.chunks
    }
    if packed:
        return sweep_packs(
            run, referenced, grace=grace, repack_below=repack_below, pack_size=pack_size
        )
    return _sweep_objects(run, grace, referenced)


def _sweep_objects(run: _Run, grace: timedelta, referenced: set[bytes]) -> SweepResult:
    """Format 1: mark unreferenced chunk objects; delete those marked at least ``grace`` ago."""
    holders: dict[bytes, list[Target]] = {}
    for target in run.targets:
        try:
            for chunk in index_chunks(target) - referenced:
                holders.setdefault(chunk, []).append(target)
        except StorageError as err:
            run.failures.fail(target, err)
            return SweepResult(skipped=f"{target.name} could not be listed; no chunk was deleted")
    marks = read_marks(run.targets, run.failures)
    now = run.clock.now()
    ripe = {c for c in holders if _ripe(marks.chunks.get(c), now, grace)}
    pending = set(holders) - ripe
    if run.dry_run:
        return SweepResult(chunks_deleted=len(ripe), chunks_pending=len(pending))
    run.check_lock()
    new = sorted(pending - set(marks.chunks))
    if new:
        write_mark(run.targets, run.failures, now, new)
    deleted, size = _delete_chunks(run, ripe, holders)
    delete_marks(run.targets, run.failures, marks.spent(set(holders) - ripe, ()))
    return SweepResult(chunks_deleted=deleted, bytes_deleted=size, chunks_pending=len(pending))


def _ripe(mark: tuple[datetime, str] | None, now: datetime, grace: timedelta) -> bool:
    """Whether a chunk marked then (``None``: not marked) may go now."""
    return grace == timedelta(0) or (mark is not None and mark[0] <= now - grace)


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
                if run.held.locked(target, key):
                    continue
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
