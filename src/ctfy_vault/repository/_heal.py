"""Heal: copy to each target the objects it lacks from a target that holds them, verified.

Heal also judges every copy of the small objects (config, key slots, manifests; chunks too with
``read_data``) and reports what it found and could not fix. With ``repair``, it replaces damaged
copies: a chunk or manifest whose copy fails authentication, or a config or key slot whose copy
loses the comparison with the other targets' copies (`judge_copies`), is deleted on that target
and written again, create-only, from a copy that passes. What no good copy proves damaged (a
stray name under ``objects/`` or ``snapshots/``, a snapshot object that opens on no target) is
never deleted outright: repair moves it to ``quarantine/<time>/<key>`` on its own target.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from ctfy_vault.crypto import Sealer
from ctfy_vault.crypto._slots import decode_slot
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    StorageError,
    TransientStorageError,
)
from ctfy_vault.manifest import Manifest, open_entry
from ctfy_vault.repository._index import IndexedPack, IndexObject, decode_index, encode_index
from ctfy_vault.repository._layout import (
    CONFIG_KEY,
    INDEX_PREFIX,
    KEYS_PREFIX,
    OBJECTS_PREFIX,
    PACKS_PREFIX,
    SNAPSHOTS_PREFIX,
    KeyKind,
    chunk_id_of,
    index_id_of,
    index_key,
    kind_of,
    pack_id_of,
    quarantine_key,
    slot_id_of,
    slot_key,
    unexpected_key,
)
from ctfy_vault.repository._packs import check_pack
from ctfy_vault.repository._replicas import Failures, Outcome, put
from ctfy_vault.repository._reports import HealOutcome, HealReport
from ctfy_vault.repository._store import PackedTarget, load_packed
from ctfy_vault.storage import Target

__all__ = ["heal", "judge_copies", "well_formed"]

log = logging.getLogger("ctfy_vault.repository")

# Manifests go last: each is the commit point for the chunks it names on its target.
_STAGES = (CONFIG_KEY, KEYS_PREFIX, OBJECTS_PREFIX, SNAPSHOTS_PREFIX)
# Format 2: packs, then the index objects that list them, then the manifests that need both.
_PACKED_STAGES = (
    CONFIG_KEY,
    KEYS_PREFIX,
    OBJECTS_PREFIX,
    PACKS_PREFIX,
    INDEX_PREFIX,
    SNAPSHOTS_PREFIX,
)
#: The data objects: judged only with ``read_data`` or ``repair`` (that reads all of them).
_DATA_STAGES = frozenset({OBJECTS_PREFIX, PACKS_PREFIX})
#: Packs judged or copied at once: each holds up to two whole packs in memory.
_PACK_WORKERS = 4
#: Sealed objects whose every copy may be damaged by someone without the keys: such a key is
#: no object of the repository (see `_Healer.judge`); their damaged copies are kept to compare.
_NO_OBJECT_WHEN_UNOPENED = frozenset({KeyKind.SNAPSHOT, KeyKind.INDEX})
_NO_OBJECT = {
    KeyKind.SNAPSHOT: (
        "a snapshot object that opens on no target (no snapshot: backups chain past it)"
    ),
    KeyKind.INDEX: (
        "an index object that opens on no target (it lists nothing: heal indexes the packs "
        "no other index object lists)"
    ),
}
#: The objects that are not sealed under the master keys: judged by comparing their copies.
_PLAINTEXT = frozenset({KeyKind.CONFIG, KeyKind.KEY_SLOT})


class _UnverifiableError(Exception):
    """A donor's copy failed its check (never raised to callers)."""


def _list(target: Target, stage: str) -> set[str]:
    if stage == CONFIG_KEY:
        return {CONFIG_KEY} if target.exists(CONFIG_KEY) else set()
    return set(target.list(stage))


