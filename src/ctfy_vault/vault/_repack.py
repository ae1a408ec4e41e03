"""Prune's sweep for format 2: delete dead packs, repack packs whose live share fell low.

Packs are immutable, so a chunk in a pack is not deleted on its own: the pack holding it is
either kept whole, deleted whole, or *repacked* (its chunks still needed are copied into new
packs and the old pack is deleted). Every chunk no remaining manifest names is *dead*; it is
marked exactly as format 1 marks an unreferenced chunk (`ctfy_vault.vault._marks`), and it is
*ripe* once marked at least ``grace`` ago. Per pack, over the union of every target's index
objects:

- every chunk dead and ripe: the pack is deleted;
- some chunk dead and ripe, and the bytes still needed (live chunks, and dead chunks still in
  their grace period) below ``repack_below`` of the pack's chunk bytes: the pack is repacked;
- otherwise it is kept (its ripe dead chunks stay, still marked, until the share falls).

The plan is made once for all targets, each new pack is built once and the same bytes go to
every target that held the packs it replaces (grouped by the set of targets holding them), and
targets whose resulting index records are the same get the same index objects: in a healthy
repository every target keeps the same pack and index names.

The steps are ordered so that at every moment each live chunk is listed by an index object in a
pack that exists:

1. write the new packs (create-only);
2. write new index objects listing every record of the index objects being replaced (those
   listing a pack that goes), minus the packs that go and minus records an index object that
   stays already lists, plus the new packs;
3. delete the replaced index objects;
4. delete the repacked and dead packs, and loose packs marked at least ``grace`` ago.

A crash after step 1 leaves loose packs (marked and deleted by a later prune); after step 2,
index objects listing the same chunks twice (merged by every reader; the next prune finds the
old packs' chunks already in the new packs, so it copies nothing and just deletes them); after
step 3, packs no index object lists (loose, deleted after ``grace``). A *loose* pack, one listed
under ``packs/`` that no index object lists, may belong to a backup still running (it indexes its
packs as it goes), so it is marked and deleted only when still loose ``grace`` later; none is
deleted while an index object opens on no target (it may list the pack).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final, Protocol

import attrs

from ctfy_vault.crypto import SealedChunk, Sealer
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
)
from ctfy_vault.repository import Failures, Replicas
from ctfy_vault.repository._index import (
    IndexBuilder,
    IndexedPack,
    IndexObject,
    MergedIndex,
    decode_index,
)
from ctfy_vault.repository._layout import index_key, pack_key
from ctfy_vault.repository._packs import (
    TRAILER_SIZE,
    PackBuilder,
    PackEntry,
    header_size,
    open_chunk_from_pack,
    padme,
)
from ctfy_vault.repository._store import list_index_ids, list_pack_ids
from ctfy_vault.storage import Target
from ctfy_vault.vault._locks import HeldBack
from ctfy_vault.vault._marks import Marks, delete_marks, read_marks, write_mark

__all__ = ["DEFAULT_REPACK_BELOW", "SweepResult", "SweepRun", "check_repack_below", "sweep_packs"]

log = logging.getLogger("ctfy_vault.vault")

#: A pack is repacked once the bytes still needed fall below this share of its chunk bytes.
#:
#: At 0.8 a pack is rewritten once a fifth of it is garbage: at most 20% of any pack (about 10%
#: on average, as packs decay from 0% to 20% before each rewrite) is unused space, and each
#: rewrite moves at most 4 bytes (read once, written to every target) per byte it frees. restic
#: keeps up to 5% unused repository-wide by default, but reaching that bound per pack would move
#: up to 19 bytes per byte freed, and a cloud target bills every byte read back; 0.8 trades a
#: little more stored garbage for far less traffic. ``0`` never repacks (only wholly dead packs
#: are deleted), ``1`` repacks every pack holding a ripe dead chunk.
DEFAULT_REPACK_BELOW: Final = 0.8


def check_repack_below(value: object) -> float:
    """Check a ``repack_below`` threshold.

    Returns:
        The threshold as a float.

    Raises:
        ConfigurationError: not a number from 0 to 1 (the message names the value).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ConfigurationError(
            "repack_below must be a number from 0 to 1 (the live share of a pack's bytes below "
            f"which prune repacks it), not {value!r}"
        )
    return float(value)


