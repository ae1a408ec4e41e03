"""Heal: copy to each target the objects it lacks from a target that holds them, verified.

With ``repair``, heal also replaces damaged copies: a chunk or manifest whose copy fails
authentication, or a config or key slot whose copy loses the comparison with the other targets'
copies (`judge_copies`), is deleted on that target and written again, create-only, from a copy that
passes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ctfy_vault.crypto import KEYS_PREFIX, Sealer
from ctfy_vault.crypto._slots import decode_slot
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    ObjectExistsError,
    StorageError,
    TargetsFailedError,
)
from ctfy_vault.manifest import Manifest, open_entry
from ctfy_vault.storage import Target
from ctfy_vault.writer._outcome import HealOutcome, HealReport
from ctfy_vault.writer._writer import OBJECTS_PREFIX, SNAPSHOTS_PREFIX

__all__ = ["heal", "judge_copies", "well_formed"]

log = logging.getLogger("ctfy_vault.writer")

CONFIG_KEY = "config"
KEYS = KEYS_PREFIX.rstrip("/")
# Manifests go last: each is the commit point for the chunks it names on its target.
_STAGES = (CONFIG_KEY, KEYS, OBJECTS_PREFIX, SNAPSHOTS_PREFIX)


class _UnverifiableError(Exception):
    """A donor's copy failed its check (never raised to callers)."""


def _list(target: Target, stage: str) -> set[str]:
    if stage == CONFIG_KEY:
        return {CONFIG_KEY} if target.exists(CONFIG_KEY) else set()
    return set(target.list(stage))


def _chunk_ids(keys: set[str]) -> set[bytes]:
    ids = set()
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        try:
            ids.add(bytes.fromhex(name))
        except ValueError:
            continue
    return ids