def _verify(sealer: Sealer, key: str, blob: bytes) -> Manifest | None:
    """Check a donor's copy against its name; return the manifest it holds, if it is one."""
    kind = kind_of(key)
    try:
        if kind is KeyKind.CHUNK:
            chunk_id = chunk_id_of(key)
            assert chunk_id is not None  # noqa: S101 - the kind says it parses
            sealer.open_chunk(chunk_id, blob)
            return None
        if kind is KeyKind.PACK:
            pack_id = pack_id_of(key)
            assert pack_id is not None  # noqa: S101 - the kind says it parses
            check_pack(sealer, pack_id, blob)
            return None
        if kind is KeyKind.INDEX:
            index_id = index_id_of(key)
            assert index_id is not None  # noqa: S101 - the kind says it parses
            decode_index(sealer, index_id, blob)
            return None
        if kind is KeyKind.SNAPSHOT:
            entry = open_entry(sealer, key.rsplit("/", 1)[-1], blob).entry
            return entry if isinstance(entry, Manifest) else None
        if kind not in _PLAINTEXT:
            raise _UnverifiableError
        document = json.loads(blob)
        if not isinstance(document, dict):
            raise _UnverifiableError
        if kind is KeyKind.KEY_SLOT and (
            document.get("format") != 1 or document.get("key_id") != slot_id_of(key)
        ):
            raise _UnverifiableError
    except (IntegrityError, FormatError, ValueError) as err:
        raise _UnverifiableError from err
    return None


def well_formed(key: str, blob: bytes) -> bool:
    """Whether a copy of a plaintext object parses: a key slot naming itself, a config object.

    Config and key slots are not sealed under the master keys (a slot is opened by its user's
    passphrase or key, which the vault does not hold), so this is all a copy alone can show.
    """
    if kind_of(key) is KeyKind.KEY_SLOT:
        try:
            slot, _wrapped = decode_slot(blob)
        except FormatError:
            return False
        return slot_key(slot.key_id) == key
    try:
        document = json.loads(blob)
    except ValueError:
        return False
    return isinstance(document, dict)


def judge_copies(
    copies: Mapping[str, bytes], parses: Callable[[bytes], bool]
) -> tuple[bytes | None, dict[str, str]]:
    """Decide which targets' copies of one plaintext object (config, key slot) are damaged.

    Every copy of such an object was written once and copied verbatim, so all copies must be the
    same bytes. A copy that does not parse is damaged. Of the copies that parse, the bytes held by
    a strict majority of all copies win (or, when every copy that parses is identical, those); any
    other copy is damaged. When nothing wins (two targets holding two different copies that both
    parse), every copy is reported and none is chosen: compare them by hand (the one your key
    opens is the good one).

    Args:
        copies: each holding target's copy, by target name.
        parses: whether a copy is well-formed (see `well_formed`).

    Returns:
        The good bytes (``None`` when undecided or no copy parses), and for each damaged copy's
        target, why it is judged damaged.
    """
    parsing = {name: blob for name, blob in copies.items() if parses(blob)}
    damaged = {name: "does not parse" for name in copies if name not in parsing}
    votes = Counter(parsing.values())
    good: bytes | None = None
    if len(votes) == 1:
        good = next(iter(votes))
    elif votes:
        blob, count = votes.most_common(1)[0]
        if 2 * count > len(copies):
            good = blob
    for name, blob in parsing.items():
        if good is None:
            damaged[name] = "copies on the targets differ and none holds a majority"
        elif blob != good:
            damaged[name] = "differs from the copy most targets hold"
    return good, damaged