class SweepRun(Protocol):
    """What the sweep needs of a prune run."""

    @property
    def targets(self) -> tuple[Target, ...]:
        """The reachable, non-degraded targets."""
        ...

    @property
    def sealer(self) -> Sealer:
        """The repository's sealer."""
        ...

    @property
    def failures(self) -> Failures:
        """Where a target's failure is recorded; a failed target is left alone from then on."""
        ...

    @property
    def dry_run(self) -> bool:
        """Plan and count only."""
        ...

    def now(self) -> datetime:
        """The current time (aware)."""
        ...

    @property
    def held(self) -> HeldBack:
        """What is left because it is still under Object Lock."""
        ...

    def check_lock(self) -> None:
        """Raise `LockError` once the prune lock has expired."""
        ...


@attrs.frozen(kw_only=True)
class SweepResult:
    """What a sweep did (see `PruneReport` for each count's meaning)."""

    chunks_deleted: int = 0
    bytes_deleted: int = 0
    chunks_pending: int = 0
    chunks_unused: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    bytes_repacked: int = 0
    packs_pending: int = 0
    skipped: str | None = None


# -- what the targets hold ---------------------------------------------------------------------


@attrs.frozen
class _Holdings:
    """Every target's packs and index objects, and the records of every index object that opened.

    Attributes:
        listed: per target, the pack ids under ``packs/``.
        indexes: per target, its index objects that opened (on it or on another target).
        index_packs: per index object that opened, the packs it lists.
        records: every pack some index object lists, with its record.
        unreadable: index objects listed somewhere that opened on no target.
        indexed: per target, the packs its index objects list.
    """

    listed: dict[str, frozenset[bytes]]
    indexes: dict[str, frozenset[bytes]]
    index_packs: dict[bytes, frozenset[bytes]]
    records: dict[bytes, IndexedPack]
    unreadable: frozenset[bytes]
    indexed: dict[str, frozenset[bytes]]

    def holders(self, pack_id: bytes) -> frozenset[str]:
        """The targets listing the pack under ``packs/``."""
        return frozenset(name for name, packs in self.listed.items() if pack_id in packs)

    def loose(self) -> frozenset[bytes]:
        """Packs some target lists that no index object which opened lists."""
        every = frozenset[bytes]().union(*self.listed.values())
        return every - self.records.keys()


def _load(run: SweepRun) -> _Holdings | str:
    """List every target and read each index object once; a reason to skip, or the holdings."""
    listed: dict[str, frozenset[bytes]] = {}
    index_listed: dict[str, set[bytes]] = {}
    for target in run.targets:
        try:
            listed[target.name] = frozenset(list_pack_ids(target))
            index_listed[target.name] = list_index_ids(target)
        except StorageError as err:
            run.failures.fail(target, err)
            return f"{target.name} could not be listed; no chunk was deleted"
    index_packs: dict[bytes, frozenset[bytes]] = {}
    records: dict[bytes, IndexedPack] = {}
    unreadable: set[bytes] = set()
    for index_id in sorted(set().union(*index_listed.values())):
        opened = _open_index(run, index_id, index_listed)
        if opened is None:
            unreadable.add(index_id)
            continue
        index_packs[index_id] = frozenset(record.pack_id for record in opened)
        for record in opened:
            if records.setdefault(record.pack_id, record) != record:
                return (
                    f"index objects disagree on pack {record.pack_id.hex()}; no chunk was "
                    "deleted (verify the repository)"
                )
    indexes = {name: frozenset(ids & index_packs.keys()) for name, ids in index_listed.items()}
    indexed = {
        name: frozenset[bytes]().union(*(index_packs[i] for i in ids))
        for name, ids in indexes.items()
    }
    return _Holdings(
        listed=listed,
        indexes=indexes,
        index_packs=index_packs,
        records=records,
        unreadable=frozenset(unreadable),
        indexed=indexed,
    )


def _open_index(
    run: SweepRun, index_id: bytes, index_listed: dict[str, set[bytes]]
) -> tuple[IndexedPack, ...] | None:
    """Decode an index object from the first target that gives it intact, or ``None``."""
    for target in run.targets:
        if index_id not in index_listed[target.name]:
            continue
        try:
            return decode_index(run.sealer, index_id, target.read(index_key(index_id)))
        except (StorageError, IntegrityError, FormatError) as err:
            log.warning("index object %s on %s not read: %s", index_id.hex(), target.name, err)
    return None


# -- the plan ----------------------------------------------------------------------------------


