"""How current a repository is: per lineage and target, the newest snapshot and its age.

A backup that silently stops running is the commonest failure of backups; `Vault.status`
answers, from the storage alone, the questions a monitoring check asks: how old is each
lineage's newest snapshot, which targets lag behind it, is a prune holding the lock, how much
is waiting to be deleted, and which targets are protected by Object Lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from ctfy_vault.exceptions import StorageError
from ctfy_vault.repository import LockInfo
from ctfy_vault.storage import Target
from ctfy_vault.vault._model import SnapshotInfo

__all__ = ["LineageStatus", "Status", "lineage_status", "object_lock_of"]


@attrs.frozen(kw_only=True)
class LineageStatus:
    """One lineage: its newest snapshot, and each target's newest.

    Attributes:
        lineage: the lineage's name.
        newest: the newest snapshot of the lineage on any target.
        age: how long before the status's ``now`` it was taken (negative: after ``now``).
        on_targets: per target name, the time of the newest snapshot of the lineage it holds
            (``None``: it holds none). Targets that could not be listed are left out.
        lagging: targets whose newest snapshot of the lineage is older than ``newest`` (a
            backup failed there; ``heal`` copies what they lack).
        stale: ``age`` is over the ``max_age`` asked for.
        snapshots: how many snapshots of the lineage the repository lists.
    """

    lineage: str
    newest: SnapshotInfo
    age: timedelta
    on_targets: Mapping[str, datetime | None]
    lagging: tuple[str, ...] = ()
    stale: bool = False
    snapshots: int = 0


@attrs.frozen(kw_only=True)
class Status:
    """What `ctfy_vault.vault.Vault.status` found.

    Attributes:
        now: the moment ages are measured from (aware).
        max_age: the age over which a lineage is stale, or ``None`` (none is).
        lineages: each lineage with a snapshot, in name order.
        unreachable: targets that could not be listed, with the error.
        prune_lock: the prune lock's holder, when a prune holds (or left) the lock.
        pending_chunks: chunks marked for deletion by a prune, deleted by a later one once
            their grace period has passed.
        object_lock: per target name, whether its bucket has Object Lock (``None``: could not
            be asked).
    """

    now: datetime
    max_age: timedelta | None
    lineages: tuple[LineageStatus, ...]
    unreachable: Mapping[str, BaseException] = attrs.field(factory=dict)
    prune_lock: LockInfo | None = None
    pending_chunks: int = 0
    object_lock: Mapping[str, bool | None] = attrs.field(factory=dict)

    @property
    def stale(self) -> tuple[str, ...]:
        """The lineages whose newest snapshot is older than ``max_age``."""
        return tuple(item.lineage for item in self.lineages if item.stale)

    @property
    def lagging(self) -> dict[str, tuple[str, ...]]:
        """Per lineage with a lagging target, those targets."""
        return {item.lineage: item.lagging for item in self.lineages if item.lagging}

    @property
    def ok(self) -> bool:
        """No lineage is stale, no target lags and every target could be listed."""
        return not (self.stale or self.lagging or self.unreachable)


def lineage_status(
    listed: Sequence[SnapshotInfo],
    held: Mapping[str, set[str]],
    *,
    now: datetime,
    max_age: timedelta | None,
    lineages: Iterable[str] | None = None,
) -> tuple[LineageStatus, ...]:
    """Describe each lineage from the repository's snapshots and what each target holds.

    Args:
        listed: the repository's snapshots (`Vault.snapshots`).
        held: per reachable target name, the snapshot object names it holds.
        now: the moment ages are measured from (aware).
        max_age: the age over which a lineage is stale, or ``None``.
        lineages: only these lineages (a lineage asked for that has no snapshot is left out;
            the caller decides what that means).

    Returns:
        One status per lineage with a snapshot, in name order.
    """
    wanted = None if lineages is None else set(lineages)
    by_lineage: dict[str, list[SnapshotInfo]] = {}
    for info in listed:
        if wanted is None or info.lineage in wanted:
            by_lineage.setdefault(info.lineage, []).append(info)
    found: list[LineageStatus] = []
    for lineage, infos in sorted(by_lineage.items()):
        infos.sort(key=lambda info: (info.created, info.name), reverse=True)
        newest = infos[0]
        on_targets: dict[str, datetime | None] = {}
        for name, names in sorted(held.items()):
            mine = [info.created for info in infos if info.name in names]
            on_targets[name] = max(mine) if mine else None
        lagging = tuple(
            name for name, when in on_targets.items() if when is None or when < newest.created
        )
        age = now - newest.created
        found.append(
            LineageStatus(
                lineage=lineage,
                newest=newest,
                age=age,
                on_targets=on_targets,
                lagging=lagging,
                stale=max_age is not None and age > max_age,
                snapshots=len(infos),
            )
        )
    return tuple(found)


def object_lock_of(targets: Iterable[Target]) -> dict[str, bool | None]:
    """Per target, whether its bucket has Object Lock (``None`` when it could not be asked)."""
    found: dict[str, bool | None] = {}
    for target in targets:
        try:
            found[target.name] = target.object_lock()
        except StorageError:
            found[target.name] = None
    return found
