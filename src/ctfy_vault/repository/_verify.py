"""Checking a repository: structure per target, the hash chain, agreement, and optionally data."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError, StorageError
from ctfy_vault.manifest import Manifest, OpenedEntry, PruneRecord, open_entry, verify_chain
from ctfy_vault.repository._heads import KnownHeads, LineageHead
from ctfy_vault.repository._heal import judge_copies, well_formed
from ctfy_vault.repository._index import MergedIndex
from ctfy_vault.repository._layout import (
    KeyKind,
    chunk_id_of,
    chunk_key,
    in_lock_area,
    index_key,
    kind_of,
    pack_id_of,
    pack_key,
    snapshot_key,
    snapshot_name_of,
)
from ctfy_vault.repository._packs import PackEntry, check_pack
from ctfy_vault.repository._reports import Problem, VerifyReport
from ctfy_vault.repository._store import PackedTarget, load_packed
from ctfy_vault.storage import Target

__all__ = ["verify_targets"]

_STRAY = (
    "not an object this repository writes: backup, prune, restore and heal ignore it "
    "(heal --repair moves it to quarantine/)"
)
_SET_ASIDE = "moved aside by heal --repair: inspect it, then delete it"
_LOOSE = (
    "no index object lists it: heal indexes it; prune deletes it after the grace period when "
    "no snapshot needs it"
)
_UNLISTED = (
    "an index object lists it but this target lacks it, and no manifest here needs it "
    "(heal copies it from a target that holds it)"
)
#: The most groups `ReadSubset` divides the data into: a group is chosen by the first byte of
#: an id, so 256 groups are one per byte value (restic's limit too).
MAX_SUBSET_GROUPS: Final = 256


@attrs.frozen
class ReadSubset:
    """Group ``group`` of ``groups`` of the data, for a check that reads it all over ``groups`` runs.

    restic's ``--read-data-subset=n/t``: a pack (format 1: a chunk object) is in group ``n``
    when the first byte of its id modulo ``t`` is ``n - 1``. Ids are uniformly random, so the
    groups are about equal; every object is in exactly one group, and the same group always
    holds the same objects, so running groups 1 to ``t`` in turn (one a night) reads every
    object once.

    Attributes:
        group: which group, from 1 to ``groups``.
        groups: how many groups, from 1 to `MAX_SUBSET_GROUPS`.
    """

    group: int
    groups: int

    def __attrs_post_init__(self) -> None:
        for value in (self.group, self.groups):
            if type(value) is not int:
                raise ConfigurationError("a read subset is two whole numbers: n/t")
        if not 1 <= self.groups <= MAX_SUBSET_GROUPS:
            raise ConfigurationError(
                f"a read subset has 1 to {MAX_SUBSET_GROUPS} groups, not {self.groups}"
            )
        if not 1 <= self.group <= self.groups:
            raise ConfigurationError(
                f"read subset {self.group}/{self.groups}: the group is from 1 to {self.groups}"
            )

    def holds(self, object_id: bytes) -> bool:
        """Whether the object with this id is in the group."""
        return bool(object_id) and object_id[0] % self.groups == self.group - 1

    def __str__(self) -> str:
        return f"{self.group}/{self.groups}"


ReadData = bool | float | ReadSubset


def _fraction(read_data: ReadData) -> float:
    if isinstance(read_data, ReadSubset):
        return 1.0
    if isinstance(read_data, bool):
        return 1.0 if read_data else 0.0
    if not 0.0 <= read_data <= 1.0:
        raise ValueError("read_data is False, True, a fraction from 0 to 1, or a ReadSubset")
    return float(read_data)


def verify_targets(
    targets: Sequence[Target],
    sealer: Sealer,
    *,
    read_data: ReadData = False,
    rng: random.Random | None = None,
    known_heads: KnownHeads | None = None,
    packed: bool = False,
    forgotten: frozenset[str] | Mapping[str, frozenset[str]] = frozenset(),
) -> VerifyReport:
    """Check every target of a repository (see `Vault.verify`).

    ``packed`` says the repository is format 2: a target holds a chunk when one of its index
    objects that opens lists it in a pack the target holds, and ``read_data`` reads whole packs.
    ``forgotten`` are snapshot keys a prune record forgot, for every target or per target
    name: a target where one is forgotten is not lacking it when another still holds it (under
    Object Lock, or by per-target retention). A snapshot a record forgot on some targets only
    and that no target holds any more is ``lost`` on each target that should still hold it.
    """
    forgotten_on = (
        dict.fromkeys((t.name for t in targets), forgotten)
        if isinstance(forgotten, frozenset)
        else forgotten
    )
    fraction = _fraction(read_data)
    known = known_heads.hashes() if known_heads is not None else {}
    problems: list[Problem] = []
    listings: dict[str, set[str]] = {}
    for target in targets:
        try:
            listed = {k for k in target.list("") if not in_lock_area(k)}
        except StorageError as err:
            problems.append(
                Problem(kind="unreachable", target=target.name, key=None, detail=str(err))
            )
            continue
        listings[target.name] = {
            k for k in listed if kind_of(k) not in (KeyKind.QUARANTINED, KeyKind.STRAY)
        }
        problems.extend(_strays(target.name, listed - listings[target.name]))
    stores: dict[str, PackedTarget] = {}
    if packed:
        problems.extend(_load_stores(targets, sealer, listings, stores))
    entries: dict[str, OpenedEntry] = {}
    failures: list[tuple[str, str, BaseException]] = []
    for target in targets:
        keys = listings.get(target.name)
        if keys is None:
            continue
        holds = _Holdings(keys, stores.get(target.name), packed=packed)
        problems.extend(
            _structure(target, sealer, keys, holds=holds, entries=entries, failures=failures)
        )
    unopened = {key for _target, key, _err in failures} - {snapshot_key(name) for name in entries}
    unopened |= _index_opening_nowhere(stores)
    problems.extend(_manifest_problems(failures, listings, unopened))
    problems.extend(_key_slots(targets, listings))
    every = set().union(*listings.values()) if listings else set()
    # A pack no index object lists on any target holding it (a backup stopped before its index
    # object) is loose data, reported as loose-pack where it is; another target need not hold it.
    loose = {pack_key(pack_id) for store in stores.values() for pack_id in store.loose_packs()}
    loose -= {
        pack_key(pack_id)
        for store in stores.values()
        for pack_id in store.packs - store.loose_packs()
    }
    for name, keys in sorted(listings.items()):
        # An object that opens nowhere is reported where it is; heal will not spread it.
        problems.extend(
            Problem(kind="lacking", target=name, key=key, detail="another target holds it")
            for key in sorted(every - keys - unopened - loose - forgotten_on.get(name, frozenset()))
        )
    problems.extend(_lost(entries, listings))
    chain = verify_chain(entries.values(), known_heads=known)
    for gap in chain.gaps:
        detail = f"lineage {gap.lineage}: {gap.referenced_by} names a missing predecessor"
        problems.append(Problem(kind="chain", target=None, key=None, detail=detail))
    for fork in chain.forks:
        detail = f"lineage {fork.lineage}: fork between {', '.join(fork.entries)}"
        problems.append(Problem(kind="chain", target=None, key=None, detail=detail))
    for rollback in chain.rollbacks:
        detail = f"lineage {rollback.lineage}: {rollback.reason}"
        head = known_heads.get(rollback.lineage) if known_heads is not None else None
        if head is not None and head.hash == rollback.expected:
            detail += f" (known head {head.name})"
        problems.append(Problem(kind="chain", target=None, key=None, detail=detail))
    chunks_read = 0
    if fraction > 0:
        sampler = rng or random.Random()  # noqa: S311 - sampling, not secrets
        subset = read_data if isinstance(read_data, ReadSubset) else None
        chunks_read, found = (
            _read_packs(
                targets, sealer, listings, stores, fraction=fraction, rng=sampler, subset=subset
            )
            if packed
            else _read_chunks(
                targets, sealer, listings, fraction=fraction, rng=sampler, subset=subset
            )
        )
        problems.extend(found)
    problems.sort(key=lambda p: (p.kind, p.target or "", p.key or "", p.detail))
    return VerifyReport(
        targets=tuple(target.name for target in targets),
        snapshots=len(
            {key for keys in listings.values() for key in keys if snapshot_name_of(key) is not None}
        ),
        chunks_read=chunks_read,
        chain=chain,
        problems=tuple(problems),
        heads=_current_heads(sealer.repo_id, chain.heads, entries),
    )


def _lost(entries: Mapping[str, OpenedEntry], listings: Mapping[str, set[str]]) -> list[Problem]:
    """Snapshots forgotten on some targets only, held by none: each other target lost it.

    A record that names its targets (per-target retention) leaves its snapshots to the others;
    when none of them holds one, it was deleted there without a record.
    """
    present = {opened.hash for opened in entries.values()}
    everywhere: set[bytes] = set()  # forgotten by an unscoped record: gone on purpose
    scope: dict[bytes, set[str]] = {}
    first: dict[bytes, tuple[str, str, str]] = {}  # lineage, snapshot id, first record's name
    for opened in entries.values():
        record = opened.entry
        if not isinstance(record, PruneRecord):
            continue
        for item in record.forgotten:
            if item.hash in present:
                continue
            first.setdefault(item.hash, (record.lineage, item.snapshot_id, opened.name))
            if record.targets is None:
                everywhere.add(item.hash)
            else:
                scope.setdefault(item.hash, set()).update(record.targets)
    problems: list[Problem] = []
    for digest, names in sorted(scope.items()):
        if digest in everywhere:
            continue
        lineage, snapshot_id, by = first[digest]
        for name in sorted(set(listings) - names):
            detail = (
                f"snapshot {snapshot_id} of lineage {lineage} is held by no target; "
                f"{by} forgot it on {', '.join(sorted(names))} only"
            )
            problems.append(Problem(kind="lost", target=name, key=None, detail=detail))
    return problems


def _current_heads(
    repo_id: bytes, tips: Sequence[tuple[str, bytes]], entries: dict[str, OpenedEntry]
) -> KnownHeads:
    """Each lineage's head: its newest tip (several only when the chain forked)."""
    by_hash = {opened.hash: opened for opened in entries.values()}
    newest: dict[str, OpenedEntry] = {}
    for lineage, digest in tips:
        opened = by_hash[digest]
        held = newest.get(lineage)
        if held is None or (opened.entry.created, opened.name) > (held.entry.created, held.name):
            newest[lineage] = opened
    return KnownHeads(
        repo_id=repo_id,
        heads=[
            LineageHead(lineage=lineage, name=opened.name, hash=opened.hash)
            for lineage, opened in newest.items()
        ],
    )


