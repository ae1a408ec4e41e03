"""Object Lock that follows the retention schedule: extend each object to what its holders need.

Each kept snapshot needs a retain-until date from its own reasons
(`ctfy_vault.retention.retain_until`). An object is locked until the latest date among the
snapshots that need it:

- a snapshot's manifest: its own date;
- format 1, a chunk object; format 2, a pack: the latest date of every kept snapshot naming a
  chunk in it (shared data follows its longest holder);
- the config and the key slots, without which nothing opens: the latest date of all.

Index objects are not locked: prune must be able to replace them, and ``heal`` rebuilds them
from the packs' own sealed headers. Locks are only ever extended (`Target.extend_retention`),
never shortened; on a target without Object Lock nothing is done and the report says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Final

import attrs

from ctfy_vault.exceptions import ObjectNotFoundError, StorageError
from ctfy_vault.manifest import Manifest
from ctfy_vault.repository import Failures
from ctfy_vault.repository._catalog import Reader
from ctfy_vault.repository._layout import (
    CONFIG_KEY,
    KEYS_PREFIX,
    chunk_key,
    pack_key,
    snapshot_key,
)
from ctfy_vault.retention import RetentionPlan, retain_until
from ctfy_vault.storage import LockMode, Target, whole_second
from ctfy_vault.vault._model import SnapshotInfo

__all__ = ["HeldBack", "LockReport", "follow_locks"]

_WORKERS = 8

#: What a check (`follow_locks` with ``dry_run``) asks of a lock that the next plan will
#: extend: that it still runs this long.
CHECK_MARGIN: Final = timedelta(hours=1)


@attrs.frozen(kw_only=True)
class LockReport:
    """What `ctfy_vault.vault.Vault.lock` did.

    Attributes:
        dates: the retain-until date each kept snapshot needs, by snapshot id (for a check,
            what it needs now: `CHECK_MARGIN` ahead for a lock a later plan extends).
        checked: per locking target, the objects whose lock was read.
        extended: per locking target, the objects whose lock was raised (for a check:
            would be).
        short: per locking target, each object locked for less than the plan needs, with the
            date it has (``None``: no lock) and the date it needs. Only a check (``dry_run``)
            fills it: otherwise those locks were raised.
        unlockable: targets that cannot lock (no Object Lock on the bucket, or a backend
            without it): their objects can be deleted by whoever holds their credential.
        errors: per target, the error that stopped it.
    """

    dates: Mapping[str, datetime] = attrs.field(factory=dict)
    checked: Mapping[str, int] = attrs.field(factory=dict)
    extended: Mapping[str, int] = attrs.field(factory=dict)
    short: Mapping[str, Mapping[str, tuple[datetime | None, datetime]]] = attrs.field(factory=dict)
    unlockable: tuple[str, ...] = ()
    errors: Mapping[str, BaseException] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every locking target was brought up to date."""
        return not self.errors


@attrs.define
class HeldBack:
    """What a prune leaves because it is still locked: each key with its retain-until date.

    `HeldBack.locked` asks a locking target once per object (one ``HeadObject``); a target
    without Object Lock (`Target.object_lock`) is never asked. Safe to share between threads.
    """

    now: datetime
    found: dict[str, datetime] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def locked(self, target: Target, key: str) -> bool:
        """Whether ``key`` is still locked on ``target`` (then it is recorded, not deleted).

        A missing object is not locked.

        Raises:
            StorageError: the bucket settings or the object could not be read (the caller
                fails the target).
        """
        if not target.object_lock():
            return False
        try:
            retention = target.retention(key)
        except ObjectNotFoundError:
            return False
        if retention is None or retention[1] <= self.now:
            return False
        until = retention[1]
        with self._lock:
            if self.found.get(key, until) <= until:
                self.found[key] = until
        return True