@attrs.frozen
class _Plan:
    """What the sweep will do, decided once for every target."""

    delete: frozenset[bytes]
    repack: tuple[bytes, ...]
    dead: frozenset[bytes]
    pending: frozenset[bytes]
    unused: frozenset[bytes]
    dropped: dict[bytes, frozenset[bytes]]  # pack that goes -> its ripe dead chunks
    loose_ripe: frozenset[bytes]
    loose_pending: frozenset[bytes]
    copies: tuple[tuple[frozenset[str], tuple[tuple[bytes, tuple[PackEntry, ...]], ...]], ...]


def _plan(
    holdings: _Holdings,
    merged: MergedIndex,
    referenced: set[bytes],
    marks: Marks,
    *,
    now: datetime,
    grace: timedelta,
    repack_below: float,
    locked: Callable[[bytes], bool] = lambda _pack: False,
) -> _Plan:
    def ripe(mark: tuple[datetime, str] | None) -> bool:
        return grace == timedelta(0) or (mark is not None and mark[0] <= now - grace)

    dead: set[bytes] = set()
    pending: set[bytes] = set()
    unused: set[bytes] = set()
    delete: set[bytes] = set()
    repack: list[bytes] = []
    dropped: dict[bytes, frozenset[bytes]] = {}
    for pack_id, record in sorted(holdings.records.items()):
        if not holdings.holders(pack_id):
            continue  # listed, held nowhere reachable: nothing to delete, its record stays
        keep = total = 0
        ripe_dead: set[bytes] = set()
        for entry in record.entries:
            total += entry.length
            chunk = entry.chunk_id
            if chunk in referenced:
                keep += entry.length
                continue
            dead.add(chunk)
            if ripe(marks.chunks.get(chunk)):
                ripe_dead.add(chunk)
            else:
                keep += entry.length
                pending.add(chunk)
        if not ripe_dead:
            continue
        # A pack still under Object Lock is neither deleted nor rewritten (a copy would be
        # paid for twice until the lock ends); its dead chunks stay marked until then.
        if (keep and keep >= repack_below * total) or locked(pack_id):
            unused |= ripe_dead
            continue
        if keep == 0:
            delete.add(pack_id)
        else:
            repack.append(pack_id)
        dropped[pack_id] = frozenset(ripe_dead)
    loose = holdings.loose()
    if holdings.unreadable:
        log.warning(
            "%d index objects open on no target: no loose pack is deleted", len(holdings.unreadable)
        )
        loose_ripe: set[bytes] = set()
    else:
        loose_ripe = {pack for pack in loose if ripe(marks.packs.get(pack))}
    keep_chunk = referenced | pending
    return _Plan(
        delete=frozenset(delete),
        repack=tuple(repack),
        dead=frozenset(dead),
        pending=frozenset(pending),
        unused=frozenset(unused),
        dropped=dropped,
        loose_ripe=frozenset(loose_ripe),
        loose_pending=frozenset(loose - loose_ripe),
        copies=_copies(holdings, merged, keep_chunk, delete | set(repack), repack),
    )


def _copies(
    holdings: _Holdings,
    merged: MergedIndex,
    keep_chunk: set[bytes],
    going: set[bytes],
    repack: Sequence[bytes],
) -> tuple[tuple[frozenset[str], tuple[tuple[bytes, tuple[PackEntry, ...]], ...]], ...]:
    """Group the packs to repack by the targets holding them; per pack, the chunks to copy.

    A chunk is copied once per group, and not at all when a pack that stays is held on every
    target of the group and listed by some index object (a crash between writing an index and
    deleting the old one leaves exactly that; step 2 lists it on each target of the group).
    """
    groups: dict[frozenset[str], list[bytes]] = {}
    for pack_id in repack:
        groups.setdefault(holdings.holders(pack_id), []).append(pack_id)
    result = []
    for group, packs in sorted(groups.items(), key=lambda item: sorted(item[0])):
        seen: set[bytes] = set()
        per_pack = []
        for pack_id in packs:
            entries: list[PackEntry] = []
            for entry in holdings.records[pack_id].entries:
                chunk = entry.chunk_id
                if chunk not in keep_chunk or chunk in seen:
                    continue
                seen.add(chunk)
                if not _held_elsewhere(holdings, merged, chunk, going, group):
                    entries.append(entry)
            per_pack.append((pack_id, tuple(entries)))
        result.append((group, tuple(per_pack)))
    return tuple(result)