def _strays(target: str, keys: set[str]) -> list[Problem]:
    """Warn about quarantined objects and names that are no object of the repository."""
    return [
        Problem(
            kind="quarantined" if kind_of(key) is KeyKind.QUARANTINED else "unexpected",
            target=target,
            key=key,
            detail=_SET_ASIDE if kind_of(key) is KeyKind.QUARANTINED else _STRAY,
            severity="warning",
        )
        for key in sorted(keys)
    ]


def _load_stores(
    targets: Sequence[Target],
    sealer: Sealer,
    listings: Mapping[str, set[str]],
    stores: dict[str, PackedTarget],
) -> list[Problem]:
    """Load each listed format 2 target's index objects into ``stores``; report what is wrong.

    An index object that does not open is an ``index`` error (saying whether a good copy is on
    another target); a listed pack no index object lists is a ``loose-pack`` warning. Packs an
    index object lists that the target lacks are reported by `_structure` (``missing-chunk``)
    when a manifest needs them, and by `_unlisted_packs` otherwise. A target whose index objects
    cannot be loaded gets one problem, and its chunks are not checked.
    """
    problems: list[Problem] = []
    for target in targets:
        if target.name not in listings:
            continue
        try:
            stores[target.name] = load_packed(target, sealer)
        except StorageError as err:
            problems.append(
                Problem(kind="unreachable", target=target.name, key=None, detail=str(err))
            )
        except IntegrityError as err:
            problems.append(Problem(kind="index", target=target.name, key=None, detail=str(err)))
    for name, store in stores.items():
        for index_id, damage in sorted(store.damaged.items()):
            good = sorted(other for other, held in stores.items() if index_id in held.index_ids)
            if good:
                hint = f"a good copy is on {', '.join(good)}: heal --repair replaces this one"
            else:
                hint = (
                    "it opens on no target, so it lists nothing: heal indexes the packs only it "
                    "listed again; heal --repair moves it to quarantine/"
                )
            problems.append(
                Problem(
                    kind="index", target=name, key=index_key(index_id), detail=f"{damage}; {hint}"
                )
            )
        problems.extend(
            Problem(
                kind="loose-pack",
                target=name,
                key=pack_key(pack_id),
                detail=_LOOSE,
                severity="warning",
            )
            for pack_id in sorted(store.loose_packs())
        )
    return problems


