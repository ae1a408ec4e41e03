"""Heal: copy to each target the objects it lacks from a target that holds them, verified."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ctfy_vault.crypto import KEYS_PREFIX, Sealer
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

__all__ = ["heal"]

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


class _Healer:
    """The state of one heal run: every target's listing, what was copied, what failed."""

    def __init__(self, targets: Sequence[Target], sealer: Sealer) -> None:
        self.targets = list(targets)
        self.sealer = sealer
        self.held: dict[str, set[str]] = {t.name: set() for t in self.targets}
        self.copied: dict[str, list[str]] = {t.name: [] for t in self.targets}
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
            try:
                blob = donor.read(key)
                manifest = _verify(self.sealer, key, blob)
            except (StorageError, _UnverifiableError):
                continue
            for target in lacking:
                self._write(target, key, blob, manifest)
            return
        for target in lacking:
            self.note(target, IntegrityError(f"no target holds a verifiable copy of {key}"))

    def _write(self, target: Target, key: str, blob: bytes, manifest: Manifest | None) -> None:
        if manifest is not None:
            with self.lock:
                have = _chunk_ids(
                    {k for k in self.held[target.name] if k.startswith(f"{OBJECTS_PREFIX}/")}
                )
            if any(chunk not in have for entry in manifest.files for chunk in entry.chunks):
                self.note(
                    target,
                    StorageError("a manifest names chunks it lacks", target=target.name, key=key),
                )
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
                self.copied[target.name].append(key)
        with self.lock:
            self.held[target.name].add(key)


def heal(targets: Sequence[Target], *, sealer: Sealer, workers: int = 8) -> HealReport:
    """Copy to each target the config, key slots, chunks and manifests it lacks from another.

    Each object is read from one target that holds it, checked (a chunk must open under its id, a
    manifest must open under its name, a key slot must name itself), then written create-only to
    every target lacking it. Nothing is deleted or overwritten: a damaged copy on a target stays
    there for ``verify`` to report. Chunks are copied before manifests, and a manifest is written to
    a target only when every chunk it names is there, so heal keeps each target's commit guarantee.
    Lock files are never copied.

    Args:
        targets: the repository's targets (two or more, unique names).
        sealer: the repository's sealer, to verify what is copied.
        workers: objects copied concurrently.

    Returns:
        What was copied to each target.

    Raises:
        TargetsFailedError: a target could not be listed or written, or an object it lacks has no
            verifiable copy anywhere; holds every target's outcome (``None`` = complete). Whatever
            could be copied was copied first.
        ConfigurationError: fewer than two targets, or duplicate names.
    """
    names = [target.name for target in targets]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigurationError("heal needs two or more targets with unique names")
    healer = _Healer(targets, sealer)
    for stage in _STAGES:
        healer.list_stage(stage)
        keys = sorted({k for t in healer.targets for k in healer.held[t.name] if _in(k, stage)})
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctfy-heal") as pool:
            list(pool.map(healer.copy, keys))
    outcomes = tuple(
        HealOutcome(
            target=t.name,
            copied=tuple(sorted(healer.copied[t.name])),
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