def _held_elsewhere(
    holdings: _Holdings,
    merged: MergedIndex,
    chunk: bytes,
    going: set[bytes],
    group: frozenset[str],
) -> bool:
    for location in merged.locations(chunk):
        other = location.pack_id
        if other in going:
            continue
        if all(other in holdings.listed[name] for name in group):
            return True
    return False


# -- the sweep ---------------------------------------------------------------------------------


@attrs.define
class _Counts:
    packs_written: int = 0
    bytes_repacked: int = 0
    bytes_deleted: int = 0
    deleted: set[bytes] = attrs.field(factory=set)  # packs deleted on at least one target


def sweep_packs(
    run: SweepRun,
    referenced: set[bytes],
    *,
    grace: timedelta,
    repack_below: float,
    pack_size: int,
) -> SweepResult:
    """Sweep a format 2 repository's packs (see this module's docstring for the order).

    Args:
        run: the prune run (targets, sealer, failures, lock, clock).
        referenced: every chunk a remaining manifest names.
        grace: how long a dead chunk or a loose pack stays marked before it goes.
        repack_below: the live share of a pack's chunk bytes below which it is repacked.
        pack_size: the target size of the new packs.

    Returns:
        What was (or, for a dry run, would be) done.
    """
    loaded = _load(run)
    if isinstance(loaded, str):
        return SweepResult(skipped=loaded)
    holdings = loaded
    merged = MergedIndex.merge([holdings.records.values()])
    marks = read_marks(run.targets, run.failures)
    now = run.now()
    plan = _plan(
        holdings,
        merged,
        referenced,
        marks,
        now=now,
        grace=grace,
        repack_below=repack_below,
        locked=lambda pack_id: _locked(run, holdings, pack_id),
    )
    if run.dry_run:
        return _estimate(plan, pack_size)
    failed_before = len(run.failures.errors())
    run.check_lock()
    new_chunks = sorted(plan.pending - marks.chunks.keys())
    new_packs = sorted(plan.loose_pending - marks.packs.keys())
    if new_chunks or new_packs:
        write_mark(run.targets, run.failures, now, new_chunks, new_packs)
    counts = _Counts()
    written, repacked = _write_packs(
        run, holdings, merged, plan, pack_size=pack_size, counts=counts
    )
    going = plan.delete | repacked
    replaced = _write_indexes(run, holdings, going, written)
    run.check_lock()
    _delete_indexes(run, replaced)
    _delete_packs(run, holdings, going, plan.loose_ripe, counts)
    gone_chunks = {
        chunk for pack in counts.deleted & plan.dropped.keys() for chunk in plan.dropped[pack]
    }
    if len(run.failures.errors()) == failed_before:
        still_loose = plan.loose_pending | (plan.loose_ripe - counts.deleted)
        delete_marks(run.targets, run.failures, marks.spent(plan.dead - gone_chunks, still_loose))
    return SweepResult(
        chunks_deleted=len(gone_chunks - plan.unused),
        bytes_deleted=counts.bytes_deleted,
        chunks_pending=len(plan.pending),
        chunks_unused=len(plan.unused),
        packs_deleted=len(counts.deleted & (plan.delete | plan.loose_ripe)),
        packs_repacked=len(counts.deleted & repacked),
        packs_written=counts.packs_written,
        bytes_repacked=counts.bytes_repacked,
        packs_pending=len(plan.loose_pending),
    )


def _locked(run: SweepRun, holdings: _Holdings, pack_id: bytes) -> bool:
    """Whether a pack is still under Object Lock on a target holding it (each one is asked)."""
    found = False
    for target in run.targets:
        if target.name in holdings.holders(pack_id):
            try:
                found = run.held.locked(target, pack_key(pack_id)) or found
            except StorageError as err:
                run.failures.fail(target, err)
                found = True  # unknown: left alone
    return found


def _estimate(plan: _Plan, pack_size: int) -> SweepResult:
    """A dry run's counts: what would go, and the new packs the copies would make."""
    packs = 0
    size = 0
    for group, per_pack in plan.copies:
        lengths = [entry.length for _pack, entries in per_pack for entry in entries]
        for stored in _pack_sizes(lengths, pack_size):
            packs += 1
            size += stored * len(group)
    gone = {chunk for chunks in plan.dropped.values() for chunk in chunks}
    return SweepResult(
        chunks_deleted=len(gone - plan.unused),
        chunks_pending=len(plan.pending),
        chunks_unused=len(plan.unused),
        packs_deleted=len(plan.delete | plan.loose_ripe),
        packs_repacked=len(plan.repack),
        packs_written=packs,
        bytes_repacked=size,
        packs_pending=len(plan.loose_pending),
    )