def _index_opening_nowhere(stores: Mapping[str, PackedTarget]) -> set[str]:
    """The index keys that are damaged wherever they are loaded (heal will not spread them)."""
    opened = {index_id for store in stores.values() for index_id in store.index_ids}
    return {
        index_key(index_id)
        for store in stores.values()
        for index_id in store.damaged
        if index_id not in opened
    }


class _Holdings:
    """Whether one target holds a chunk, and which key to name when it does not."""

    def __init__(self, keys: set[str], store: PackedTarget | None, *, packed: bool) -> None:
        self._keys = keys
        self._store = store
        self._packed = packed
        self.needed_packs: set[bytes] = set()

    @property
    def known(self) -> bool:
        """Whether the target's chunks could be determined (format 2: its index loaded)."""
        return not self._packed or self._store is not None

    def missing(self, chunk_id: bytes) -> tuple[str, str | None] | None:
        """``None`` when the target holds the chunk, else ``(dedup key, problem key)``."""
        if not self._packed:
            key = chunk_key(chunk_id)
            return None if key in self._keys else (key, key)
        store = self._store
        assert store is not None  # noqa: S101 - only asked when known
        if chunk_id in store:
            return None
        absent = [
            location.pack_id
            for location in store.index.locations(chunk_id)
            if location.pack_id not in store.packs
        ]
        self.needed_packs.update(absent)
        return chunk_id.hex(), (pack_key(absent[0]) if absent else None)

    def unlisted(self) -> list[bytes]:
        """Format 2: packs an index object lists and the target lacks, that no manifest needs."""
        if self._store is None:
            return []
        return sorted(self._store.missing_packs() - self.needed_packs)