def _verify(sealer: Sealer, key: str, blob: bytes) -> Manifest | None:
    """Check a donor's copy against its name; return the manifest it holds, if it is one."""
    name = key.rsplit("/", 1)[-1]
    try:
        if key.startswith(f"{OBJECTS_PREFIX}/"):
            parts = key.split("/")
            if len(parts) != 3 or parts[1] != name[:2]:
                raise _UnverifiableError
            sealer.open_chunk(bytes.fromhex(name), blob)
            return None
        if key.startswith(f"{SNAPSHOTS_PREFIX}/"):
            entry = open_entry(sealer, name, blob).entry
            return entry if isinstance(entry, Manifest) else None
        document = json.loads(blob)
        if not isinstance(document, dict):
            raise _UnverifiableError
        if key.startswith(f"{KEYS}/") and (
            document.get("format") != 1 or document.get("key_id") != name
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
    if key.startswith(f"{KEYS}/"):
        try:
            slot, _wrapped = decode_slot(blob)
        except FormatError:
            return False
        return slot.object_key == key
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
    ) -> None:
        self.targets = list(targets)
        self.sealer = sealer
        self.config_check = config_check
        self.held: dict[str, set[str]] = {t.name: set() for t in self.targets}
        self.copied: dict[str, list[str]] = {t.name: [] for t in self.targets}
        self.repaired: dict[str, list[str]] = {t.name: [] for t in self.targets}
        self.failed: dict[str, BaseException] = {}
        self.problems: dict[str, BaseException] = {}
        self.lock = threading.Lock()

    def note(self, target: Target, err: BaseException) -> None:
        """Record an object the target must go without; the target keeps being healed."""
        with self.lock:
            if target.name not in self.problems:
                log.warning("heal: target %s incomplete: %s", target.name, err)
                self.problems[target.name] = err

    def error(self, target: Target) -> BaseException | None:
        """The failure that stopped the target, else the first object it could not get."""
        return self.failed.get(target.name) or self.problems.get(target.name)

    def fail(self, target: Target, err: BaseException) -> None:
        with self.lock:
            if target.name not in self.failed:
                log.warning("heal: target %s failed: %s", target.name, err)
                self.failed[target.name] = err

    def list_stage(self, stage: str) -> None:
        for target in self.targets:
            if target.name in self.failed:
                continue
            try:
                found = _list(target, stage)
            except StorageError as err:
                self.fail(target, err)
                continue
            self.held[target.name] |= found

    def copy(self, key: str) -> None:
        """Copy one object to every live target lacking it, from the first donor that verifies."""
        with self.lock:
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
        plaintext = key == CONFIG_KEY or key.startswith(f"{KEYS}/")
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

    def repair(self, key: str) -> None:
        """Replace every copy of one object that fails its check with a copy that passes.

        A chunk or manifest copy must authenticate (`_verify`); copies of the config and of key
        slots are compared (`judge_copies`). A damaged copy is deleted, then the good bytes are
        written create-only; a damaged copy with no good copy anywhere is left in place and the
        target is reported incomplete.
        """
        with self.lock:
            holders = [
                t for t in self.targets if t.name not in self.failed and key in self.held[t.name]
            ]
        copies: dict[str, bytes] = {}
        for target in holders:
            try:
                copies[target.name] = target.read(key)
            except StorageError as err:
                self.note(target, err)
        good, damaged = self._judge(key, copies)
        for target in holders:
            if target.name not in damaged:
                continue
            if good is None:
                self.note(
                    target,
                    IntegrityError(f"{key} is damaged here and no target holds a good copy"),
                )
                continue
            blob, manifest = good
            if not self._chunks_present(target, key, manifest):
                continue
            try:  # the writer package's only delete: opt-in, of a copy read and found damaged
                target.delete(key)  # repair-delete
            except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
                self.fail(target, err)
                continue
            with self.lock:
                self.held[target.name].discard(key)
            log.warning("heal: replacing the damaged copy of %s on %s", key, target.name)
            self._write(target, key, blob, manifest, repairing=True)

    def _judge(
        self, key: str, copies: Mapping[str, bytes]
    ) -> tuple[tuple[bytes, Manifest | None] | None, set[str]]:
        """The good copy (with its manifest, if it is one) and the targets holding damaged ones."""
        if key == CONFIG_KEY or key.startswith(f"{KEYS}/"):
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
            have = _chunk_ids(
                {k for k in self.held[target.name] if k.startswith(f"{OBJECTS_PREFIX}/")}
            )
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
            target.write(key, blob)
        except ObjectExistsError:
            pass  # someone else healed it meanwhile; create-only kept whatever was there
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            self.fail(target, err)
            return
        else:
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
    config_check: Callable[[bytes], bool] | None = None,
) -> HealReport:
    """Copy to each target the config, key slots, chunks and manifests it lacks from another.

    Each object is read from one target that holds it, checked (a chunk must open under its id, a
    manifest must open under its name, a key slot must name itself), then written create-only to
    every target lacking it. Without ``repair`` nothing is deleted or overwritten: a damaged copy
    on a target stays there for ``verify`` to report. Chunks are copied before manifests, and a
    manifest is written to a target only when every chunk it names is there, so heal keeps each
    target's commit guarantee. Lock files are never copied.

    With ``repair``, every copy of every object is read first (as ``verify(read_data=True)``
    does): a chunk or manifest copy that fails authentication, or a config or key slot copy that
    does not parse or loses the comparison with the other copies (`judge_copies`), is deleted on
    its target and written again, create-only, from a copy that passes. This is the one case in
    which heal deletes, and it deletes only a copy it has read and found damaged; a crash between
    the delete and the write leaves the target lacking the object, which the next heal copies. A
    credential that may not delete makes repair fail on that target (reported, nothing lost).

    Args:
        targets: the repository's targets (two or more, unique names).
        sealer: the repository's sealer, to verify what is copied.
        workers: objects copied concurrently.
        repair: also replace damaged copies (reads every object on every target).
        config_check: whether a copy of ``config`` is the repository's (the config is plaintext
            and cannot be authenticated; `Vault.heal` compares it with the config it opened).

    Returns:
        What was copied to (and, with ``repair``, repaired on) each target.

    Raises:
        TargetsFailedError: a target could not be listed or written, or an object it lacks (or, with
            ``repair``, holds damaged) has no verifiable copy anywhere; holds every target's outcome
            (``None`` = complete). Whatever could be copied or repaired was, first.
        ConfigurationError: fewer than two targets, or duplicate names.
    """
    names = [target.name for target in targets]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigurationError("heal needs two or more targets with unique names")
    healer = _Healer(targets, sealer, config_check)
    for stage in _STAGES:
        healer.list_stage(stage)
        keys = sorted({k for t in healer.targets for k in healer.held[t.name] if _in(k, stage)})
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctfy-heal") as pool:
            if repair:
                list(pool.map(healer.repair, keys))
            list(pool.map(healer.copy, keys))
    outcomes = tuple(
        HealOutcome(
            target=t.name,
            copied=tuple(sorted(healer.copied[t.name])),
            repaired=tuple(sorted(healer.repaired[t.name])),
            error=healer.error(t),
        )
        for t in healer.targets
    )
    incomplete = sum(outcome.error is not None for outcome in outcomes)
    if incomplete:
        raise TargetsFailedError(
            f"heal left {incomplete} of {len(names)} targets incomplete",
            {outcome.target: outcome.error for outcome in outcomes},
        )
    return HealReport(outcomes=outcomes)


def _in(key: str, stage: str) -> bool:
    return key == stage if stage == CONFIG_KEY else key.startswith(f"{stage}/")