def _pack_sizes(lengths: Iterable[int], target_size: int) -> list[int]:
    """The stored sizes of the packs `PackBuilder` makes of sealed chunks of these lengths."""
    sizes: list[int] = []
    body = count = 0
    for length in lengths:
        body += length
        count += 1
        unpadded = body + header_size(count) + TRAILER_SIZE
        if unpadded >= target_size:
            sizes.append(padme(unpadded))
            body = count = 0
    if count:
        sizes.append(padme(body + header_size(count) + TRAILER_SIZE))
    return sizes


def _live(run: SweepRun, names: Iterable[str]) -> list[Target]:
    """The run's targets named in ``names`` that have not failed, in order."""
    wanted = set(names)
    return [t for t in run.failures.live(run.targets) if t.name in wanted]


def _write_packs(
    run: SweepRun,
    holdings: _Holdings,
    merged: MergedIndex,
    plan: _Plan,
    *,
    pack_size: int,
    counts: _Counts,
) -> tuple[dict[str, list[IndexedPack]], set[bytes]]:
    """Step 1: copy the chunks to keep into new packs, each written once to its whole group.

    Returns:
        Per target, the records of the new packs it received; and the packs whose chunks were
        all copied (a pack with a chunk that no target gives intact is kept, and its first
        holder reports the damage).
    """
    records: dict[str, list[IndexedPack]] = {}
    repacked: set[bytes] = set()
    for group, per_pack in plan.copies:
        builder = PackBuilder(sealer=run.sealer, target_size=pack_size)

        def flush(builder: PackBuilder = builder, group: frozenset[str] = group) -> None:
            pack = builder.finish()
            targets = _live(run, group)
            outcome = Replicas(targets).write(pack_key(pack.id), bytes(pack.blob), exists_ok=True)
            for name, err in outcome.failed.items():
                run.failures.fail(name, err)
            for name in outcome.results:
                records.setdefault(name, []).append(IndexedPack.of(pack))
                counts.bytes_repacked += pack.size
            counts.packs_written += bool(outcome.results)

        for pack_id, entries in per_pack:
            chunks = _read_chunks(run, holdings, merged, pack_id, entries)
            if chunks is None:
                continue
            for chunk in chunks:
                if not builder.add(chunk):
                    flush()
            repacked.add(pack_id)
        if builder.count:
            flush()
    return records, repacked


def _read_chunks(
    run: SweepRun,
    holdings: _Holdings,
    merged: MergedIndex,
    pack_id: bytes,
    entries: Sequence[PackEntry],
) -> list[SealedChunk] | None:
    """Read the sealed chunks to copy out of a pack, each authenticated; ``None`` if one fails."""
    chunks: list[SealedChunk] = []
    for entry in entries:
        blob = _read_sealed(run, holdings, merged, pack_id, entry)
        if blob is None:
            holder = next(t for t in run.targets if t.name in holdings.holders(pack_id))
            run.failures.fail(
                holder,
                IntegrityError(
                    f"chunk {entry.chunk_id.hex()} of pack {pack_id.hex()} could not be read "
                    "intact from any target; the pack was kept (verify the repository)"
                ),
            )
            return None
        chunks.append(SealedChunk(id=entry.chunk_id, blob=blob))
    return chunks


def _read_sealed(
    run: SweepRun,
    holdings: _Holdings,
    merged: MergedIndex,
    pack_id: bytes,
    entry: PackEntry,
) -> bytearray | None:
    """Read one sealed chunk by range: from its pack on each holder, then from its other packs."""
    places = [(pack_id, entry)] + [
        (where.pack_id, where.entry)
        for where in merged.locations(entry.chunk_id)
        if where.pack_id != pack_id
    ]
    for place, at in places:
        for target in run.targets:
            if place not in holdings.listed[target.name]:
                continue
            try:
                data = target.read_range(pack_key(place), at.offset, at.end)
                if len(data) != at.length:
                    raise IntegrityError("the range ended early")
                open_chunk_from_pack(run.sealer, at.chunk_id, data)
            except (StorageError, IntegrityError, FormatError) as err:
                log.warning(
                    "chunk %s of pack %s on %s not read: %s",
                    at.chunk_id.hex(),
                    place.hex(),
                    target.name,
                    err,
                )
                continue
            return bytearray(data)
    return None