def follow_locks(
    targets: Sequence[Target],
    reader: Reader,
    plans: Mapping[str, RetentionPlan[SnapshotInfo]],
    manifest: Callable[[SnapshotInfo], Manifest],
    *,
    lead: timedelta,
    mode: LockMode | None,
    packed: bool,
    dry_run: bool = False,
    target_plans: Mapping[str, Mapping[str, RetentionPlan[SnapshotInfo]]] | None = None,
) -> LockReport:
    """Extend every object's lock to the latest date a kept snapshot needs (see the module).

    Args:
        targets: the repository's targets; those that cannot lock are reported, not changed.
        reader: reads the targets' index objects (format 2).
        plans: each lineage's plan; only kept snapshots lock anything.
        manifest: opens a kept snapshot's manifest.
        lead: passed to `ctfy_vault.retention.retain_until`.
        mode: the lock mode for an object that has none yet; ``None``: each target's own.
        packed: the repository is format 2.
        dry_run: only read the locks and report those too short (``short``).
        target_plans: per-target retention: the plans of the targets it names, by name (the
            others follow ``plans``).

    Returns:
        The dates (per snapshot, the latest over the targets) and, per target, what was read
        and raised.
    """
    # A check asks what safety needs now: a lock that a later plan must extend has to run at
    # least `CHECK_MARGIN` more, a final tier's its whole date.
    needed = CHECK_MARGIN if dry_run else lead
    plan_of = {target.name: (target_plans or {}).get(target.name, plans) for target in targets}
    wants: dict[int, _Wants] = {}
    for chosen in plan_of.values():
        if id(chosen) not in wants:
            wants[id(chosen)] = _Wants.of(chosen, manifest, needed)
    dates: dict[str, datetime] = {}
    for want in wants.values():
        for info, until in want.kept:
            if dates.get(info.snapshot_id, until) <= until:
                dates[info.snapshot_id] = until
    failures = Failures("lock")
    locking, unlockable = _partition(targets, failures)
    if not dates or not locking:
        return LockReport(dates=dates, unlockable=tuple(unlockable), errors=failures.errors())
    checked: dict[str, int] = {}
    extended: dict[str, int] = {}
    short: dict[str, dict[str, tuple[datetime | None, datetime]]] = {}
    for target in locking:
        want = wants[id(plan_of[target.name])]
        if not want.kept:
            continue
        try:
            wanted = _wanted(target, reader, want.kept, want.chunks(), want.latest(), packed=packed)
            found = _extend(target, wanted, mode or target.lock_mode, dry_run=dry_run)
        except StorageError as err:
            failures.fail(target, err)
            continue
        checked[target.name] = len(wanted)
        extended[target.name] = len(found)
        if dry_run and found:
            short[target.name] = found
    return LockReport(
        dates=dates,
        checked=checked,
        extended=extended,
        short=short,
        unlockable=tuple(unlockable),
        errors=failures.errors(),
    )


def _partition(targets: Sequence[Target], failures: Failures) -> tuple[list[Target], list[str]]:
    """The targets whose bucket has Object Lock, and the names of those without."""
    locking: list[Target] = []
    unlockable: list[str] = []
    for target in targets:
        try:
            if target.object_lock():
                locking.append(target)
            else:
                unlockable.append(target.name)
        except StorageError as err:
            failures.fail(target, err)
    return locking, unlockable


@attrs.define
class _Wants:
    """One set of plans: each kept snapshot's date, and (read once, when needed) its chunks'."""

    kept: list[tuple[SnapshotInfo, datetime]]
    manifest: Callable[[SnapshotInfo], Manifest]
    _chunks: dict[bytes, datetime] | None = None

    @classmethod
    def of(
        cls,
        plans: Mapping[str, RetentionPlan[SnapshotInfo]],
        manifest: Callable[[SnapshotInfo], Manifest],
        needed: timedelta,
    ) -> _Wants:
        kept = [
            (info, until)
            for lineage_plan in plans.values()
            for info, until in zip(
                lineage_plan.keep,
                map(whole_second, retain_until(lineage_plan, lead=needed)),
                strict=True,
            )
        ]
        return cls(kept, manifest)

    def chunks(self) -> dict[bytes, datetime]:
        if self._chunks is None:
            self._chunks = _chunk_dates(self.kept, self.manifest)
        return self._chunks

    def latest(self) -> datetime:
        return max(until for _info, until in self.kept)


def _chunk_dates(
    kept: Iterable[tuple[SnapshotInfo, datetime]], manifest: Callable[[SnapshotInfo], Manifest]
) -> dict[bytes, datetime]:
    """The latest date among the kept snapshots naming each chunk."""
    chunks: dict[bytes, datetime] = {}
    for info, until in kept:
        for entry in manifest(info).files:
            for chunk in entry.chunks:
                if chunks.get(chunk, until) <= until:
                    chunks[chunk] = until
    return chunks


def _wanted(
    target: Target,
    reader: Reader,
    kept: Iterable[tuple[SnapshotInfo, datetime]],
    chunks: Mapping[bytes, datetime],
    latest: datetime,
    *,
    packed: bool,
) -> dict[str, datetime]:
    wanted: dict[str, datetime] = {snapshot_key(info.name): until for info, until in kept}
    if packed:
        holdings = reader.holdings(target)
        for chunk, until in chunks.items():
            where = holdings.locate(chunk)
            if where is not None:
                key = pack_key(where.pack_id)
                if wanted.get(key, until) <= until:
                    wanted[key] = until
    else:
        wanted.update((chunk_key(chunk), until) for chunk, until in chunks.items())
    wanted[CONFIG_KEY] = latest
    for key in target.list(KEYS_PREFIX):
        wanted[key] = latest
    return wanted


def _extend(
    target: Target, wanted: Mapping[str, datetime], mode: LockMode, *, dry_run: bool
) -> dict[str, tuple[datetime | None, datetime]]:
    """Raise (or, for ``dry_run``, only find) the locks below what ``wanted`` says."""

    def one(item: tuple[str, datetime]) -> tuple[str, datetime | None, datetime] | None:
        key, until = item
        try:
            if not dry_run:
                raised = target.extend_retention(key, until, mode=mode)
                return (key, None, until) if raised else None
            current = target.retention(key)
        except ObjectNotFoundError:
            return None  # not on this target (verify reports it; heal copies it locked)
        has = None if current is None else current[1]
        return None if has is not None and has >= until else (key, has, until)

    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="ctfy-lock") as pool:
        found = [r for r in pool.map(one, sorted(wanted.items())) if r is not None]
    return {key: (has, until) for key, has, until in found}
