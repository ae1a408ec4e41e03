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
from ctfy_vault.repository._layout import (
    CONFIG_KEY,
    KEYS_PREFIX,
    OBJECTS_PREFIX,
    SNAPSHOTS_PREFIX,
    KeyKind,
    chunk_id_of,
    kind_of,
    quarantine_key,
    slot_id_of,
    slot_key,
    unexpected_key,
)
from ctfy_vault.repository._replicas import Failures, Outcome, put
from ctfy_vault.repository._reports import HealOutcome, HealReport
from ctfy_vault.storage import Target

__all__ = ["heal", "judge_copies", "well_formed"]

log = logging.getLogger("ctfy_vault.repository")

# Manifests go last: each is the commit point for the chunks it names on its target.
_STAGES = (CONFIG_KEY, KEYS_PREFIX, OBJECTS_PREFIX, SNAPSHOTS_PREFIX)
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
    ) -> None:
        self.targets = list(targets)
        self.sealer = sealer
        self.config_check = config_check
        self.repairing = repairing
        self.now = now
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
            lacking = [t for t in live if key not in self.held[t.name]]
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
        copies: dict[str, bytes] = {}
        unread = False
        for target in holders:
            try:
                copies[target.name] = target.read(key)
            except StorageError as err:
                unread = unread or isinstance(err, TransientStorageError)
                if self.repairing:
                    self.note(target, err)
                else:
                    self.leave(target, key, f"could not be read: {err}")
        good, damaged = self._judge(key, copies)
        if good is None and damaged and kind_of(key) is KeyKind.SNAPSHOT:
            unread = unread or not self._confirmed(holders, key, copies, damaged)
        if good is None and damaged and self._not_an_object(key, unread):
            with self.lock:
                self.strays.add(key)
            why = "a snapshot object that opens on no target (no snapshot: backups chain past it)"
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
        """Whether a snapshot key whose every copy read is damaged can be judged no snapshot.

        Not when a copy could not be read for a transient reason, nor when a target could not
        be listed: that copy might be a good one.
        """
        return kind_of(key) is KeyKind.SNAPSHOT and not unread and not self.failed

    def _judge(
        self, key: str, copies: Mapping[str, bytes]
    ) -> tuple[tuple[bytes, Manifest | None] | None, set[str]]:
        """The good copy (with its manifest, if it is one) and the targets holding damaged ones."""
        if kind_of(key) in _PLAINTEXT:
            blob, reasons = judge_copies(copies, lambda data: well_formed(key, data))
            return (None if blob is None else (blob, None)), set(reasons)
        good: tuple[bytes, Manifest | None] | None = None
        damaged: set[str] = set()
        for name, blob in copies.items():
            try:
                manifest = _verify(self.sealer, key, blob)
            except _UnverifiableError:
                damaged.add(name)
                continue
            if good is None:
                good = (blob, manifest)
        return good, damaged

    def _chunks_present(self, target: Target, key: str, manifest: Manifest | None) -> bool:
        """Whether the target holds every chunk a manifest names (always, for other objects)."""
        if manifest is None:
            return True
        with self.lock:
            have = {chunk_id_of(k) for k in self.held[target.name]}
        if any(chunk not in have for entry in manifest.files for chunk in entry.chunks):
            self.note(
                target,
                StorageError("a manifest names chunks it lacks", target=target.name, key=key),
            )
            return False
        return True

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
) -> HealReport:
    """Copy to each target the config, key slots, chunks and manifests it lacks from another.

    Each object is read from one target that holds it, checked (a chunk must open under its id, a
    manifest must open under its name, a key slot must name itself), then written create-only to
    every target lacking it. Chunks are copied before manifests, and a manifest is written to a
    target only when every chunk it names is there, so heal keeps each target's commit guarantee.
    Lock files and ``quarantine/`` are never copied.

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
    healer = _Healer(targets, sealer, config_check, repairing=repair, now=now)
    by_name = {target.name: target for target in targets}
    for stage in _STAGES:
        strays = healer.list_stage(stage)
        for name, stray in sorted(strays.items()):
            for key in sorted(stray):
                healer.stray(by_name[name], key)
        keys = sorted({k for t in healer.targets for k in healer.held[t.name] if _in(k, stage)})
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctfy-heal") as pool:
            if repair or read_data or stage != OBJECTS_PREFIX:
                list(pool.map(healer.judge, keys))
            list(pool.map(healer.copy, keys))
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