def _encode_indexes(sealer: Sealer, records: Iterable[IndexedPack]) -> list[IndexObject]:
    """Encode records into as few index objects as keep each chunk id once per object."""
    builders: list[IndexBuilder] = []
    for record in sorted(records, key=lambda r: r.pack_id):
        for builder in builders:
            try:
                builder.add(record)
                break
            except ConfigurationError:
                continue
        else:
            builder = IndexBuilder()
            builder.add(record)
            builders.append(builder)
    return [builder.finish(sealer) for builder in builders]


def _write_indexes(
    run: SweepRun,
    holdings: _Holdings,
    going: frozenset[bytes] | set[bytes],
    received: dict[str, list[IndexedPack]],
) -> dict[str, frozenset[bytes]]:
    """Step 2: write each target's replacement index objects (the same bytes to equal targets).

    Normally only the index objects listing a pack that goes are replaced. When the targets'
    index objects differ (a crash between targets, a backup that reached only some), every
    index object is replaced, so that targets holding the same packs end with the same names.

    Returns:
        Per target that wrote what it needed, the index objects it may now delete.
    """
    live = run.failures.live(run.targets)
    diverged = len({holdings.indexes[t.name] for t in live}) > 1
    plans: dict[str, tuple[frozenset[bytes], tuple[IndexedPack, ...]]] = {}
    for target in live:
        mine = holdings.indexes[target.name]
        affected = frozenset(i for i in mine if holdings.index_packs[i] & going)
        replaced = mine if diverged else affected
        new = received.get(target.name, [])
        # Packs it holds that only other targets' index objects list (a crash between two
        # targets' index writes leaves them): listed here too, so the targets converge.
        adopted = (holdings.listed[target.name] & holdings.records.keys()) - holdings.indexed[
            target.name
        ]
        if not replaced and not new and not (diverged and adopted):
            continue
        staying = frozenset[bytes]().union(*(holdings.index_packs[i] for i in mine - replaced))
        kept = frozenset[bytes]().union(*(holdings.index_packs[i] for i in replaced))
        kept = (kept | adopted) - going - staying
        records = tuple(
            sorted([holdings.records[p] for p in kept] + list(new), key=lambda r: r.pack_id)
        )
        plans[target.name] = (replaced, records)
    groups: dict[tuple[bytes, ...], list[str]] = {}
    for name, (_replaced, records) in plans.items():
        groups.setdefault(tuple(r.pack_id for r in records), []).append(name)
    for names in groups.values():
        records = plans[names[0]][1]
        if not records:
            continue
        for index in _encode_indexes(run.sealer, records):
            outcome = Replicas(_live(run, names)).write(
                index_key(index.id), bytes(index.blob), exists_ok=True
            )
            for name, err in outcome.failed.items():
                run.failures.fail(name, err)
    return {name: plans[name][0] for name in plans if name not in run.failures}


def _delete_indexes(run: SweepRun, replaced: dict[str, frozenset[bytes]]) -> None:
    """Step 3: delete the replaced index objects (a target that fails one deletes no pack)."""
    for target in _live(run, replaced):
        for index_id in sorted(replaced[target.name]):
            try:
                target.delete(index_key(index_id))
            except StorageError as err:
                run.failures.fail(target, err)
                break


def _delete_packs(
    run: SweepRun,
    holdings: _Holdings,
    going: frozenset[bytes] | set[bytes],
    loose: frozenset[bytes],
    counts: _Counts,
) -> None:
    """Step 4: delete the repacked and dead packs and the ripe loose ones."""
    for target in run.failures.live(run.targets):
        held = holdings.listed[target.name]
        for pack_id in sorted((going | loose) & held):
            run.check_lock()
            key = pack_key(pack_id)
            try:
                if run.held.locked(target, key):
                    continue
                record = holdings.records.get(pack_id)
                size = target.size(key) if record is None else record.size
                target.delete(key)
            except ObjectNotFoundError:
                continue
            except StorageError as err:
                run.failures.fail(target, err)
                break
            counts.bytes_deleted += size
            counts.deleted.add(pack_id)