def _structure(
    target: Target,
    sealer: Sealer,
    keys: set[str],
    *,
    holds: _Holdings,
    entries: dict[str, OpenedEntry],
    failures: list[tuple[str, str, BaseException]],
) -> list[Problem]:
    """Open every manifest on one target and check that it holds every chunk each one names.

    A manifest that does not open is added to ``failures`` as ``(target, key, error)``. Format
    1 names a missing chunk by its key; format 2 by the pack an index object places it in when
    the target lacks that pack, else by no key (no index object on the target lists it).
    """
    problems: list[Problem] = []
    missing: dict[str, tuple[str | None, str]] = {}
    named = ((key, snapshot_name_of(key)) for key in sorted(keys))
    for key, name in named:
        if name is None:
            continue
        try:
            opened = open_entry(sealer, name, target.read(key))
        except (StorageError, IntegrityError, FormatError) as err:
            failures.append((target.name, key, err))
            continue
        entries.setdefault(name, opened)
        if isinstance(opened.entry, Manifest) and holds.known:
            for entry in opened.entry.files:
                for chunk_id in entry.chunks:
                    lacked = holds.missing(chunk_id)
                    if lacked is None or lacked[0] in missing:
                        continue
                    detail = f"named by {name} ({entry.path})"
                    if lacked[0] != lacked[1]:  # format 2: the key does not name the chunk
                        detail = f"chunk {chunk_id.hex()} {detail}"
                    missing[lacked[0]] = (lacked[1], detail)
    problems.extend(
        Problem(kind="missing-chunk", target=target.name, key=key, detail=detail)
        for key, detail in sorted(missing.values(), key=lambda kd: (kd[0] or "", kd[1]))
    )
    problems.extend(
        Problem(
            kind="missing-pack",
            target=target.name,
            key=pack_key(pack_id),
            detail=_UNLISTED,
            severity="warning",
        )
        for pack_id in holds.unlisted()
    )
    return problems


def _manifest_problems(
    failures: Sequence[tuple[str, str, BaseException]],
    listings: Mapping[str, set[str]],
    unopened: set[str],
) -> list[Problem]:
    """One ``manifest`` problem per copy that did not open, saying what the other copies show."""
    problems: list[Problem] = []
    failed = {(target, key) for target, key, _err in failures}
    for target, key, err in failures:
        if key in unopened:
            hint = (
                "it opens on no target, so it is no snapshot: backups chain past it (if it was "
                "one, it is lost); heal --repair moves it to quarantine/"
            )
        else:
            good = sorted(
                name for name, keys in listings.items() if key in keys and (name, key) not in failed
            )
            hint = f"a good copy is on {', '.join(good)}: heal --repair replaces this one"
        problems.append(Problem(kind="manifest", target=target, key=key, detail=f"{err}; {hint}"))
    return problems


def _key_slots(targets: Sequence[Target], listings: dict[str, set[str]]) -> list[Problem]:
    """Compare every key slot's copies across the targets (see `judge_copies`).

    A slot is opened by its user's passphrase or key, which verify does not hold, so a copy is
    judged by parsing it and by comparing it with the other targets' copies: a copy that does not
    parse, or differs from the copy a majority holds, is reported as ``key-slot``.
    """
    problems: list[Problem] = []
    slots = sorted(
        {k for keys in listings.values() for k in keys if kind_of(k) is KeyKind.KEY_SLOT}
    )
    for key in slots:
        copies: dict[str, bytes] = {}
        for target in targets:
            if key not in listings.get(target.name, set()):
                continue
            try:
                copies[target.name] = target.read(key)
            except StorageError as err:
                problems.append(
                    Problem(kind="key-slot", target=target.name, key=key, detail=str(err))
                )
        _good, damaged = judge_copies(copies, functools.partial(well_formed, key))
        problems.extend(
            Problem(kind="key-slot", target=name, key=key, detail=reason)
            for name, reason in sorted(damaged.items())
        )
    return problems


