"""Checking a repository: structure per target, the hash chain, agreement, and optionally data."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import FormatError, IntegrityError, StorageError
from ctfy_vault.manifest import Manifest, OpenedEntry, open_entry, verify_chain
from ctfy_vault.repository._heads import KnownHeads, LineageHead
from ctfy_vault.repository._heal import judge_copies, well_formed
from ctfy_vault.repository._layout import (
    KeyKind,
    chunk_id_of,
    chunk_key,
    in_lock_area,
    kind_of,
    snapshot_key,
    snapshot_name_of,
)
from ctfy_vault.repository._reports import Problem, VerifyReport
from ctfy_vault.storage import Target

__all__ = ["verify_targets"]

_STRAY = (
    "not an object this repository writes: backup, prune, restore and heal ignore it "
    "(heal --repair moves it to quarantine/)"
)
_SET_ASIDE = "moved aside by heal --repair: inspect it, then delete it"
ReadData = bool | float


def _fraction(read_data: ReadData) -> float:
    if isinstance(read_data, bool):
        return 1.0 if read_data else 0.0
    if not 0.0 <= read_data <= 1.0:
        raise ValueError("read_data is False, True, or a fraction from 0 to 1")
    return float(read_data)


def verify_targets(
    targets: Sequence[Target],
    sealer: Sealer,
    *,
    read_data: ReadData = False,
    rng: random.Random | None = None,
    known_heads: KnownHeads | None = None,
) -> VerifyReport:
    """Check every target of a repository (see `Vault.verify`)."""
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
    entries: dict[str, OpenedEntry] = {}
    failures: list[tuple[str, str, BaseException]] = []
    for target in targets:
        keys = listings.get(target.name)
        if keys is None:
            continue
        problems.extend(_structure(target, sealer, keys, entries, failures))
    unopened = {key for _target, key, _err in failures} - {snapshot_key(name) for name in entries}
    problems.extend(_manifest_problems(failures, listings, unopened))
    problems.extend(_key_slots(targets, listings))
    every = set().union(*listings.values()) if listings else set()
    for name, keys in sorted(listings.items()):
        # An object that opens nowhere is reported where it is; heal will not spread it.
        problems.extend(
            Problem(kind="lacking", target=name, key=key, detail="another target holds it")
            for key in sorted(every - keys - unopened)
        )
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
        read, found = _read_chunks(targets, sealer, listings, fraction, rng or random.Random())  # noqa: S311 - sampling, not secrets
        chunks_read = read
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


def _structure(
    target: Target,
    sealer: Sealer,
    keys: set[str],
    entries: dict[str, OpenedEntry],
    failures: list[tuple[str, str, BaseException]],
) -> list[Problem]:
    """Open every manifest on one target and check that it holds every chunk each one names.

    A manifest that does not open is added to ``failures`` as ``(target, key, error)``.
    """
    problems: list[Problem] = []
    missing: dict[str, str] = {}
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
        if isinstance(opened.entry, Manifest):
            for entry in opened.entry.files:
                for chunk_id in entry.chunks:
                    chunk = chunk_key(chunk_id)
                    if chunk not in keys:
                        missing.setdefault(chunk, f"named by {name} ({entry.path})")
    problems.extend(
        Problem(kind="missing-chunk", target=target.name, key=key, detail=detail)
        for key, detail in sorted(missing.items())
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
    fraction: float,
    rng: random.Random,
) -> tuple[int, list[Problem]]:
    """Re-read and authenticate a share of the chunk objects on every target holding them."""
    chunks = sorted({k for keys in listings.values() for k in keys if chunk_id_of(k) is not None})
    count = len(chunks) if fraction >= 1.0 else math.ceil(len(chunks) * fraction)
    chosen = chunks if count == len(chunks) else sorted(rng.sample(chunks, count))
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