class _Healer:
    """The state of one heal run: every target's listing, what was copied, what failed."""

    def __init__(
        self,
        targets: Sequence[Target],
        sealer: Sealer,
        config_check: Callable[[bytes], bool] | None = None,
        *,
        repairing: bool = False,
        now: datetime | None = None,
        packed: bool = False,
        forgotten: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.targets = list(targets)
        # Per target, snapshot keys a prune record forgot there: never copied to it.
        self.forgotten = {t.name: (forgotten or {}).get(t.name, frozenset()) for t in targets}
        self.sealer = sealer
        self.config_check = config_check
        self.repairing = repairing
        self.now = now
        self.packed = packed
        # Format 2: each target's chunks, loaded once its packs and index objects are healed.
        self.stores: dict[str, PackedTarget | None] = {}
        self.loading = {t.name: threading.Lock() for t in self.targets}
        self.held: dict[str, set[str]] = {t.name: set() for t in self.targets}
        self.copied: dict[str, list[str]] = {t.name: [] for t in self.targets}
        self.repaired: dict[str, list[str]] = {t.name: [] for t in self.targets}
        self.quarantined: dict[str, list[tuple[str, str]]] = {t.name: [] for t in self.targets}
        self.unfixed: dict[str, list[tuple[str, str]]] = {t.name: [] for t in self.targets}
        self.strays: set[str] = set()  # no object of the repository: never copied
        self.failed = Failures("heal")
        self.problems: dict[str, BaseException] = {}
        self.lock = threading.Lock()

    def leave(self, target: Target, key: str, why: str) -> None:
        """Record something found wrong on a target and left as it is."""
        log.warning("heal: %s on %s left as it is: %s", key, target.name, why)
        with self.lock:
            self.unfixed[target.name].append((key, why))

    def note(self, target: Target, err: BaseException) -> None:
        """Record an object the target must go without; the target keeps being healed."""
        with self.lock:
            if target.name not in self.problems:
                log.warning("heal: target %s incomplete: %s", target.name, err)
                self.problems[target.name] = err

    def error(self, target: Target) -> BaseException | None:
        """The failure that stopped the target, else the first object it could not get."""
        return self.failed.get(target.name) or self.problems.get(target.name)

    def list_stage(self, stage: str) -> dict[str, set[str]]:
        """List one stage everywhere; return the stray keys found, by target (not kept as held)."""
        strays: dict[str, set[str]] = {}
        for target in self.targets:
            if target.name in self.failed:
                continue
            try:
                found = _list(target, stage)
            except StorageError as err:
                self.failed.fail(target, err)
                continue
            stray = {key for key in found if unexpected_key(key)}
            if stray:
                strays[target.name] = stray
            self.held[target.name] |= found - stray
        return strays

    def stray(self, target: Target, key: str) -> None:
        """Deal with a key that is no object of the repository: report it, or quarantine it."""
        if self.repairing:
            self.quarantine(target, key, "not an object this repository writes")
        else:
            self.leave(
                target,
                key,
                "not an object this repository writes (ignored; heal --repair quarantines it)",
            )

    def quarantine(self, target: Target, key: str, why: str) -> None:
        """Move one object to ``quarantine/<time>/<key>`` on its target; never delete it outright.

        The object is read twice (the reads must agree), the copy is written create-only and read
        back; the original is deleted only when the copy holds the same bytes.
        """
        if self.now is None:
            self.leave(target, key, f"{why}; give heal a time (now=) to quarantine it")
            return
        aside = quarantine_key(self.now, key)
        try:
            blob = target.read(key)
            if target.read(key) != blob:  # a flip in transit must not be what is kept
                self.leave(target, key, f"{why}; two reads differ, not moved")
                return
            # Quarantined before, maybe by a run that stopped: the bytes are compared below.
            put(target, aside, blob, exists_ok=True)
            if target.read(aside) != blob:
                self.leave(target, key, f"{why}; {aside} already holds other bytes")
                return
            _remove(target, key)  # a verified copy of these bytes is in quarantine
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            self.leave(target, key, f"{why}; could not quarantine it: {err}")
            return
        log.warning("heal: moved %s on %s to %s (%s)", key, target.name, aside, why)
        with self.lock:
            self.held[target.name].discard(key)
            self.quarantined[target.name].append((key, aside))

    def copy(self, key: str) -> None:
        """Copy one object to every live target lacking it, from the first donor that verifies."""
        with self.lock:
            if key in self.strays:
                return
            live = [t for t in self.targets if t.name not in self.failed]
            lacking = [
                t
                for t in live
                if key not in self.held[t.name] and key not in self.forgotten[t.name]
            ]
            donors = [t for t in live if key in self.held[t.name]]
        if not lacking:
            return
        for donor in donors:
            found = self._read_verified(donor, key)
            if found is None:
                continue
            blob, manifest = found
            for target in lacking:
                self._write(target, key, blob, manifest)
            return
        for target in lacking:
            self.note(target, IntegrityError(f"no target holds a verifiable copy of {key}"))

    def _read_verified(self, donor: Target, key: str) -> tuple[bytes, Manifest | None] | None:
        """Read a donor's copy that passes its check, or ``None``.

        A sealed object (chunk, manifest) is read again once when a read fails authentication (a
        flip in transit). The config and key slots cannot be authenticated here, so their copy is
        taken only when two reads of it agree (up to four reads): a copy damaged in transit is
        never planted create-only on another target, where it could not be replaced.
        """
        plaintext = kind_of(key) in _PLAINTEXT
        reads: list[bytes] = []
        for _attempt in range(4 if plaintext else 2):
            try:
                blob = donor.read(key)
                manifest = _verify(self.sealer, key, blob)
            except (StorageError, _UnverifiableError):
                continue
            if key == CONFIG_KEY and self.config_check is not None and not self.config_check(blob):
                continue
            if not plaintext:
                return blob, manifest
            if blob in reads:
                return blob, manifest
            reads.append(blob)
        return None

    def judge(self, key: str) -> None:
        """Check every copy of one object; replace (with ``repair``) or report each damaged one.

        A chunk or manifest copy must authenticate (`_verify`); copies of the config and of key
        slots are compared (`judge_copies`). With ``repair`` a damaged copy is deleted, then the
        good bytes are written create-only; a damaged copy with no good copy anywhere is left in
        place and the target is reported incomplete. Without ``repair`` each damaged copy is
        reported, and nothing changes.

        A snapshot object that every target holding it gives damaged, while every target could
        be listed and read, is no snapshot (nobody without the keys can make one that opens):
        it is not copied, it is reported on each holder and ``repair`` quarantines it there.
        """
        with self.lock:
            holders = [
                t for t in self.targets if t.name not in self.failed and key in self.held[t.name]
            ]
        good, damaged, copies, unread = self._read_copies(key, holders)
        if good is None and damaged and kind_of(key) in _NO_OBJECT_WHEN_UNOPENED:
            unread = unread or not self._confirmed(holders, key, copies, damaged)
        if good is None and damaged and self._not_an_object(key, unread):
            with self.lock:
                self.strays.add(key)
            why = _NO_OBJECT[kind_of(key)]
            for target in holders:
                if target.name not in damaged:
                    continue
                if self.repairing:
                    self.quarantine(target, key, why)
                else:
                    self.leave(target, key, f"{why}; heal --repair quarantines it")
            return
        for target in holders:
            if target.name in damaged:
                self._damaged(target, key, good)

    def _damaged(
        self, target: Target, key: str, good: tuple[bytes, Manifest | None] | None
    ) -> None:
        """Replace one damaged copy from the good one (with ``repair``), or report it."""
        if good is None:
            if self.repairing:
                self.note(
                    target,
                    IntegrityError(f"{key} is damaged here and no target holds a good copy"),
                )
            else:
                self.leave(target, key, "damaged here and no target holds a good copy")
            return
        if not self.repairing:
            self.leave(target, key, "damaged here; heal --repair replaces it from a good copy")
            return
        blob, manifest = good
        if not self._chunks_present(target, key, manifest):
            return
        try:
            _remove(target, key)
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            self.failed.fail(target, err)
            return
        with self.lock:
            self.held[target.name].discard(key)
        log.warning("heal: replacing the damaged copy of %s on %s", key, target.name)
        self._write(target, key, blob, manifest, repairing=True)

    def _confirmed(
        self, holders: Sequence[Target], key: str, copies: Mapping[str, bytes], damaged: set[str]
    ) -> bool:
        """Whether a second read of each damaged copy gives the same bytes (damage at rest).

        A flip in transit gives other bytes the second time: such a copy is not judged.
        """
        for target in holders:
            if target.name not in damaged:
                continue
            try:
                again = target.read(key)
            except StorageError:
                return False
            if again != copies[target.name]:
                log.warning("heal: two reads of %s on %s differ", key, target.name)
                return False
        return True

    def _not_an_object(self, key: str, unread: bool) -> bool:
        """Whether a snapshot or index key whose every copy read is damaged is no such object.

        Not when a copy could not be read for a transient reason, nor when a target could not
        be listed: that copy might be a good one.
        """
        return kind_of(key) in _NO_OBJECT_WHEN_UNOPENED and not unread and not self.failed

    def _read_copies(
        self, key: str, holders: Sequence[Target]
    ) -> tuple[tuple[bytes, Manifest | None] | None, set[str], dict[str, bytes], bool]:
        """Read and check each holder's copy of one object.

        Returns the good copy (with its manifest, if it is one), the targets holding damaged
        ones, the copies kept (every copy of a plaintext object; the damaged copies of a
        snapshot or index object, to read them again), and whether a copy could not be read for
        a transient reason. A sealed copy is checked as soon as it is read and dropped unless
        kept, so judging a pack holds at most two packs in memory.
        """
        plaintext = kind_of(key) in _PLAINTEXT
        keep_damaged = kind_of(key) in _NO_OBJECT_WHEN_UNOPENED
        copies: dict[str, bytes] = {}
        good: tuple[bytes, Manifest | None] | None = None
        damaged: set[str] = set()
        unread = False
        for target in holders:
            try:
                blob = target.read(key)
            except StorageError as err:
                unread = unread or isinstance(err, TransientStorageError)
                if self.repairing:
                    self.note(target, err)
                else:
                    self.leave(target, key, f"could not be read: {err}")
                continue
            if plaintext:
                copies[target.name] = blob
                continue
            try:
                manifest = _verify(self.sealer, key, blob)
            except _UnverifiableError:
                damaged.add(target.name)
                if keep_damaged:
                    copies[target.name] = blob
                continue
            if good is None:
                good = (blob, manifest)
        if plaintext:
            chosen, reasons = judge_copies(copies, lambda data: well_formed(key, data))
            return (None if chosen is None else (chosen, None)), set(reasons), copies, unread
        return good, damaged, copies, unread

    def _chunks_present(self, target: Target, key: str, manifest: Manifest | None) -> bool:
        """Whether the target holds every chunk a manifest names (always, for other objects).

        Format 1: a chunk object the target holds. Format 2: a chunk an index object on the
        target lists in a pack it holds, as `load_packed` finds them once the packs and index
        objects are healed (the manifests come after both).
        """
        if manifest is None:
            return True
        have: set[bytes | None] | PackedTarget
        if self.packed:
            store = self._store(target)
            if store is None:
                return False
            have = store
        else:
            with self.lock:
                have = {chunk_id_of(k) for k in self.held[target.name]}
        if any(chunk not in have for entry in manifest.files for chunk in entry.chunks):
            self.note(
                target,
                StorageError("a manifest names chunks it lacks", target=target.name, key=key),
            )
            return False
        return True

    def _store(self, target: Target) -> PackedTarget | None:
        """Format 2: what the target holds, loaded once (``None``, noted, when it cannot be)."""
        with self.loading[target.name]:
            if target.name not in self.stores:
                try:
                    self.stores[target.name] = load_packed(target, self.sealer)
                except (StorageError, IntegrityError) as err:
                    self.note(target, err)
                    self.stores[target.name] = None
            return self.stores[target.name]

    def index_loose(self, workers: int) -> None:
        """Format 2: write an index object for the packs no index object on any target lists.

        A backup that stopped before writing its index object leaves such *loose* packs. Each is
        read whole from a holder and checked (`check_pack` gives its header, hence its record);
        the records go into new index objects (no chunk twice in one), written create-only to
        every target holding one of their packs; the index stage then copies them to the rest.
        Nothing is done when an index object could not be read for a reason other than damage
        (the packs it lists might look loose).
        """
        with self.lock:
            live = [t for t in self.targets if t.name not in self.failed]
            index_keys = sorted(
                {k for t in live for k in self.held[t.name] if _in(k, INDEX_PREFIX)}
            )
            pack_keys = sorted({k for t in live for k in self.held[t.name] if _in(k, PACKS_PREFIX)})
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctfy-heal") as pool:
            listings = list(pool.map(lambda key: self._index_records(live, key), index_keys))
        if any(records is None for records in listings):
            log.warning("heal: an index object could not be read; loose packs are indexed later")
            return
        listed = {record.pack_id for records in listings if records for record in records}
        loose = [key for key in pack_keys if pack_id_of(key) not in listed]
        if not loose:
            return
        with ThreadPoolExecutor(max_workers=_PACK_WORKERS, thread_name_prefix="ctfy-heal") as pool:
            found = [r for r in pool.map(lambda key: self._pack_record(live, key), loose) if r]
        for index in _index_objects(self.sealer, found):
            packs = {record.pack_id for record in index.packs}
            key = index_key(index.id)
            log.warning("heal: indexing %d loose packs in %s", len(packs), key)
            with self.lock:
                holders = [
                    t
                    for t in live
                    if t.name not in self.failed
                    and any(
                        pack_id_of(k) in packs for k in self.held[t.name] if _in(k, PACKS_PREFIX)
                    )
                ]
            for target in holders:
                self._write(target, key, bytes(index.blob), None)

    def _index_records(self, live: Sequence[Target], key: str) -> tuple[IndexedPack, ...] | None:
        """An index object's records from the first holder where it opens.

        Empty when it opens on no holder (it lists nothing); ``None`` when a copy could not be
        read and none opened (it might list packs).
        """
        index_id = index_id_of(key)
        assert index_id is not None  # noqa: S101 - listed under its parsed key
        unread = False
        for target in live:
            with self.lock:
                if key not in self.held[target.name]:
                    continue
            try:
                return decode_index(self.sealer, index_id, target.read(key))
            except StorageError:
                unread = True
            except (IntegrityError, FormatError):
                continue
        return None if unread else ()

    def _pack_record(self, live: Sequence[Target], key: str) -> IndexedPack | None:
        """A loose pack's record, from the first holder whose copy passes `check_pack`."""
        pack_id = pack_id_of(key)
        assert pack_id is not None  # noqa: S101 - listed under its parsed key
        holders: list[Target] = []
        for target in live:
            with self.lock:
                if key not in self.held[target.name]:
                    continue
            holders.append(target)
            try:
                header = check_pack(self.sealer, pack_id, target.read(key))
            except (StorageError, IntegrityError, FormatError):
                continue
            return IndexedPack(pack_id=pack_id, size=header.size, entries=header.entries)
        for target in holders:
            self.leave(target, key, "a loose pack with no copy that passes its check: not indexed")
        return None

    def _write(
        self,
        target: Target,
        key: str,
        blob: bytes,
        manifest: Manifest | None,
        *,
        repairing: bool = False,
    ) -> None:
        """Write one object create-only, recorded as copied or repaired (a failure fails it)."""
        if not self._chunks_present(target, key, manifest):
            return
        try:
            # Already there: someone else healed it meanwhile; create-only kept what was there.
            stored = put(target, key, blob, exists_ok=True)
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            self.failed.fail(target, err)
            return
        if stored:
            with self.lock:
                (self.repaired if repairing else self.copied)[target.name].append(key)
        with self.lock:
            self.held[target.name].add(key)


def heal(
    targets: Sequence[Target],
    *,
    sealer: Sealer,
    workers: int = 8,
    repair: bool = False,
    read_data: bool = False,
    now: datetime | None = None,
    config_check: Callable[[bytes], bool] | None = None,
    packed: bool = False,
    forgotten: frozenset[str] | Mapping[str, frozenset[str]] = frozenset(),
) -> HealReport:
    """Copy to each target the config, key slots, chunks and manifests it lacks from another.

    ``forgotten`` are snapshot keys a prune record forgot (left where they are still locked),
    for every target or per target name (per-target retention): never copied to a target
    where they are forgotten.

    Each object is read from one target that holds it, checked (a chunk must open under its id, a
    manifest must open under its name, a key slot must name itself), then written create-only to
    every target lacking it. Chunks are copied before manifests, and a manifest is written to a
    target only when every chunk it names is there, so heal keeps each target's commit guarantee.
    Lock files and ``quarantine/`` are never copied.

    Format 2 (``packed``): packs are copied (each checked whole by `check_pack`), then index
    objects (each must decode under its name), then manifests; a manifest is written to a target
    only when an index object there lists every chunk it names in a pack the target holds. Packs
    that no index object on any target lists (loose: a backup stopped before its index object)
    are read whole, checked, and listed in a new index object written to the targets holding
    them (reported as copied) before the index objects are copied. An index object that opens
    on no target is treated like a snapshot object that opens on none.

    Every copy of the config, of each key slot and of each manifest is judged too (chunks only
    with ``read_data`` or ``repair``: that reads every chunk on every target). What heal finds
    and does not fix is listed in each outcome's ``unfixed``: damaged copies (without
    ``repair``), stray names under ``objects/`` or ``snapshots/`` (which are never copied), and
    snapshot objects that open on no target (no snapshot: never copied). Without ``repair``
    nothing is deleted or overwritten.

    With ``repair``, a chunk or manifest copy that fails authentication, or a config or key slot
    copy that does not parse or loses the comparison with the other copies (`judge_copies`), is
    deleted on its target and written again, create-only, from a copy that passes; a crash
    between the delete and the write leaves the target lacking the object, which the next heal
    copies. What no good copy proves damaged (a stray name; a snapshot object that opens on no
    target while every target was listed and read) is moved aside, never deleted outright: it is
    written create-only to ``quarantine/<now>/<key>`` on the same target, read back, and only
    then deleted from its place (``HealOutcome.quarantined``). A credential that may not delete
    makes repair fail on that target (reported, nothing lost).

    Args:
        targets: the repository's targets (two or more, unique names).
        sealer: the repository's sealer, to verify what is copied.
        workers: objects copied concurrently.
        repair: also replace damaged copies and quarantine strays (reads every object on every
            target).
        read_data: without ``repair``, also judge every chunk copy (reads every chunk).
        now: the time that names the quarantine folder (aware); without it, repair reports
            what it would quarantine instead of moving it.
        config_check: whether a copy of ``config`` is the repository's (the config is plaintext
            and cannot be authenticated; `Vault.heal` compares it with the config it opened).
        packed: the repository is format 2 (packs and index objects; `Vault.heal` passes it).
        forgotten: snapshot keys a prune record forgot, for every target or by target name;
            never copied to a target where they are forgotten (`Vault.heal` passes them).

    Returns:
        What was copied to, repaired on, quarantined on and left unfixed on each target;
        ``report.ok`` only when nothing was left unfixed.

    Raises:
        TargetsFailedError: a target could not be listed or written, or an object it lacks (or, with
            ``repair``, holds damaged) has no verifiable copy anywhere; holds every target's outcome
            (``None`` = complete). Whatever could be copied or repaired was, first.
        ConfigurationError: fewer than two targets, or duplicate names, or a naive ``now``.
    """
    names = [target.name for target in targets]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigurationError("heal needs two or more targets with unique names")
    if now is not None and now.utcoffset() is None:
        raise ConfigurationError("heal's now must be an aware datetime")
    forgotten_on = (
        dict.fromkeys(names, forgotten) if isinstance(forgotten, frozenset) else dict(forgotten)
    )
    healer = _Healer(
        targets,
        sealer,
        config_check,
        repairing=repair,
        now=now,
        packed=packed,
        forgotten={name: forgotten_on.get(name, frozenset()) for name in names},
    )
    by_name = {target.name: target for target in targets}
    for stage in _PACKED_STAGES if packed else _STAGES:
        strays = healer.list_stage(stage)
        for name, stray in sorted(strays.items()):
            for key in sorted(stray):
                healer.stray(by_name[name], key)
        everywhere = frozenset.intersection(*healer.forgotten.values())
        keys = sorted(
            {k for t in healer.targets for k in healer.held[t.name] if _in(k, stage)} - everywhere
        )
        pool_size = min(workers, _PACK_WORKERS) if stage == PACKS_PREFIX else workers
        with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="ctfy-heal") as pool:
            if repair or read_data or stage not in _DATA_STAGES:
                list(pool.map(healer.judge, keys))
            list(pool.map(healer.copy, keys))
        if stage == PACKS_PREFIX:
            healer.list_stage(INDEX_PREFIX)  # what the index stage lists, to find loose packs
            healer.index_loose(workers)
    outcomes = tuple(
        HealOutcome(
            target=t.name,
            copied=tuple(sorted(healer.copied[t.name])),
            repaired=tuple(sorted(healer.repaired[t.name])),
            quarantined=tuple(sorted(healer.quarantined[t.name])),
            unfixed=tuple(sorted(healer.unfixed[t.name])),
            error=healer.error(t),
        )
        for t in healer.targets
    )
    done = Outcome[None](outcomes={outcome.target: outcome.error for outcome in outcomes})
    done.require_all(f"heal left {len(done.failed)} of {len(names)} targets incomplete")
    return HealReport(outcomes=outcomes, data_read=repair or read_data)


def _remove(target: Target, key: str) -> None:
    """Repair's one delete, of a copy found damaged or quarantined (never in the writer)."""
    target.delete(key)  # repair-delete


def _in(key: str, stage: str) -> bool:
    return key == stage if stage == CONFIG_KEY else key.startswith(f"{stage}/")


def _index_objects(sealer: Sealer, records: Sequence[IndexedPack]) -> list[IndexObject]:
    """Index objects listing ``records``, as few as keep every chunk once per object.

    Two loose packs may hold one chunk (a backup run again after one stopped before its index
    object stores it again), and an index object lists a chunk at most once.
    """
    groups: list[tuple[list[IndexedPack], set[bytes]]] = []
    for record in sorted(records, key=lambda r: r.pack_id):
        chunks = {entry.chunk_id for entry in record.entries}
        for members, seen in groups:
            if not chunks & seen:
                members.append(record)
                seen.update(chunks)
                break
        else:
            groups.append(([record], chunks))
    return [encode_index(sealer, members) for members, _seen in groups]