def _read_chunks(
    targets: Sequence[Target],
    sealer: Sealer,
    listings: dict[str, set[str]],
    *,
    fraction: float,
    rng: random.Random,
    subset: ReadSubset | None = None,
) -> tuple[int, list[Problem]]:
    """Re-read and authenticate a share of the chunk objects on every target holding them."""
    chunks = sorted({k for keys in listings.values() for k in keys if chunk_id_of(k) is not None})
    if subset is not None:
        chunks = [key for key in chunks if subset.holds(chunk_id_of(key) or b"")]
    chosen = _sample(chunks, fraction, rng)
    problems: list[Problem] = []
    read = 0
    for target in targets:
        keys = listings.get(target.name, set())
        for key in chosen:
            if key not in keys:
                continue
            chunk_id = chunk_id_of(key)
            assert chunk_id is not None  # noqa: S101 - chosen only among parsable keys
            read += 1
            try:
                sealer.open_chunk(chunk_id, target.read(key))
            except (IntegrityError, FormatError, StorageError) as err:
                problems.append(
                    Problem(kind="corrupt-chunk", target=target.name, key=key, detail=str(err))
                )
    return read, problems


def _sample(keys: list[str], fraction: float, rng: random.Random) -> list[str]:
    """The keys to read: all of them, or ``ceil(len * fraction)`` sampled with ``rng``, sorted."""
    count = len(keys) if fraction >= 1.0 else math.ceil(len(keys) * fraction)
    return keys if count == len(keys) else sorted(rng.sample(keys, count))


def _pack_records(index: MergedIndex, pack_ids: set[bytes]) -> dict[bytes, set[PackEntry]]:
    """What the merged index says each of ``pack_ids`` holds (one pass over the index)."""
    records: dict[bytes, set[PackEntry]] = {pack_id: set() for pack_id in pack_ids}
    for chunk_id in index.chunk_ids():
        for location in index.locations(chunk_id):
            held = records.get(location.pack_id)
            if held is not None:
                held.add(location.entry)
    return records


def _read_packs(
    targets: Sequence[Target],
    sealer: Sealer,
    listings: dict[str, set[str]],
    stores: Mapping[str, PackedTarget],
    *,
    fraction: float,
    rng: random.Random,
    subset: ReadSubset | None = None,
) -> tuple[int, list[Problem]]:
    """Re-read and check a share of the packs, whole, on every target holding them.

    A pack that fails `check_pack` is ``corrupt-pack``; one whose index records on that target
    (size, chunks, offsets, lengths) differ from its header is an ``index`` problem. Returns the
    chunks in the packs read (by the header, or the index when the pack fails) and the problems.
    """
    packs = sorted({k for keys in listings.values() for k in keys if pack_id_of(k) is not None})
    if subset is not None:
        packs = [key for key in packs if subset.holds(pack_id_of(key) or b"")]
    chosen = _sample(packs, fraction, rng)
    chosen_ids = {pack_id for key in chosen if (pack_id := pack_id_of(key)) is not None}
    problems: list[Problem] = []
    read = 0
    for target in targets:
        keys = listings.get(target.name, set())
        store = stores.get(target.name)
        records = _pack_records(store.index, chosen_ids) if store is not None else {}
        for key in chosen:
            if key not in keys:
                continue
            pack_id = pack_id_of(key)
            assert pack_id is not None  # noqa: S101 - chosen only among parsable keys
            listed = records.get(pack_id, set())
            try:
                header = check_pack(sealer, pack_id, target.read(key))
            except (IntegrityError, FormatError, StorageError) as err:
                read += len(listed)
                problems.append(
                    Problem(kind="corrupt-pack", target=target.name, key=key, detail=str(err))
                )
                continue
            read += len(header.entries)
            size = store.index.pack_size(pack_id) if store is not None else None
            if size is None:
                continue  # a loose pack: nothing to compare (reported as loose-pack)
            if size != header.size or listed != set(header.entries):
                problems.append(
                    Problem(
                        kind="index",
                        target=target.name,
                        key=key,
                        detail=(
                            "the index objects' records of this pack differ from its header "
                            "(its size or chunks): the pack is intact; an index object is not"
                        ),
                    )
                )
    return read, problems
